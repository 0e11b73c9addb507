"""The web UI's refusals (each with a clear message and nothing written) and its job
state on disk (a restart marks orphaned running jobs interrupted). Flask test client only."""
import errno
import io
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.webapp import create_app
from digits_gan_plugin.webapp import jobs as webapp_jobs
from digits_gan_plugin.webapp.jobs import JobManager, cli_command, runner_env
from digits_gan_plugin.webapp.runner import OutputPump
from webapp_helpers import (ENCODER, csrf_token, fake_dataset, fake_record, fake_training_job, job_folders,
                            user_folders, wait_finished)

__all__ = ["user_folders"]  # the autouse fixture: secret key and caches in tmp folders


@pytest.fixture
def jobs_dir(tmp_path):
    return tmp_path / "jobs"


@pytest.fixture
def client(jobs_dir):
    return create_app(str(jobs_dir), max_upload_mb=1, max_pixels=64 * 64).test_client()


def test_a_post_without_csrf_token_is_refused_and_writes_nothing(client, jobs_dir):
    response = client.post("/datasets/new/mnist", data={"job_name": "digits", "val_fraction": "0.1", "seed": "0"})
    assert response.status_code == 400
    assert "without a valid security token" in response.get_data(as_text=True)
    assert job_folders(jobs_dir) == []


@pytest.mark.parametrize("error, status", [
    (OSError(errno.ENOSPC, "No space left on device", "job.json"), 507),
    (PermissionError(errno.EACCES, "Permission denied", "job.json"), 500),
])
def test_a_file_that_cannot_be_written_is_a_page_naming_it_not_an_internal_error(client, jobs_dir, monkeypatch,
                                                                                 error, status):
    def fails(path, data):
        raise type(error)(error.errno, error.strerror, str(path))

    monkeypatch.setattr(webapp_jobs, "write_json_atomic", fails)
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", data={"csrf_token": token, "job_name": "digits",
                                                        "val_fraction": "0.1", "seed": "0"})
    text = response.get_data(as_text=True)
    assert response.status_code == status
    assert "Cannot read or write a file" in text and f"job.json: {error.strerror}" in text
    assert job_folders(jobs_dir) == []  # the job folder made for it is gone again


@pytest.mark.parametrize("source", ["outside", "jobs/../outside"])
def test_a_path_outside_the_allowed_roots_is_refused(client, jobs_dir, tmp_path, source):
    (tmp_path / "outside").mkdir()
    token = csrf_token(client, "/datasets/new/imagefolder")
    response = client.post("/datasets/new/imagefolder", data={
        "csrf_token": token, "job_name": "faces", "source": str(tmp_path / source), "size": "8",
        "channels": "rgb", "val_fraction": "0.1", "seed": "0"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "outside the allowed folders" in text or "&#39;..&#39; is not allowed" in text
    assert job_folders(jobs_dir) == []


def test_a_path_inside_an_allowed_root_starts_a_job(jobs_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    app = create_app(str(jobs_dir), allow_roots=[str(tmp_path / "mine")])
    client = app.test_client()
    token = csrf_token(client, "/datasets/new/imagefolder")
    response = client.post("/datasets/new/imagefolder", data={
        "csrf_token": token, "job_name": "faces", "source": str(tmp_path / "mine"), "size": "8",
        "channels": "rgb", "val_fraction": "0.1", "seed": "0"})
    assert response.status_code == 302
    job = json.loads((jobs_dir / job_folders(jobs_dir)[0] / "job.json").read_text())
    assert job["kind"] == "dataset" and job["commands"][0][3:6] == ["dataset", "create", "imagefolder"]
    assert "--source" in job["commands"][0]
    manager = app.extensions["digits_gan_jobs"]
    ended = wait_finished(manager, manager.get(job_folders(jobs_dir)[0]))
    assert ended.status == "error" and "no images" in ended.log_tail().lower()
    assert "no images" in ended.error.lower()  # the one-line error shown above the log
    page = client.get(f"/jobs/{ended.id}").get_data(as_text=True)
    assert page.index('id="job-error"') < page.index('id="job-log"')


def test_an_oversized_upload_is_refused(client, jobs_dir):
    fake_record(jobs_dir, "20260101-000000-data", "dataset")
    token = csrf_token(client, "/models/new")
    before = job_folders(jobs_dir)
    response = client.post("/models/new", content_type="multipart/form-data", data={
        "csrf_token": token, "job_name": "big", "dataset": "20260101-000000-data", "network": "custom",
        "custom_file": (io.BytesIO(b"#" * (2 * 1024 * 1024)), "network-big.py"), "solver": "adam",
        "lr": "0.0002", "epochs": "1", "batch_size": "16", "weights": ""})
    assert response.status_code == 413
    assert "larger than the limit of 1 MB" in response.get_data(as_text=True)
    assert job_folders(jobs_dir) == before


def encoder_model(jobs_dir, job_id="20260101-000000-enc"):
    record = fake_record(jobs_dir, job_id, "model", network="network-test-encoder")
    fake_training_job(record / "model", ENCODER)
    return record


def test_an_image_over_the_pixel_limit_is_refused(client, jobs_dir):
    record = encoder_model(jobs_dir)
    png = io.BytesIO()
    Image.fromarray(np.zeros((65, 64, 3), np.uint8)).save(png, format="PNG")
    png.seek(0)
    token = csrf_token(client, f"/jobs/{record.name}")
    before = sorted(p.name for p in (record / "model").iterdir())
    response = client.post(f"/jobs/{record.name}/infer", content_type="multipart/form-data", data={
        "csrf_token": token, "view_plugin": "gan-view", "task": "encode-list", "checkpoint": "last",
        "max_count": "10", "view-task": "encoder", "view-frame_ms": "120", "images": (png, "face.png")})
    assert response.status_code == 400
    assert "64 x 65 pixels is more than the limit of 4096 pixels" in response.get_data(as_text=True)
    assert job_folders(jobs_dir) == [record.name]
    assert sorted(p.name for p in (record / "model").iterdir()) == before


def test_a_model_file_with_a_syntax_error_is_shown_with_the_line_marked(client, jobs_dir):
    fake_record(jobs_dir, "20260101-000000-data", "dataset")
    fake_dataset(jobs_dir / "20260101-000000-data" / "dataset")
    token = csrf_token(client, "/models/new")
    source = "class UserModel(Tower):\n    def loss(self:\n        return 0\n"
    response = client.post("/models/new", data={
        "csrf_token": token, "job_name": "broken", "dataset": "20260101-000000-data", "network": "custom",
        "custom_network": source, "solver": "adam", "lr": "0.0002", "epochs": "1", "batch_size": "16", "weights": ""})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "line 2: syntax error" in text and "nothing was saved" in text
    marked = re.search(r'<span class="code-line error-line"><span class="lineno">(\d+)</span>([^\n]*)', text)
    assert marked and marked.group(1) == "2" and "def loss(self:" in marked.group(2)
    assert job_folders(jobs_dir) == ["20260101-000000-data"]


def test_the_model_list_offers_the_shipped_definitions(client):
    text = client.get("/models/new").get_data(as_text=True)
    for name in ("network-mnist", "network-mnist-simple", "network-celebA"):
        assert f'id="network-{name}"' in text
    assert "Conditional DCGAN" in text  # the definition's description


def test_a_running_job_without_its_process_is_interrupted_after_a_restart(jobs_dir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    fake_record(jobs_dir, "20260101-000000-gan", "model", status="running", pid=gone.pid, network="network-mnist")
    client = create_app(str(jobs_dir)).test_client()
    job = json.loads((jobs_dir / "20260101-000000-gan" / "job.json").read_text())
    assert job["status"] == "interrupted" and job["finished"]
    text = client.get("/jobs/20260101-000000-gan").get_data(as_text=True)
    assert 'id="resume-button"' in text and "interrupted" in text


def test_a_job_records_its_end_and_stop_sends_sigint(jobs_dir):
    manager = JobManager(jobs_dir)
    jobs_dir.mkdir(exist_ok=True)
    done = manager.create(manager.new_folder(), "dataset", "ok", [cli_command("dataset", "plugins")])
    done = wait_finished(manager, done)
    assert (done.status, done.exit_code) == ("done", 0)
    assert "mnist" in done.log_tail() and "$ digits-gan dataset plugins" in done.log_tail()
    sleeper = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"]
    running = manager.create(manager.new_folder(), "dataset", "slow", [sleeper])
    deadline = time.monotonic() + 10
    while "ready" not in running.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert manager.stop(running)
    stopped = wait_finished(manager, running)
    assert stopped.status == "stopped"


def test_runners_silence_tensorflows_start_up_noise(jobs_dir, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert runner_env()["TF_CPP_MIN_LOG_LEVEL"] == "3"
    # what every runner command does: the CLI quiets TensorFlow (runtime.quiet_tensorflow), then imports it
    probe = [sys.executable, "-c", "import digits_gan_plugin.runtime; import tensorflow as tf; "
             "tf.config.list_physical_devices('GPU'); print('probed')"]
    manager = JobManager(jobs_dir)
    job = wait_finished(manager, manager.create(manager.new_folder(), "model", "probe", [probe]), timeout=120)
    log = job.log_tail()
    assert "probed" in log and "cuInit" not in log and not re.search(r"^[EWI]0000 ", log, re.MULTILINE), log


def test_the_log_says_tensorflow_is_starting(jobs_dir):
    manager = JobManager(jobs_dir)
    job = wait_finished(manager, manager.create(manager.new_folder(), "model", "help", [cli_command("train", "--help")]))
    lines = job.log_tail().splitlines()
    assert lines[0] == "$ digits-gan train --help" and lines[1].startswith("starting TensorFlow")


def test_the_output_pump_keeps_lines_in_the_log_and_bars_in_progress(tmp_path):
    log = io.StringIO()
    pump = OutputPump(log, tmp_path / "progress.json")
    pump.feed("building\r\ntrain_db:  10%|#   | 45/450 [00:01<00:09]")
    pump.feed("\rtrain_db: 100%|####| 450/450 [00:02<00:00]\r\ndigits-gan: error: x.png: not an image\r\ndone\r\n")
    pump.close()
    assert log.getvalue() == ("building\ntrain_db: 100%|####| 450/450 [00:02<00:00]\n"
                              "digits-gan: error: x.png: not an image\ndone\n")
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert (progress["done"], progress["total"]) == (450, 450)
    assert pump.error == "x.png: not an image"
