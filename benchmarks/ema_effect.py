"""Does an EMA of G's weights help network-mnist? One job, judged twice.

Builds the embedded 5k MNIST sample, trains network-mnist with the shared recipe (fewer
epochs with --epochs) and `--ema-decay`, then evaluates the same checkpoint twice with
`digits_gan_plugin.evaluation.evaluate` three times: with the EMA weights and the batch-norm
statistics re-estimated for them (what every command uses), with the EMA weights and the
raw weights' statistics (the runtime before the re-estimation), and with the raw weights
(the reference: the same training run, the generator without averaging). Prints the rows.

Usage:
    python benchmarks/ema_effect.py [--work DIR] [--epochs N] [--decay D] [--samples N]
"""
import argparse
import functools
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from digits_gan_plugin import evaluation  # noqa: E402
from digits_gan_plugin.runtime import ema, inference, train_options as recipes  # noqa: E402

FIGURES = ("conditional_accuracy", "mnist_score", "frechet_distance", "kid", "precision", "recall", "density",
           "coverage")


def evaluate(job, samples, use_ema, statistics=True):
    """evaluate() with the EMA (use_ema) or the raw weights of the job's last checkpoint;
    statistics=False: the EMA weights with the raw weights' batch-norm statistics (the
    runtime before it re-estimated them: their shadows are ignored)."""
    original_load, original_map = inference.load_generator, ema.restore_map

    def raw_statistics(variables, names, use_ema=True):
        import tensorflow.compat.v1 as tf

        trainable = {v.op.name for v in tf.trainable_variables()}
        return original_map(variables, {name for name in names if not (
            ema.is_shadow(name) and name[:-len(ema.SUFFIX) - 1] not in trainable)}, use_ema)

    inference.load_generator = functools.partial(original_load, use_ema=use_ema)
    if not statistics:
        ema.restore_map = raw_statistics
    try:
        return evaluation.evaluate(job, samples=samples, seed=0, checkpoint="last")
    finally:
        inference.load_generator, ema.restore_map = original_load, original_map


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the dataset and job (default: a new temp folder)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (default 5; the recipe has 30)")
    parser.add_argument("--decay", type=float, default=0.99, help="--ema-decay (default 0.99)")
    parser.add_argument("--samples", type=int, default=5000, help="generated samples per evaluation")
    args = parser.parse_args(argv)

    from mnist_quality import digits_gan

    work = args.work or tempfile.mkdtemp(prefix="ema-effect-")
    dataset, job = os.path.join(work, "mnist"), os.path.join(work, "job")
    recipe = dict(recipes.MNIST_RECIPE, epochs=args.epochs, ema_decay=args.decay)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; recipe {recipe}", flush=True)
    if not os.path.isfile(os.path.join(dataset, "dataset.json")):
        digits_gan("dataset", "create", "mnist", "--out", dataset, "--quiet")
    start = time.perf_counter()
    if not os.path.isfile(os.path.join(job, "config.json")):
        digits_gan("train", "--dataset", dataset, "--out", job, *recipes.recipe_args(recipe))
    print(f"train: {time.perf_counter() - start:.0f}s", flush=True)
    rows = {"EMA, statistics re-estimated": evaluate(job, args.samples, True),
            "EMA, raw weights' statistics": evaluate(job, args.samples, True, statistics=False),
            "raw (reference)": evaluate(job, args.samples, False)}
    assert [row["settings"]["weights"] for row in rows.values()] == ["ema", "ema", "raw"]
    real = rows["raw (reference)"]["real"]
    print()
    print("| weights | " + " | ".join(FIGURES) + " |")
    print("|---" * (len(FIGURES) + 1) + "|")
    for label, result in rows.items():
        print(f"| {label} | " + " | ".join(f"{result['generated'][name]:.4f}" for name in FIGURES) + " |")
    floor = real["manifold_floor"]
    print(f"| real floor | {real['accuracy']:.4f} | {real['mnist_score']:.4f} | {real['frechet_distance_floor']:.4f} "
          f"| {real['kid_floor']:.4f} | " + " | ".join(f"{floor[n]:.4f}" for n in FIGURES[4:]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
