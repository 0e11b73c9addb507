"""The web UI as one job store over the CLI's and the walkthrough's folders, forms that
follow the model, networks checked before a job exists, charts, and job management
(issue 13). Flask test client; no TensorFlow."""
import io
import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from digits_gan_plugin import cli
from digits_gan_plugin.runtime.model_files import list_model_definitions
from digits_gan_plugin.webapp import charts, create_app
from digits_gan_plugin.webapp.fitcheck import cache_key, rank
from digits_gan_plugin.webapp.store import found_id, scan
from webapp_helpers import (ENCODER, GENERATOR, UNCONDITIONAL, all_files, csrf_token, fake_dataset, fake_record,
                            fake_training_job, job_folders, user_folders)

__all__ = ["user_folders"]


@pytest.fixture
def walkthrough(tmp_path):
    """A folder as examples/run_local.py leaves it: a dataset, a GAN with a result, an encoder."""
    work = tmp_path / "walkthrough"
    fake_dataset(work / "mnist", classes=3, plugin="mnist")
    gan = fake_training_job(work / "gan", GENERATOR, dataset=str(work / "mnist"))
    result = gan / "inference" / "class-sweep"
    result.mkdir(parents=True)
    (result / "result.npz").write_bytes(b"")
    (result / "result.json").write_text(json.dumps({"task": "class-sweep", "latent": {"seed": 7}}))
    fake_training_job(work / "encoder", ENCODER, dataset=str(work / "mnist"))
    (work / ".stages").mkdir()
    return work


def ids_in(text):
    return re.findall(r'href="/jobs/(found-[0-9a-f]+)"', text)


def test_serve_on_the_walkthrough_folder_lists_its_datasets_and_jobs(walkthrough):
    before = all_files(walkthrough)
    client = create_app(str(walkthrough)).test_client()
    home = client.get("/").get_data(as_text=True)
    assert "No datasets yet" not in home
    datasets = home.split('id="datasets"')[1].split("</table>")[0]
    models = home.split('id="models"')[1].split("</table>")[0]
    assert ">mnist</a>" in datasets and ">gan</a>" in models and ">encoder</a>" in models
    assert "on mnist" in models  # grouped by dataset
    for job_id in ids_in(home):
        assert client.get(f"/jobs/{job_id}").status_code == 200
    assert all_files(walkthrough) == before  # nothing written into the user's folder


def test_a_found_model_page_shows_its_results_checkpoints_and_metrics(walkthrough):
    client = create_app(str(walkthrough)).test_client()
    gan_id = found_id(walkthrough / "gan")
    assert gan_id in ids_in(client.get("/").get_data(as_text=True))
    page = client.get(f"/jobs/{gan_id}").get_data(as_text=True)
    assert "class-sweep" in page and "step 10, epoch 1" in page  # its result run and its checkpoint
    assert "MB" in page.split('id="checkpoints"')[1][:200]
    metrics = client.get(f"/jobs/{gan_id}/metrics.json").get_json()
    titles = [panel["title"] for panel in metrics["panels"]]
    assert titles[0] == "Losses" and "Learning rate" in titles
    run_id = re.search(r'href="/jobs/(found-[0-9a-f]+)">gan/inference/class-sweep', page).group(1)
    run = client.get(f"/jobs/{run_id}")
    assert run.status_code == 422 and "result.npz" in run.get_data(as_text=True)  # zero bytes: a message


def test_digits_gan_jobs_lists_the_same_store(walkthrough, capsys):
    assert cli.main(["jobs", str(walkthrough)]) == 0
    out = capsys.readouterr().out
    assert "datasets:" in out and "training jobs:" in out and "inference results:" in out
    assert str(walkthrough / "mnist") in out and str(walkthrough / "gan") in out and "step 10" in out
    assert {item.kind for item in scan([walkthrough])} == {"dataset", "model", "inference"}
    assert cli.main(["jobs", str(walkthrough / "missing")]) == 2


def test_jobs_whose_records_cannot_be_read_are_named_not_silently_left_out(tmp_path, capsys):
    fake_training_job(tmp_path / "good")
    fake_training_job(tmp_path / "broken")
    (tmp_path / "broken" / "config.json").write_text('{"model": {"z_dim": 4,')  # cut short by a full disk
    fake_dataset(tmp_path / "data")
    (tmp_path / "data" / "dataset.json").write_text("[]")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"name": "some other program"}')  # not ours: not named
    jobs_dir = tmp_path / "jobs"
    (fake_record(jobs_dir, "20260101-000000-web", "model") / "job.json").write_text("{")
    assert cli.main(["jobs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "good") in out
    unreadable = out.split("not listed (unreadable):\n")[1].splitlines()
    assert sorted(unreadable) == sorted([f"  {tmp_path / 'broken' / 'config.json'}: not valid JSON "
                                         "(Expecting property name enclosed in double quotes: line 1 column 23 "
                                         "(char 22))",
                                         f"  {tmp_path / 'data' / 'dataset.json'}: not a readable dataset record "
                                         "(expected a JSON object with 'stages')"])
    page = create_app(str(jobs_dir), allow_roots=[str(tmp_path)]).test_client().get("/").get_data(as_text=True)
    panel = page.split('id="unreadable"')[1]
    assert "broken/config.json: not valid JSON" in panel and "data/dataset.json" in panel
    assert "20260101-000000-web/job.json: not a readable job record" in panel


# ------------------------------------------------------------------ forms follow the model
def model_record(jobs_dir, facts, job_id="20260101-000000-gan"):
    record = fake_record(jobs_dir, job_id, "model", network="network-test")
    fake_training_job(record / "model", facts, steps=(10, 20))
    return record


def task_choices(page):
    select = page.split('name="task"')[1].split("</select>")[0]
    return re.findall(r'<option[^>]*value="([^"]+)"', select)


@pytest.mark.parametrize("facts, offered, refused", [
    (GENERATOR, "class-sweep", "encode-list"),
    (UNCONDITIONAL, "style-sweep", "class-sweep"),
    (ENCODER, "encode-list", "style-sweep"),
])
def test_the_inference_form_offers_the_tasks_that_fit_the_model(tmp_path, facts, offered, refused):
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, facts)
    client = create_app(str(jobs_dir)).test_client()
    page = client.get(f"/jobs/{record.name}").get_data(as_text=True)
    choices = task_choices(page)
    assert offered in choices and refused not in choices
    assert choices[0] == offered  # the default fits too
    token = csrf_token(client, f"/jobs/{record.name}")
    response = client.post(f"/jobs/{record.name}/infer", data={
        "csrf_token": token, "view_plugin": "gan-view", "task": refused, "checkpoint": "last", "rows": "2",
        "steps": "2", "view-task": "grid", "view-frame_ms": "120"})
    assert response.status_code == 400 and job_folders(jobs_dir) == [record.name]


@pytest.mark.parametrize("z, message", [("1 2 abc", "z"), ("1 2", "z"), ("1e39 0 0 0", "float32")])
def test_a_bad_z_is_refused_in_the_form_before_a_job_exists(tmp_path, z, message):
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    client = create_app(str(jobs_dir)).test_client()
    token = csrf_token(client, f"/jobs/{record.name}")
    response = client.post(f"/jobs/{record.name}/infer", data={
        "csrf_token": token, "view_plugin": "gan-view", "task": "class-sweep", "checkpoint": "last", "z": z,
        "rows": "2", "view-task": "grid", "view-frame_ms": "120"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and message in text and 'id="inference-error"' in text
    assert job_folders(jobs_dir) == [record.name]
    assert not (record / "model" / "inference").exists()


def test_inference_runs_the_chosen_snapshot_of_the_page_model_and_is_named_by_its_seed(tmp_path):
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    other = model_record(jobs_dir, GENERATOR, "20260101-000000-xxx")
    app = create_app(str(jobs_dir))
    client = app.test_client()
    page = client.get(f"/jobs/{record.name}").get_data(as_text=True)
    assert 'value="model.ckpt-10"' in page  # the snapshot selector
    token = csrf_token(client, f"/jobs/{record.name}")
    response = client.post(f"/jobs/{record.name}/infer", data={
        "csrf_token": token, "view_plugin": "gan-view", "task": "class-sweep", "checkpoint": "model.ckpt-10",
        "job": str(other / "model"), "rows": "2", "seed": "42", "view-task": "grid", "view-frame_ms": "120"})
    assert response.status_code == 302
    run = app.extensions["digits_gan_jobs"].get(response.headers["Location"].rsplit("/", 1)[1])
    app.extensions["digits_gan_jobs"].stop(run)
    latent_command, infer_command = run.commands
    assert latent_command[latent_command.index("--job") + 1] == str(record / "model")  # not the 'job' field
    assert infer_command[infer_command.index("--job") + 1] == str(record / "model")
    assert infer_command[infer_command.index("--checkpoint") + 1] == str(record / "model" / "checkpoints" /
                                                                         "model.ckpt-10")
    assert run.name == "Class sweep, seed 42" and run.seed == 42
    response = client.post(f"/jobs/{record.name}/infer", data={
        "csrf_token": token, "view_plugin": "gan-view", "task": "class-sweep", "checkpoint": "model.ckpt-99",
        "rows": "2", "view-task": "grid", "view-frame_ms": "120"})
    assert response.status_code == 400 and "not a checkpoint of this job" in response.get_data(as_text=True)


# ------------------------------------------------------------------ networks checked first
def test_networks_are_ranked_best_fit_first():
    results = {"network-celebA": {"fits": False, "reason": "shape", "facts": {}},
               "network-mnist-simple": {"fits": True, "facts": {"inference_input": "z", "conditional": False}},
               "network-mnist-encoder": {"fits": True, "facts": {"inference_input": "image", "conditional": True}},
               "network-mnist": {"fits": True, "facts": {"inference_input": "z", "conditional": True}},
               "network-gaussian-1d": {"fits": True, "facts": {"inference_input": "z", "conditional": False}},
               "network-new": None}
    order = rank(results, {"plugin_id": "mnist", "num_classes": 10})
    assert order[0] == "network-mnist" and order[-1] == "network-celebA"
    assert order.index("network-mnist-simple") < order.index("network-mnist-encoder")
    unlabelled = rank(results, {"plugin_id": "imagefolder", "num_classes": None})
    assert unlabelled[0] in ("network-gaussian-1d", "network-mnist-simple")


def seed_fit_cache(tmp_path, dataset, fits):
    """Fit results as the checker caches them (the check itself is tested with TensorFlow
    in test_webapp_fitcheck.py)."""
    folder = tmp_path / "xdg-cache" / "digits-gan" / "network-fit"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in list_model_definitions().items():
        result = {"fits": name in fits, "reason": "" if name in fits else f"{name} wants 64 x 64 images",
                  "facts": {"inference_input": "z", "conditional": True}}
        (folder / f"{cache_key(dataset, path)}.json").write_text(json.dumps(result))


def test_the_new_model_form_defaults_to_the_best_fit_and_refuses_a_misfit(tmp_path):
    jobs_dir = tmp_path / "jobs"
    record = fake_record(jobs_dir, "20260101-000000-data", "dataset")
    dataset = fake_dataset(record / "dataset", classes=10, plugin="mnist")
    (dataset / "train_db").mkdir()
    seed_fit_cache(tmp_path, dataset, fits={"network-mnist", "network-mnist-simple"})
    client = create_app(str(jobs_dir)).test_client()
    page = client.get("/models/new?dataset=20260101-000000-data").get_data(as_text=True)
    assert re.search(r'id="network-network-mnist" value="network-mnist"\s+checked', page)
    assert "no: network-celebA wants 64 x 64 images" in page
    assert re.search(r'id="network-network-celebA" value="network-celebA"\s+disabled', page)
    token = csrf_token(client, "/models/new")
    response = client.post("/models/new", data={
        "csrf_token": token, "job_name": "faces on digits", "dataset": "20260101-000000-data",
        "network": "network-celebA", "epochs": "1", "batch_size": "16", "solver": "adam", "lr": "0.0002",
        "keep": "2"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "network-celebA cannot train" in text and "64 x 64" in text
    assert job_folders(jobs_dir) == ["20260101-000000-data"]


def test_clone_fills_the_new_model_form_from_a_job(tmp_path):
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    client = create_app(str(jobs_dir)).test_client()
    config = json.loads((record / "model" / "config.json").read_text())
    (record / "model" / "config.json").write_text(json.dumps(dict(config, network="/x/network-mnist-simple.py")))
    record_data = json.loads((record / "job.json").read_text())
    (record / "job.json").write_text(json.dumps(dict(record_data, network="network-mnist-simple")))
    page = client.get(f"/models/new?clone={record.name}").get_data(as_text=True)
    assert 'value="model 20260101-000000-gan (copy)"' in page
    assert re.search(r'id="network-network-mnist-simple" value="network-mnist-simple"\s+checked', page)
    assert re.search(r'id="batch_size"[^>]*value="16"', page) or re.search(r'value="16"[^>]*id="batch_size"', page)


# ------------------------------------------------------------------ charts
def test_charts_group_metrics_by_kind_with_validation_overlaid():
    epochs = [{"epoch": "1", "step": "10", "d_loss": "1.5", "val_d_loss": "1.4", "d_real": "0.6", "lr": "0.0002",
               "chi_square": "2.0", "images_per_sec": "300"},
              {"epoch": "2", "step": "20", "d_loss": "1.2", "val_d_loss": "nan", "d_real": "0.55", "lr": "0.0002",
               "chi_square": "1.0", "images_per_sec": "310"}]
    steps = [{"step": "5", "d_loss": "1.6"}, {"step": "10", "d_loss": "1.5"}, {"step": "15", "d_loss": "1.3"}]
    panels = {panel["id"]: panel for panel in charts.panels(epochs, steps)}
    assert list(panels) == ["losses", "d_outputs", "metrics", "lr", "speed"]
    losses = panels["losses"]
    assert [s["label"] for s in losses["series"]] == ["d_loss", "val_d_loss"]
    assert losses["series"][0]["color"] == losses["series"][1]["color"] and losses["series"][1]["dash"]
    assert losses["data"][0] == [5, 10, 15]  # per-step points move the train line within an epoch; NaN dropped
    assert losses["data"][1] == [1.6, 1.5, 1.3] and losses["data"][2] == [None, 1.4, None]
    assert panels["d_outputs"]["data"][1] == [0.6, 0.55]


# ------------------------------------------------------------------ job management
def test_rename_download_and_delete_with_confirmation(tmp_path):
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    (record / "model" / "leak").symlink_to("/etc/passwd")
    client = create_app(str(jobs_dir)).test_client()
    token = csrf_token(client, f"/jobs/{record.name}")
    assert client.post(f"/jobs/{record.name}/rename", data={"csrf_token": token, "name": "  digits  v2 "}).status_code \
        == 302
    assert "<h1>digits v2" in client.get(f"/jobs/{record.name}").get_data(as_text=True)
    assert client.post(f"/jobs/{record.name}/rename", data={"csrf_token": token, "name": " "}).status_code == 422
    download = client.get(f"/jobs/{record.name}/download.zip")
    names = zipfile.ZipFile(io.BytesIO(download.data)).namelist()
    assert "model/config.json" in names and "model/checkpoints/checkpoint" in names and "model/leak" not in names
    wrong = client.post(f"/jobs/{record.name}/delete", data={"csrf_token": token, "confirm": "digits"})
    assert wrong.status_code == 422 and record.is_dir()
    right = client.post(f"/jobs/{record.name}/delete", data={"csrf_token": token, "confirm": "digits v2"})
    assert right.status_code == 302 and not record.exists() and job_folders(jobs_dir) == []


def test_a_found_job_is_not_deleted_by_the_ui(walkthrough):
    client = create_app(str(walkthrough)).test_client()
    job_id = found_id(walkthrough / "mnist")
    assert 'id="delete-job"' not in client.get(f"/jobs/{job_id}").get_data(as_text=True)
    token = csrf_token(client, "/models/new")
    response = client.post(f"/jobs/{job_id}/delete", data={"csrf_token": token, "confirm": "mnist"})
    assert response.status_code == 422 and "made outside the web UI" in response.get_data(as_text=True)
    assert (walkthrough / "mnist" / "dataset.json").is_file()


def test_the_favicon_is_served(tmp_path):
    response = create_app(str(tmp_path / "jobs")).test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"


def test_the_snapshot_timelapse_plays_every_epoch_forward_and_back(tmp_path):
    from PIL import Image

    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    samples = record / "model" / "samples"
    samples.mkdir()
    for epoch in (1, 2, 3):
        Image.new("RGB", (12, 12), (80 * epoch, 0, 0)).save(samples / f"fakes_epoch{epoch:04d}.png")
    client = create_app(str(jobs_dir)).test_client()
    page = client.get(f"/jobs/{record.name}").get_data(as_text=True)
    assert "fakes_epoch0001.png" in page and 'id="snapshot-range"' in page and "timelapse of the 3 epochs" in page
    gif = Image.open(io.BytesIO(client.get(f"/jobs/{record.name}/timelapse.gif").data))
    reds = []
    for frame in range(gif.n_frames):
        gif.seek(frame)
        reds.append(gif.convert("RGB").getpixel((0, 0))[0])
    assert reds == [80, 160, 240, 160]


def test_a_dataset_page_shows_the_class_histogram_and_the_mean_image(tiny_mnist_dataset, tmp_path):
    client = create_app(str(tmp_path / "jobs"), allow_roots=[str(tiny_mnist_dataset.parent)]).test_client()
    job_id = found_id(tiny_mnist_dataset)
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    histogram = page.split('id="class-histogram"')[1]
    assert histogram.count('class="bar"') == 20 and "160 entries" in histogram
    mean = client.get(f"/jobs/{job_id}/mean.png")
    assert mean.status_code == 200 and mean.mimetype == "image/png"


def test_an_encoded_image_offers_its_z_to_a_sweep_of_the_gan_it_came_from(tmp_path):
    import numpy as np

    from digits_gan_plugin import jobdir

    jobs_dir = tmp_path / "jobs"
    gan = model_record(jobs_dir, GENERATOR, "20260101-000000-gan")
    encoder = model_record(jobs_dir, ENCODER, "20260101-000000-enc")
    config = json.loads((encoder / "model" / "config.json").read_text())
    (encoder / "model" / "config.json").write_text(json.dumps(dict(config, weights=str(gan / "model"))))
    result = encoder / "model" / "inference" / "encoded"
    z = np.array([[0.5, -0.25, 0.0, 1.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    jobdir.write_result(result, {"inputs": np.zeros((2, 8, 8, 1), np.uint8), "images": np.zeros((2, 8, 8, 1), np.uint8),
                                 "z": z}, info={"task": "encode-list"})
    fake_record(jobs_dir, "20260101-000001-run", "inference", model="20260101-000000-enc", task="encode-list",
                target=str(result), view_options={"task": "encoder"})
    client = create_app(str(jobs_dir)).test_client()
    page = client.get("/jobs/20260101-000001-run").get_data(as_text=True)
    assert 'id="show-as"' not in page  # an encoder's result is shown one way only
    links = re.findall(r'class="btn btn-default btn-sm use-z" href="([^"]+)"', page)
    assert len(links) == 2 and links[0].startswith("/jobs/20260101-000000-gan?")
    form = client.get(links[0].replace("&amp;", "&")).get_data(as_text=True)
    textarea = form.split('name="z"')[1].split("</textarea>")[0]
    assert "[0.5, -0.25, 0.0, 1.0]" in textarea  # the class-sweep form, filled with image 1's z
    assert client.get("/jobs/20260101-000001-run?view_task=grid").status_code == 422


def test_tensorboard_says_how_to_install_it_when_missing(tmp_path, monkeypatch):
    from digits_gan_plugin.webapp import tensorboard

    monkeypatch.setattr(tensorboard, "available", lambda: False)
    jobs_dir = tmp_path / "jobs"
    record = model_record(jobs_dir, GENERATOR)
    client = create_app(str(jobs_dir)).test_client()
    page = client.get(f"/jobs/{record.name}").get_data(as_text=True)
    assert re.search(r'id="tensorboard-button"\s+disabled', page)
    token = csrf_token(client, f"/jobs/{record.name}")
    response = client.post(f"/jobs/{record.name}/tensorboard", data={"csrf_token": token})
    assert response.status_code == 422 and "pip install tensorboard" in response.get_data(as_text=True)


SERVER_THAT_STARTS_TENSORBOARD = """
import sys, threading, time
from types import SimpleNamespace
from digits_gan_plugin.webapp.tensorboard import TensorBoards
boards = TensorBoards()
job = SimpleNamespace(id="job", name="job", target=sys.argv[1])
started = threading.Thread(target=boards.start, args=(job,))  # as a Flask request thread does
started.start()
started.join()
child, url = boards.running["job"]
print(child.pid, url, flush=True)
time.sleep(600)
"""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie nobody reaped yet
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tensorboard_exits_when_the_server_is_killed_outright(tmp_path):
    from digits_gan_plugin.jobdir import JobPaths

    pytest.importorskip("tensorboard")
    target = tmp_path / "model"
    events = JobPaths(target).events
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.host").write_bytes(b"")
    server = subprocess.Popen([sys.executable, "-c", SERVER_THAT_STARTS_TENSORBOARD, str(target)],
                              stdout=subprocess.PIPE, text=True)
    board, url = server.stdout.readline().split()
    board = int(board)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # it serves, after the request thread that started it ended
        try:
            with urllib.request.urlopen(url, timeout=2) as page:
                assert page.status == 200
            break
        except OSError:
            assert not _gone(board)
            time.sleep(0.5)
    else:
        pytest.fail("TensorBoard did not answer within 60 s")
    server.kill()
    server.wait()
    deadline = time.monotonic() + 10
    while not _gone(board) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(board), "TensorBoard outlived the killed server"
