"""Projector vs encoder: reconstruction of held-out digits by fitting z.

Given a trained GAN job and an encoder job trained from it (the walkthrough's, or
benchmarks/encoder_quality.py's), on the first `--count` held-out digits (val_db of the
GAN's dataset; 500 for the embedded 5k MNIST sample) prints, next to each other:

    encoder alone        G(E(x)), the class from the encoder's class head
    projector alone      `digits-gan latent project` from z = 0, the class searched
    encoder + projector  the projector started from the encoder's z and class

each as the mean per-pixel squared error (pixels in [0, 1]) and seconds per image on
this machine's CPU (images fitted as one batch). Target: encoder + projector at least
30% lower MSE than the encoder alone, within 2 s per image.

Usage:
    python benchmarks/projector_quality.py --gan-job GAN_JOB --encoder-job ENCODER_JOB [--dataset DS]
    python benchmarks/projector_quality.py --quick --gan-job G --encoder-job E   # smoke run: 4 digits, 6 steps
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits_gan_plugin import jobdir  # noqa: E402
from digits_gan_plugin.dataset_io import DatasetReader  # noqa: E402

MSE_REDUCTION_TARGET = 0.30
SECONDS_TARGET = 2.0


def mse(images, targets):
    """Mean per-pixel squared error of uint8 images, pixels scaled to [0, 1]."""
    return float(np.mean(np.square(images.astype(np.float64) / 255.0 - targets.astype(np.float64) / 255.0)))


def held_out(dataset, count):
    """(uint8 N,H,W,C digits, int64 labels) of the dataset's val_db, the first `count`."""
    reader = DatasetReader(dataset)
    stage = "val_db" if "val_db" in reader.stages else reader.stages[-1]
    images, labels = reader.read_all(stage)
    return images[:count], (None if labels is None else np.asarray(labels)[:count])


def measure(gan_job, encoder_job, dataset, count, settings):
    """{method: {'mse', 's_per_image'}} for the three methods (see the module docstring)."""
    from digits_gan_plugin.runtime.export import freeze
    from digits_gan_plugin.runtime.projector import Projector, encoder_start, perceptual_features

    targets, _ = held_out(dataset, count)
    start = time.perf_counter()
    z, classes, encoded = encoder_start(encoder_job, targets)
    encoder_seconds = time.perf_counter() - start
    tower = freeze(gan_job)
    projector = Projector(tower, settings, perceptual_features(gan_job, settings, tower.facts, dataset))
    alone = projector.project(targets)
    combined = projector.project(targets, z=z, labels=classes)
    per_image = len(targets)
    return {
        "encoder alone": {"mse": mse(encoded, targets), "s_per_image": encoder_seconds / per_image},
        "projector alone": {"mse": mse(alone.reconstructions, targets), "s_per_image": alone.seconds / per_image},
        "encoder + projector": {"mse": mse(combined.reconstructions, targets),
                                "s_per_image": (combined.seconds + encoder_seconds) / per_image},
    }


def report(results, count, steps):
    print(f"\n{count} held-out digits, {steps} Adam steps")
    print(f"{'method':22s} {'MSE':>8s} {'s/image':>9s}")
    for method, row in results.items():
        print(f"{method:22s} {row['mse']:8.4f} {row['s_per_image']:9.3f}")
    base, best = results["encoder alone"], results["encoder + projector"]
    reduction = 1.0 - best["mse"] / base["mse"] if base["mse"] > 0 else 0.0
    met = reduction >= MSE_REDUCTION_TARGET and best["s_per_image"] <= SECONDS_TARGET
    print(f"encoder + projector vs encoder alone: {reduction:+.1%} lower MSE "
          f"(target >= {MSE_REDUCTION_TARGET:.0%} within {SECONDS_TARGET:g} s/image): {'met' if met else 'NOT met'}")
    return reduction, met


def main(argv=None):
    from digits_gan_plugin.runtime.projector import ProjectorSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan-job", required=True, help="trained network-mnist job")
    parser.add_argument("--encoder-job", required=True, help="network-mnist-encoder job trained from it")
    parser.add_argument("--dataset", help="dataset whose val_db is held out (default: the GAN job's)")
    parser.add_argument("--count", type=int, default=500, help="held-out digits (default 500)")
    parser.add_argument("--steps", type=int, default=100, help="projector Adam steps (default 100)")
    parser.add_argument("--lr", type=float, default=0.05, help="projector learning rate (default 0.05)")
    parser.add_argument("--perceptual-weight", type=float, default=0.0, help="feature-loss weight (default 0)")
    parser.add_argument("--perceptual", default="judge", help="judge or discriminator (default judge)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 digits, 6 steps")
    args = parser.parse_args(argv)
    count, steps = (4, 6) if args.quick else (args.count, args.steps)
    dataset = args.dataset or jobdir.read_config(args.gan_job)["dataset"]
    settings = ProjectorSettings(steps=steps, learning_rate=args.lr, perceptual_weight=args.perceptual_weight,
                                 perceptual=args.perceptual)
    results = measure(args.gan_job, args.encoder_job, dataset, count, settings)
    reduction, met = report(results, count, steps)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(results=results, count=count, steps=steps, reduction=reduction, target_met=met), handle,
                      indent=2)
    return results


if __name__ == "__main__":
    main()
