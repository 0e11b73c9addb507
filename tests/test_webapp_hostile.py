"""A hostile tester's requests against the web UI that used to end in a 500, a
traceback, an HTML answer to a JSON poll or a wrong acceptance: Sec-Fetch-Site from
another site, NUL characters, names too long for the file system, symlink loops,
upload names with backslashes, model files the Python parser gives up on, control
characters in job names, methods a page does not take. Each is a 4xx with a message
and leaves nothing behind. Flask test client only (no job runs: starting is stubbed)."""
import io
import json

import numpy as np
import pytest
from PIL import Image
from werkzeug.datastructures import MultiDict

from digits_gan_plugin.webapp import create_app
from webapp_helpers import (ENCODER, GENERATOR, all_files, csrf_token, fake_dataset, fake_record, fake_training_job,
                            job_folders, user_folders)

__all__ = ["user_folders"]  # the autouse fixture: secret key and caches in tmp folders

DATA, GAN, ENC = "20260101-000000-data", "20260101-000000-gan", "20260101-000000-enc"


@pytest.fixture
def jobs_dir(tmp_path):
    folder = tmp_path / "jobs"
    fake_record(folder, DATA, "dataset")
    fake_dataset(folder / DATA / "dataset")
    fake_training_job(fake_record(folder, GAN, "model", network="network-mnist", dataset=DATA) / "model", GENERATOR)
    fake_training_job(fake_record(folder, ENC, "model", network="network-test-encoder") / "model", ENCODER)
    return folder


@pytest.fixture
def app(jobs_dir):
    app = create_app(str(jobs_dir), max_upload_mb=1, max_pixels=64 * 64)
    manager = app.extensions["digits_gan_jobs"]

    def record_only(job, commands):  # what start() records, without running anything
        job.data.update(commands=[list(map(str, c)) for c in commands], status="done")
        job.save()
        return job

    manager.start = record_only
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def png_bytes(side=8):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def job_name(jobs_dir, job_id):
    return json.loads((jobs_dir / job_id / "job.json").read_text())["name"]


def assert_refused_page(response, status=400):
    text = response.get_data(as_text=True)
    assert response.status_code == status, text[-2000:]
    assert "Traceback" not in text and "Internal Server Error" not in text
    return text


# ------------------------------------------------------------------ where a form comes from
@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_post_that_the_browser_marks_as_from_another_site_is_refused(client, jobs_dir, site):
    """No Origin, no Referer (a privacy setting strips them), only Sec-Fetch-Site: a page
    on another site or on another port of this machine (same-site) may not change jobs."""
    token = csrf_token(client, f"/jobs/{DATA}")
    response = client.post(f"/jobs/{DATA}/rename", headers={"Host": "localhost", "Sec-Fetch-Site": site},
                           data={"csrf_token": token, "name": "renamed"})
    text = assert_refused_page(response, 403)
    assert "only pages of this server may change jobs" in text
    assert job_name(jobs_dir, DATA) == f"dataset {DATA}"
    same_origin = client.post(f"/jobs/{DATA}/rename", headers={"Host": "localhost", "Sec-Fetch-Site": "same-origin"},
                              data={"csrf_token": token, "name": "renamed"})
    assert same_origin.status_code == 302 and job_name(jobs_dir, DATA) == "renamed"


# ------------------------------------------------------------------ file names the system refuses
def test_a_nul_or_an_overlong_name_in_a_file_address_is_a_4xx(client, jobs_dir):
    samples = jobs_dir / GAN / "model" / "samples"
    samples.mkdir()
    (samples / "a.png").write_bytes(png_bytes())
    assert client.get(f"/jobs/{GAN}/files/samples/a.png").status_code == 200
    response = client.get(f"/jobs/{GAN}/files/samples/a.png%00.txt")
    assert "NUL" in assert_refused_page(response, 400)
    assert_refused_page(client.get(f"/jobs/{GAN}/files/{'a' * 5000}"), 404)
    assert_refused_page(client.get(f"/jobs/{GAN}/files/{'/'.join(['b' * 200] * 30)}"), 404)


def test_a_symlink_loop_in_a_job_folder_is_not_found(client, jobs_dir):
    model = jobs_dir / GAN / "model"
    (model / "loop-a").symlink_to(model / "loop-b")
    (model / "loop-b").symlink_to(model / "loop-a")
    for name in ("loop-a", "loop-a/file.png"):
        assert_refused_page(client.get(f"/jobs/{GAN}/files/{name}"), 404)


@pytest.mark.parametrize("folder", ["nul", "long name", "long path", "loop"])
def test_a_projector_folder_the_system_cannot_open_is_refused_with_nothing_saved(client, jobs_dir, folder):
    if folder == "loop":
        (jobs_dir / "loop-a").symlink_to(jobs_dir / "loop-b")
        (jobs_dir / "loop-b").symlink_to(jobs_dir / "loop-a")
    value = {"nul": f"{jobs_dir}/a\x00b", "long name": f"{jobs_dir}/{'a' * 300}",
             "long path": f"{jobs_dir}/{'/'.join(['b' * 200] * 30)}", "loop": f"{jobs_dir}/loop-a"}[folder]
    token = csrf_token(client, f"/jobs/{GAN}")
    before = job_folders(jobs_dir)
    response = client.post(f"/jobs/{GAN}/project", data={"csrf_token": token, "checkpoint": "last",
                                                          "project_folder": value})
    text = assert_refused_page(response, 400)
    assert "folder" in text and ("NUL" in text or "not a usable path" in text)
    assert len(text) < 200000  # a 6000-character path is not echoed in full
    assert job_folders(jobs_dir) == before


# ------------------------------------------------------------------ uploads
def encode_post(token, *images):
    data = MultiDict([("csrf_token", token), ("view_plugin", "gan-view"), ("task", "encode-list"),
                      ("checkpoint", "last"), ("view-task", "encoder"), ("view-frame_ms", "120")])
    for image in images:
        data.add("images", image)
    return data


def test_an_upload_named_with_a_nul_is_refused_and_nothing_is_saved(client, jobs_dir):
    token = csrf_token(client, f"/jobs/{ENC}")
    before = job_folders(jobs_dir)
    response = client.post(f"/jobs/{ENC}/infer", content_type="multipart/form-data",
                           data=encode_post(token, (io.BytesIO(png_bytes()), "face\x00.png")))
    assert "NUL characters are not allowed" in assert_refused_page(response, 400)
    assert job_folders(jobs_dir) == before


@pytest.mark.parametrize("sent, saved", [("..\\..\\evil.png", "0000-evil.png"),
                                         ("C:\\Users\\me\\face.png", "0000-face.png"),
                                         ("f\x1b[31mace.png", "0000-f[31mace.png"),
                                         ("a" * 300 + ".png", "0000-" + "a" * 116 + ".png")])
def test_an_upload_is_saved_under_its_last_name_part_only_and_shortened(client, jobs_dir, sent, saved):
    """Windows paths, terminal escapes and names longer than the file system takes (a 500
    and no run before)."""
    token = csrf_token(client, f"/jobs/{ENC}")
    before = job_folders(jobs_dir)
    response = client.post(f"/jobs/{ENC}/infer", content_type="multipart/form-data",
                           data=encode_post(token, (io.BytesIO(png_bytes()), sent)))
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    [run] = sorted(set(job_folders(jobs_dir)) - set(before))
    assert all_files(jobs_dir / run / "uploads") == [saved]


def test_a_model_file_the_python_parser_gives_up_on_is_a_400_naming_it(client, jobs_dir):
    token = csrf_token(client, "/models/new")
    source = "class UserModel:\n    x = " + "-" * 100000 + "1\n"
    response = client.post("/models/new", data={
        "csrf_token": token, "job_name": "deep", "dataset": DATA, "network": "custom", "custom_network": source,
        "solver": "adam", "lr": "0.0002", "epochs": "1", "batch_size": "16", "weights": ""})
    text = assert_refused_page(response, 400)
    assert "custom network" in text and "nothing was saved" in text
    assert job_folders(jobs_dir) == sorted([DATA, GAN, ENC])


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("name", ["a\x00b", "evil\x1b[2Jname", "invoice\u202efdp.exe"])
def test_a_job_name_with_control_characters_is_refused(client, jobs_dir, name):
    token = csrf_token(client, f"/jobs/{DATA}")
    response = client.post(f"/jobs/{DATA}/rename", data={"csrf_token": token, "name": name})
    assert response.status_code in (400, 422)
    assert job_name(jobs_dir, DATA) == f"dataset {DATA}"


# ------------------------------------------------------------------ JSON endpoints and methods
@pytest.mark.parametrize("url", ["/jobs/nope/status.json", "/jobs/nope/metrics.json", f"/jobs/{DATA}/metrics.json",
                                 "/models/fit.json", "/models/fit.json?dataset=nope"])
def test_the_json_endpoints_answer_errors_in_json(client, url):
    response = client.get(url)
    assert response.status_code == 404 and response.is_json
    assert response.get_json()["error"].startswith("Not found")


def test_a_json_endpoint_refuses_another_host_in_json_and_a_job_file_named_json_gets_the_page(client):
    response = client.get(f"/jobs/{GAN}/status.json", headers={"Host": "attacker.example"})
    assert response.status_code == 403 and response.is_json
    assert "attacker.example" in response.get_json()["error"]
    response = client.get(f"/jobs/{GAN}/files/nothing.json")  # the files route, not a JSON endpoint
    assert response.status_code == 404 and not response.is_json and 'id="message"' in response.get_data(as_text=True)


@pytest.mark.parametrize("method, url", [("PUT", "/"), ("DELETE", f"/jobs/{DATA}/stop"), ("PATCH", "/models/new"),
                                         ("GET", f"/jobs/{DATA}/delete"), ("TRACE", "/")])
def test_a_method_a_page_does_not_take_is_a_405_message_page(client, jobs_dir, method, url):
    response = client.open(url, method=method)
    text = assert_refused_page(response, 405)
    assert 'id="message"' in text and "not allowed" in text
    assert "Allow" in response.headers
    assert (jobs_dir / DATA).is_dir()
