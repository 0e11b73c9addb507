"""Hostile requests and faults against the web UI (issue 12): forged Host (DNS
rebinding) and Origin headers, symlinks out of job folders, oversized fields, custom
code from another machine, bad ports and jobs folders, many Resume clicks, broken
result files. Each is refused with a message and leaves nothing behind."""
import json
import os
import socket
import sys
import threading

import pytest

from digits_gan_plugin import cli
from digits_gan_plugin.webapp import create_app
from digits_gan_plugin.webapp.manage import resume_commands
from digits_gan_plugin.webapp.safety import HostGuard, served_hosts
from webapp_helpers import (GENERATOR, all_files, csrf_token, fake_dataset, fake_record, fake_training_job,
                            job_folders, user_folders, wait_finished)

__all__ = ["user_folders"]


@pytest.fixture
def jobs_dir(tmp_path):
    return tmp_path / "jobs"


@pytest.fixture
def app(jobs_dir):
    return create_app(str(jobs_dir))


@pytest.fixture
def client(app):
    return app.test_client()


def dataset_post(token, **extra):
    return {"csrf_token": token, "job_name": "digits", "val_fraction": "0.1", "seed": "0", **extra}


# ------------------------------------------------------------------ Host and Origin
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:5000", "127.0.0.1.nip.io", "localhost.evil"])
def test_a_request_for_another_host_name_is_refused(client, host, jobs_dir):
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "is not an address this server answers to" in text and "csrf_token" not in text
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", headers={"Host": host}, data=dataset_post(token))
    assert response.status_code == 403 and job_folders(jobs_dir) == []


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:8080", "[::1]:5000", "LOCALHOST"])
def test_the_loopback_names_are_served(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://attacker.example", "null", "http://localhost:9999",
                                    "file:///home/me/page.html"])
def test_a_form_posted_from_another_origin_is_refused(client, jobs_dir, origin):
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", headers={"Host": "localhost:5000", "Origin": origin},
                           data=dataset_post(token))
    assert response.status_code == 403
    assert "only pages of this server may change jobs" in response.get_data(as_text=True)
    assert job_folders(jobs_dir) == []


def test_a_referer_from_another_site_is_refused_when_origin_is_missing(client, jobs_dir):
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", headers={"Host": "localhost", "Referer": "http://evil.example/x"},
                           data=dataset_post(token))
    assert response.status_code == 403 and job_folders(jobs_dir) == []


def test_a_form_from_the_served_origin_is_accepted(client, jobs_dir, tmp_path):
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", headers={"Host": "localhost:5000", "Origin": "http://localhost:5000"},
                           data=dataset_post(token))
    assert response.status_code == 302 and len(job_folders(jobs_dir)) == 1


def test_hosts_served_follow_the_bind_address():
    assert set(served_hosts("127.0.0.1")) >= {"127.0.0.1", "localhost", "::1"}
    assert served_hosts("192.168.1.5") == ["192.168.1.5"]
    guard = HostGuard(served_hosts("0.0.0.0", ["gpu-box.lan"]))
    assert guard.problem("GET", "gpu-box.lan:5000") is None
    assert guard.problem("GET", f"{socket.gethostname()}:5000") is None and guard.problem("GET", "localhost") is None
    assert guard.problem("GET", "attacker.example") is not None


# ------------------------------------------------------------------ files and job folders
def test_a_symlink_inside_a_job_folder_does_not_serve_files_outside_it(client, jobs_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    record = fake_record(jobs_dir, "20260101-000000-data", "dataset")
    (record / "dataset").mkdir()
    (record / "dataset" / "samples.png").symlink_to(secret)
    (record / "dataset" / "etc").symlink_to("/etc")
    for name in ("samples.png", "etc/passwd", "../../secret.txt", "%2e%2e/%2e%2e/secret.txt"):
        response = client.get(f"/jobs/20260101-000000-data/files/{name}")
        assert response.status_code == 404, name
        assert b"private" not in response.data and b"root:" not in response.data


def test_a_symlinked_job_folder_is_not_a_job(client, jobs_dir, tmp_path):
    outside = tmp_path / "outside"
    fake_record(outside.parent, "outside", "dataset")
    (outside / "dataset").symlink_to("/etc")
    jobs_dir.mkdir(exist_ok=True)
    (jobs_dir / "20260101-000000-link").symlink_to(outside)
    assert client.get("/jobs/20260101-000000-link").status_code == 404
    assert client.get("/jobs/20260101-000000-link/files/dataset/passwd").status_code == 404
    assert "20260101-000000-link" not in client.get("/").get_data(as_text=True)


def test_a_symlinked_folder_leaving_the_roots_is_not_listed(jobs_dir, tmp_path):
    elsewhere = fake_dataset(tmp_path / "elsewhere" / "data")
    jobs_dir.mkdir()
    (jobs_dir / "linked").symlink_to(elsewhere.parent)
    text = create_app(str(jobs_dir)).test_client().get("/").get_data(as_text=True)
    assert "No datasets yet" in text and "linked" not in text


# ------------------------------------------------------------------ sizes and custom code
def test_an_oversized_text_field_is_refused(client, jobs_dir):
    token = csrf_token(client, "/datasets/new/mnist")
    response = client.post("/datasets/new/mnist", data=dataset_post(token, source="x" * 70000))
    assert response.status_code == 413
    assert "source: 70000 characters is more than the limit" in response.get_data(as_text=True)
    response = client.post("/datasets/new/mnist", data=dataset_post(token, job_name="n" * 81))
    assert response.status_code == 400
    assert job_folders(jobs_dir) == []


def test_custom_network_code_is_accepted_only_from_this_machine(app, jobs_dir):
    fake_record(jobs_dir, "20260101-000000-data", "dataset")
    fake_dataset(jobs_dir / "20260101-000000-data" / "dataset")
    remote = app.test_client()
    remote.environ_base["REMOTE_ADDR"] = "192.168.1.7"
    page = remote.get("/models/new").get_data(as_text=True)
    assert "only from this machine" in page and 'name="custom_network"' not in page
    token = csrf_token(remote, "/models/new")
    response = remote.post("/models/new", data={
        "csrf_token": token, "job_name": "evil", "dataset": "20260101-000000-data", "network": "custom",
        "custom_network": "import os\nclass UserModel:\n    pass\n", "epochs": "1", "batch_size": "16",
        "solver": "adam", "lr": "0.0002", "keep": "2"})
    assert response.status_code == 400
    assert "accepted only from this machine" in response.get_data(as_text=True)
    assert job_folders(jobs_dir) == ["20260101-000000-data"]


# ------------------------------------------------------------------ serve's arguments
@pytest.mark.parametrize("port", ["70000", "0", "-1", "http"])
def test_serve_refuses_a_port_outside_1_to_65535(port, tmp_path, capsys):
    assert cli.main(["serve", "--jobs-dir", str(tmp_path / "jobs"), "--port", port]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"digits-gan: error: --port {port}") and "1 to 65535" in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "jobs").exists()


def test_serve_refuses_an_unwritable_jobs_folder_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert cli.main(["serve", "--jobs-dir", str(tmp_path / "file" / "jobs"), "--port", "5001"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("digits-gan: error: --jobs-dir") and "cannot write there" in error
    assert len(error.splitlines()) == 1


def test_serve_on_a_port_in_use_is_one_line_before_anything_is_printed(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert cli.main(["serve", "--jobs-dir", str(tmp_path / "jobs"), "--port", port]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no "web UI on http://..." for a server that never listened
    assert captured.err.strip() == (f"digits-gan: error: --host 127.0.0.1 --port {port}: cannot listen there "
                                    f"(Address already in use); another program uses that port: pick another "
                                    f"with --port")


# ------------------------------------------------------------------ one run at a time
def test_four_resume_clicks_start_one_run(app, jobs_dir):
    sleeper = [sys.executable, "-c", "import time; print('run', flush=True); time.sleep(3)"]
    fake_record(jobs_dir, "20260101-000000-data", "dataset", status="stopped", commands=[sleeper])
    app.config["WTF_CSRF_ENABLED"] = False  # four browsers at once; the token is tested elsewhere
    statuses = []

    def click():
        client = app.test_client()
        statuses.append(client.post("/jobs/20260101-000000-data/resume", headers={"Host": "localhost"}).status_code)

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert statuses == [302] * 4
    manager = app.extensions["digits_gan_jobs"]
    job = wait_finished(manager, manager.get("20260101-000000-data"))
    assert job.status == "done"
    assert job.log_tail().count("$ ") == 1 and job.log_tail().count("run\n") == 1
    page = app.test_client().get("/jobs/20260101-000000-data").get_data(as_text=True)
    assert 'id="resume-button"' not in page  # done: nothing to resume


def test_resume_is_not_offered_while_the_job_runs(app, jobs_dir):
    sleeper = [sys.executable, "-c", "import time; time.sleep(5)"]
    manager = app.extensions["digits_gan_jobs"]
    job = manager.create(manager.new_folder(), "dataset", "slow", [sleeper])
    page = app.test_client().get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'id="stop-button"' in page and 'id="resume-button"' not in page
    assert manager.start(job, [sleeper]) is None  # the guard behind the page
    manager.stop(job)
    wait_finished(manager, job)


def test_a_training_job_stopped_during_start_up_resumes_with_train_resume(jobs_dir):
    """Stopped before its first checkpoint: config.json written, no checkpoint yet. Resume
    must continue that folder (train --resume), not train into it afresh (refused)."""
    from digits_gan_plugin.webapp.jobs import Job

    record = fake_record(jobs_dir, "20260101-000000-gan", "model", status="stopped",
                         commands=[["python", "-m", "digits_gan_plugin.cli", "train", "--out", "X"]])
    fake_training_job(record / "model", GENERATOR)
    for leftover in (record / "model" / "checkpoints").iterdir():
        leftover.unlink()
    job = Job(record, json.loads((record / "job.json").read_text()))
    [command] = resume_commands(job)
    assert command[3:] == ["train", "--out", str(record / "model"), "--resume"]
    (record / "model" / "config.json").unlink()  # stopped before even the config: run it again
    assert resume_commands(job) == job.commands


# ------------------------------------------------------------------ broken result files
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_a_zero_byte_or_truncated_result_is_a_page_with_the_message(client, jobs_dir, content):
    model = fake_record(jobs_dir, "20260101-000000-gan", "model", network="network-test")
    fake_training_job(model / "model", GENERATOR)
    result = model / "model" / "inference" / "run"
    result.mkdir(parents=True)
    (result / "result.npz").write_bytes(content)
    fake_record(jobs_dir, "20260101-000001-run", "inference", model="20260101-000000-gan", task="single",
                target=str(result))
    response = client.get("/jobs/20260101-000001-run")
    assert response.status_code == 422
    assert "result.npz" in response.get_data(as_text=True)


def test_the_secret_key_lives_in_the_user_config_folder(jobs_dir, tmp_path):
    create_app(str(jobs_dir))
    assert all_files(jobs_dir) == []
    key = tmp_path / "xdg-config" / "digits-gan" / "web-secret-key"
    assert key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert create_app(str(jobs_dir)).config["SECRET_KEY"] == key.read_text().strip()
    assert os.listdir(jobs_dir) == []
