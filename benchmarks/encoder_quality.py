"""Reconstruction quality of network-mnist-encoder.py on held-out digits.

Given the MNIST recipe GAN job (`--gan-job`; default: build the embedded 5k MNIST dataset
and train network-mnist with `digits_gan_plugin.runtime.train_options.recipe_args()`), trains
the encoder on the dataset's train split (`digits-gan train --network network-mnist-encoder
--weights GAN_JOB`, recipe below), then on the held-out split (val_db) prints:

    MSE          mean per-pixel squared error between x and G(E(x)), pixels in [0, 1],
                 with the class inferred by the encoder           target < 0.046 (BiGAN)
    mismatched   the same between x and G(E(x')), x' = another held-out digit (each x
                 paired with one other, a random derangement)     target MSE < half of it
    accuracy     the judge classifier's (`digits-gan evaluate`'s cached CNN) accuracy on
                 the reconstructions G(E(x)) against x's true class    target >= 0.90
next to references: the classifier on the real digits, the encoder's class-head accuracy,
and the MSE when G is given the true class. Also the encoder's training time (wall and
CPU seconds of the training process; target <= 10 CPU minutes) and the load at the start.

Usage:
    python benchmarks/encoder_quality.py --gan-job GAN_JOB [--dataset DS] [--work DIR]
    python benchmarks/encoder_quality.py --quick     # smoke run: 20 steps, tiny classifier
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits_gan_plugin import evaluation, jobdir  # noqa: E402
from digits_gan_plugin.runtime import train_options as recipes  # noqa: E402
from benchmarks.mnist_quality import digits_gan, timed  # noqa: E402

MSE_TARGET = 0.046
BASELINE_FRACTION = 0.5
ACCURACY_TARGET = 0.90
CPU_TARGET_S = 10 * 60


def derangement(count, rng):
    """int (count,): a random permutation with no fixed point (count >= 2)."""
    order = rng.permutation(count)
    partner = np.empty(count, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def measure(encoder_job, dataset, classifier_settings=None, seed=0):
    """Figures of the module docstring on the dataset's val_db -> dict."""
    from digits_gan_plugin.dataset_io import DatasetReader
    from digits_gan_plugin.runtime.inference import load_generator

    x, labels = DatasetReader(dataset).read_all(evaluation.HELD_OUT_STAGE)
    with load_generator(encoder_job) as encoder:
        inferred = encoder.run(x)
        given = encoder.run(x, labels=labels)
    real = x.astype(np.float64) / 255.0
    reconstruction = inferred["images"].astype(np.float64) / 255.0
    partner = derangement(len(x), np.random.default_rng(seed))
    classifier = evaluation.load_or_train_classifier(dataset, classifier_settings, progress=True)
    recon_probs, _ = classifier.predict(inferred["images"])
    real_probs, _ = classifier.predict(x)
    return {
        "images": len(x),
        "mse": float(np.mean((reconstruction - real) ** 2)),
        "mismatched_mse": float(np.mean((reconstruction[partner] - real) ** 2)),
        "mse_true_class": float(np.mean((given["images"].astype(np.float64) / 255.0 - real) ** 2)),
        "reconstruction_accuracy": evaluation.conditional_accuracy(recon_probs, labels),
        "real_accuracy": evaluation.conditional_accuracy(real_probs, labels),
        "class_head_accuracy": float(np.mean(inferred["classes"] == labels)),
    }


def report(figures, timings):
    def verdict(ok):
        return "PASS" if ok else "FAIL"

    half = BASELINE_FRACTION * figures["mismatched_mse"]
    print()
    print(f"held-out digits: {figures['images']} (val_db)")
    print(f"{'figure':<44}{'value':>10}  target / reference")
    print(f"{'MSE of G(E(x)), pixels in [0,1]':<44}{figures['mse']:>10.4f}  < {MSE_TARGET} "
          f"{verdict(figures['mse'] < MSE_TARGET)}; < {half:.4f} (half the mismatched) "
          f"{verdict(figures['mse'] < half)}")
    print(f"{'mismatched-pair MSE, x vs G(E(x_other))':<44}{figures['mismatched_mse']:>10.4f}  baseline")
    print(f"{'MSE with the true class given to G':<44}{figures['mse_true_class']:>10.4f}  reference")
    print(f"{'classifier accuracy on reconstructions':<44}{figures['reconstruction_accuracy']:>10.4f}  "
          f">= {ACCURACY_TARGET} {verdict(figures['reconstruction_accuracy'] >= ACCURACY_TARGET)}")
    print(f"{'classifier accuracy on the real digits':<44}{figures['real_accuracy']:>10.4f}  reference")
    print(f"{'encoder class-head accuracy':<44}{figures['class_head_accuracy']:>10.4f}  reference")
    wall, cpu = timings["train encoder"]
    print(f"{'encoder training: wall s / CPU s':<44}{wall:>5.0f} / {cpu:.0f}  CPU <= {CPU_TARGET_S} "
          f"{verdict(cpu <= CPU_TARGET_S)}")
    print(f"1-minute load average at start: {timings.pop('load'):.1f}")
    print("times: " + ", ".join(f"{label} {w:.0f}s wall {c:.0f}s CPU" for label, (w, c) in timings.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan-job", help="trained network-mnist job (default: train one with the recipe)")
    parser.add_argument("--dataset", help="MNIST dataset (default: the GAN job's, else build the embedded 5k)")
    parser.add_argument("--work", help="folder for the jobs (default: a new temp folder)")
    parser.add_argument("--epochs", type=int, help=f"encoder epochs (default {recipes.MNIST_ENCODER_RECIPE['epochs']})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 encoder steps (and a 20-step GAN), tiny classifier (figures meaningless)")
    args = parser.parse_args(argv)

    recipe, gan_recipe, classifier = dict(recipes.MNIST_ENCODER_RECIPE), dict(recipes.MNIST_RECIPE), None
    if args.quick:
        recipe.update(epochs=1, max_steps=20)
        gan_recipe.update(epochs=1, max_steps=20)
        classifier = evaluation.QUICK_CLASSIFIER
    if args.epochs:
        recipe["epochs"] = args.epochs
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="encoder-quality-"))  # the CLI runs in the repository root
    os.makedirs(work, exist_ok=True)
    print(f"encoder recipe: {json.dumps(recipe)}; work folder {work}", flush=True)

    timings = {"load": os.getloadavg()[0]}
    dataset = args.dataset
    if dataset is None and args.gan_job:
        dataset = jobdir.read_config(args.gan_job)["dataset"]
    if dataset is None or not os.path.isfile(os.path.join(dataset, "dataset.json")):
        if args.dataset or args.gan_job:
            parser.error(f"dataset {dataset} not found; give --dataset")
        dataset = os.path.join(work, "mnist")
        if not os.path.isfile(os.path.join(dataset, "dataset.json")):
            timings["dataset"] = digits_gan("dataset", "create", "mnist", "--out", dataset, "--quiet")
    gan_job = args.gan_job
    if gan_job is None:
        gan_job = os.path.join(work, "gan")
        timings["train GAN"] = digits_gan("train", "--dataset", dataset, "--out", gan_job,
                                          *recipes.recipe_args(gan_recipe))
    encoder_job = os.path.join(work, "encoder")
    timings["train encoder"] = digits_gan("train", "--dataset", dataset, "--weights", gan_job, "--out", encoder_job,
                                          *recipes.recipe_args(recipe))
    figures, timings["measure"] = timed(measure, encoder_job, dataset, classifier)
    report(figures, timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
