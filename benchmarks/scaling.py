"""Data-parallel scaling of network-mnist (batch 64): images/s of

- 1 vs 2 devices in one process (`--devices N`: logical CPU devices on a CPU-only
  machine, real GPUs when at least 2 are visible; 1 GPU when only one is);
- 1 vs 2 local workers (`--cluster`, TensorFlow's gRPC runtime on 127.0.0.1),

all on the same synthetic MNIST-shaped dataset (28x28x1, 10 classes) in the same run.
Each configuration is one `digits-gan train` subprocess of 2 epochs; images/s is the
metrics.csv figure of epoch 2 (warm: graph building and first steps excluded). The
overhead ratio is images/s(1) / images/s(2): on one machine, splitting the same cores
into towers or processes cannot add compute, so this measures what the split costs
(1.0 = free); on real extra devices a ratio < 1 is a speed-up.

    python benchmarks/scaling.py            # 20 steps per epoch (a few minutes on 2 cores)
    python benchmarks/scaling.py --quick    # smoke run: 3 steps per epoch
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BATCH = 64
CLI = "import sys; from digits_gan_plugin.cli import main; sys.exit(main())"


def synthetic_mnist(out, count):
    """`count` random 1x28x28 'digits' with labels 0..9 (the shipped synthetic plugin)."""
    from digits_gan_plugin.data_plugins.synthetic import DataIngestion
    from digits_gan_plugin.dataset_io import write_dataset

    write_dataset(DataIngestion(size=28, channels=1, classes=10, train_count=count, val_count=0), out,
                  workers=1, progress=False)


def train_command(dataset, out, *extra):
    return [sys.executable, "-c", CLI, "train", "--dataset", dataset, "--network", "network-mnist", "--epochs", "2",
            "--batch-size", str(BATCH), "--seed", "1", "--no-progress", "--summary-interval", "1000",
            *(["--out", out] if out else []), *extra]


def epoch2_rate(job):
    from digits_gan_plugin import jobdir

    return float(jobdir.read_metrics(job)[-1]["images_per_sec"])


def run_devices(dataset, root, devices, threads):
    job = os.path.join(root, f"devices-{devices.replace(',', '_').replace('/', '')}")
    subprocess.run(train_command(dataset, job, "--devices", devices, "--threads", str(threads)),
                   check=True, capture_output=True, text=True, timeout=3600)
    return epoch2_rate(job)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_workers(dataset, root, workers, threads):
    spec = os.path.join(root, f"cluster-{workers}.json")
    with open(spec, "w") as stream:
        json.dump({"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}, stream)
    job = os.path.join(root, f"workers-{workers}")
    common = ["--cluster", spec, "--threads", str(threads)]
    helpers = [subprocess.Popen(train_command(dataset, None, *common, "--task", f"worker:{k}"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for k in range(1, workers)]
    try:
        subprocess.run(train_command(dataset, job, *common, "--task", "worker:0"),
                       check=True, capture_output=True, text=True, timeout=3600)
        for helper in helpers:
            helper.wait(timeout=120)
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
    return epoch2_rate(job)


def visible_gpus():
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0


def report(label, one, two):
    print(f"{label:<34} {one:>10.1f} {two:>10.1f} {one / two:>9.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps per epoch")
    parser.add_argument("--steps", type=int, help="steps per epoch (default 20, --quick 3)")
    args = parser.parse_args()
    steps = args.steps or (3 if args.quick else 20)
    cores = len(os.sched_getaffinity(0))
    gpus = visible_gpus()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digits-gan-scaling-") as root:
        dataset = os.path.join(root, "mnist")
        synthetic_mnist(dataset, steps * BATCH)
        print(f"network-mnist, batch {BATCH}, {steps} steps per epoch, images/s of epoch 2; {cores} cores, "
              f"{gpus} GPU(s)")
        print(f"{'configuration':<34} {'1':>10} {'2':>10} {'overhead (1/2)':>9}")
        if gpus >= 2:
            report("GPUs (--devices 1 vs 2)", run_devices(dataset, root, "1", cores),
                   run_devices(dataset, root, "2", cores))
        elif gpus == 1:
            print(f"{'1 GPU (--devices 1)':<34} {run_devices(dataset, root, '1', cores):>10.1f}")
        cpus = "/device:CPU:0" if gpus else "1"
        two_cpus = "/device:CPU:0,/device:CPU:1" if gpus else "2"
        report("logical CPU devices", run_devices(dataset, root, cpus, cores),
               run_devices(dataset, root, two_cpus, cores))
        report(f"local workers ({max(1, cores // 2)} threads each)", run_workers(dataset, root, 1, max(1, cores // 2)),
               run_workers(dataset, root, 2, max(1, cores // 2)))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
