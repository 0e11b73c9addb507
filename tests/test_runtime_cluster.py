"""Multi-worker training: a chief and a worker as local processes on 127.0.0.1
ports (TensorFlow's gRPC runtime) train a tiny model; each feeds its own shard; only
the chief writes the job; a killed worker stops the chief with a message naming it."""
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import TINY_GAN

from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.errors import TrainingError
from digits_gan_plugin.runtime.cluster import TRACE_ENV, read_cluster

TRAIN_COUNT, BATCH = 32, 8


def squares_plugin():
    """8x8 grey squares, unlabelled (1,8,8 uint8): flat grey 7 x index."""
    return SYNTHETIC(size=8, channels=1, train_count=TRAIN_COUNT, val_count=0, pattern="ramp", step=7)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from digits_gan_plugin.dataset_io import write_dataset

    root = tmp_path_factory.mktemp("cluster")
    write_dataset(squares_plugin(), root / "dataset", workers=1, progress=False)
    (root / "network-tiny.py").write_text(textwrap.dedent(TINY_GAN))
    return root


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start(root, cluster_file, task, trace, *extra):
    command = [sys.executable, "-c", "import sys; from digits_gan_plugin.cli import main; sys.exit(main())",
               "train", "--cluster", str(cluster_file), "--task", task, "--dataset", str(root / "dataset"),
               "--batch-size", str(BATCH), "--threads", "1", "--seed", "3", "--no-progress", *extra]
    env = dict(os.environ, **{TRACE_ENV: str(trace)})
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def cluster_file(root, name):
    path = root / name
    path.write_text(json.dumps({"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}))
    return path


def test_chief_and_worker_train_on_different_shards_and_only_the_chief_writes(setup, tmp_path):
    spec = cluster_file(tmp_path, "cluster.json")
    job, trace = tmp_path / "job", tmp_path / "trace"
    worker = start(setup, spec, "worker:1", trace)
    chief = start(setup, spec, "worker:0", trace, "--network", str(setup / "network-tiny.py"), "--out", str(job),
                  "--epochs", "2")
    try:
        chief_out, chief_err = chief.communicate(timeout=150)
        worker_out, worker_err = worker.communicate(timeout=30)
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
    assert chief.returncode == 0, chief_err[-3000:]
    assert worker.returncode == 0, worker_err[-3000:]
    assert "trained 8 steps" in chief_out
    config = json.loads((job / "config.json").read_text())
    assert config["devices"] == ["/job:worker/task:0", "/job:worker/task:1"]
    checkpoints = sorted(p.name for p in (job / "checkpoints").glob("*.index"))
    assert checkpoints == ["model.ckpt-4.index", "model.ckpt-8.index"]
    fed = {k: [list(map(int, line.split())) for line in (trace / f"items-worker-{k}.txt").read_text().splitlines()]
           for k in (0, 1)}
    assert all(len(batch) == BATCH // 2 for batches in fed.values() for batch in batches)
    shards = {k: {i for batch in batches for i in batch} for k, batches in fed.items()}
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert {i % 2 for i in shards[0]} == {0} and {i % 2 for i in shards[1]} == {1}
    assert len(fed[1]) >= 8  # every step consumed one of the worker's batches
    assert sorted(os.listdir(tmp_path)) == ["cluster.json", "job", "trace"]  # the worker wrote no job


def test_killed_worker_stops_the_chief_with_a_message_naming_it(setup, tmp_path):
    spec = cluster_file(tmp_path, "cluster.json")
    job, trace = tmp_path / "job", tmp_path / "trace"
    worker = start(setup, spec, "worker:1", trace)
    chief = start(setup, spec, "worker:0", trace, "--network", str(setup / "network-tiny.py"), "--out", str(job),
                  "--epochs", "100000")
    try:
        deadline = time.monotonic() + 120
        while not (job / "checkpoints").is_dir():  # training is under way
            assert chief.poll() is None and time.monotonic() < deadline, chief.stderr.read()[-3000:]
            time.sleep(0.2)
        worker.kill()
        killed = time.monotonic()
        _, chief_err = chief.communicate(timeout=60)
        assert time.monotonic() - killed < 30
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
                process.communicate()
    port = json.loads(spec.read_text())["worker"][1]
    assert chief.returncode == 2
    assert f"worker:1 ({port}) stopped responding at step" in chief_err


def test_cluster_spec_from_file_and_tf_config(tmp_path):
    spec = tmp_path / "cluster.json"
    spec.write_text(json.dumps({"worker": ["a:1", "b:2"]}))
    task = read_cluster(spec, "worker:1", environ={})
    assert task.workers == ["a:1", "b:2"] and task.index == 1 and not task.is_chief
    config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    assert read_cluster(environ={"TF_CONFIG": json.dumps(config)}).is_chief
    assert read_cluster(environ={}) is None
    with pytest.raises(TrainingError, match="--task worker:2: expected worker:K with K in 0..1"):
        read_cluster(spec, "worker:2", environ={})
    spec.write_text(json.dumps({"worker": ["a:1"], "ps": ["c:3"]}))
    with pytest.raises(TrainingError, match="expected exactly one job"):
        read_cluster(spec, "worker:0", environ={})


def test_the_lost_worker_named_is_the_one_that_no_longer_accepts_connections():
    from digits_gan_plugin.runtime.cluster import ClusterTask, failed_worker

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    with socket.socket() as chief, socket.socket() as alive:
        for listener in (chief, alive):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        workers = [f"127.0.0.1:{listener.getsockname()[1]}" for listener in (chief, alive)]
        task = ClusterTask([workers[0], dead, workers[1]], 0)
        own_ops_first = "Cancelled: [[{{node step}} = ...]] on /job:worker/replica:0/task:0/device:CPU:0"
        assert failed_worker(own_ops_first, task, 7).startswith(f"worker:1 ({dead}) stopped responding at step 7 ")
        task = ClusterTask([workers[0], workers[1]], 0)  # everyone answers (a hung worker still accepts)
        message = failed_worker("/job:worker/replica:0/task:0 then /job:worker/replica:0/task:1", task, 3)
        assert message.startswith(f"worker:1 ({workers[1]}) stopped responding")
        assert failed_worker("no task named", task, 3).startswith("a worker stopped responding")
