"""Shared pieces of the web UI tests: job folders as the server or the CLI writes them
(without running TensorFlow), CSRF tokens, waiting for jobs."""
import json
import re
import time

import pytest

GENERATOR = {"z_dim": 4, "num_classes": 3, "conditional": True, "input_shape": [8, 8, 1], "inference_input": "z"}
UNCONDITIONAL = {"z_dim": 4, "num_classes": None, "conditional": False, "input_shape": [8, 8, 1],
                 "inference_input": "z"}
ENCODER = {"z_dim": None, "num_classes": 3, "conditional": False, "input_shape": [8, 8, 1],
           "inference_input": "image"}


def job_folders(jobs_dir):
    return sorted(p.name for p in jobs_dir.iterdir() if p.is_dir())


def all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def csrf_token(client, url):
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def fake_record(jobs_dir, job_id, kind, status="done", **extra):
    """A web-UI job record folder (job.json) as the server writes it."""
    folder = jobs_dir / job_id
    folder.mkdir(parents=True)
    data = {"kind": kind, "name": f"{kind} {job_id}", "status": status, "commands": [], "created": "2026-01-01",
            "started": "2026-01-01", "finished": None, "exit_code": None, "pid": None, **extra}
    (folder / "job.json").write_text(json.dumps(data))
    return folder


def fake_training_job(folder, facts=GENERATOR, steps=(10,), dataset="/nowhere"):
    """A training job folder as `digits-gan train` leaves it: config.json with the model
    facts, checkpoint files (tiny), metrics.csv."""
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(parents=True)
    config = {"model": facts, "steps_per_epoch": 10, "keep": 2, "network": "/x/network-test.py", "dataset": dataset,
              "epochs": 2, "batch_size": 16}
    (folder / "config.json").write_text(json.dumps(config))
    for step in steps:
        for suffix in ("index", "data-00000-of-00001"):
            (checkpoints / f"model.ckpt-{step}.{suffix}").write_bytes(b"0" * 1000)
    (checkpoints / "checkpoint").write_text(f'model_checkpoint_path: "model.ckpt-{steps[-1]}"\n')
    (folder / "metrics.csv").write_text("epoch,step,d_loss,g_loss,val_d_loss,d_real,lr\n1,10,1.5,0.7,1.4,0.6,0.0002\n")
    return folder


def fake_dataset(folder, classes=3, plugin="synthetic"):
    """A dataset folder's dataset.json (no LMDB: enough for listing and the forms)."""
    folder.mkdir(parents=True)
    meta = {"plugin_id": plugin, "stages": {"train_db": {"count": 30, "feature_shape": [1, 8, 8],
                                                         "feature_dtype": "uint8"}},
            "num_classes": classes, "label_names": [str(k) for k in range(classes)] if classes else None}
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder


def wait_finished(manager, job, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.get(job.id)
        if job.ended:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.id} still {job.status} after {timeout} s")


@pytest.fixture(autouse=True)
def user_folders(tmp_path, monkeypatch):
    """The secret key and the fit-check cache in the test's own config/cache folders."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path
