"""Sample quality of network-mnist.py trained with the shared recipe on the embedded 5k MNIST.

Builds the dataset (`digits-gan dataset create mnist`), trains with
`digits_gan_plugin.runtime.train_options.MNIST_RECIPE` (`digits-gan train`), evaluates
(`digits-gan evaluate`: classifier cached under $DIGITS_GAN_CACHE) and prints each
figure next to its real-data reference:

    conditional accuracy / classifier accuracy on real held-out digits   target >= 0.97
    MNIST score / real held-out score                                    target >= 0.95
    Frechet distance next to the real floor (real held-out vs real train features)
    wall time of each phase (target: build + train + evaluate <= 20 minutes on 2 cores)

Usage:
    python benchmarks/mnist_quality.py [--work DIR] [--epochs N] [--samples N]
    python benchmarks/mnist_quality.py --quick     # smoke run: 20 steps, tiny classifier
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from digits_gan_plugin import evaluation  # noqa: E402
from digits_gan_plugin.runtime import train_options as recipes  # noqa: E402

ACCURACY_TARGET = 0.97
SCORE_TARGET = 0.95
WALL_TARGET_S = 20 * 60
QUICK_CLASSIFIER = evaluation.ClassifierSettings(epochs=1, width=8, feature_dim=32)


def digits_gan(*args):
    """Run the CLI as a user would; its own progress output goes straight to the terminal."""
    command = [sys.executable, "-m", "digits_gan_plugin.cli", *map(str, args)]
    print("$ digits-gan " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(label, timings, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    timings[label] = time.perf_counter() - start
    return result


def report(result, timings):
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    collapse = result["mode_collapse"]
    total = sum(timings.values())

    def verdict(value, target):
        return "PASS" if value is not None and value >= target else "FAIL"

    print()
    print(f"{'figure':<32}{'generated':>12}{'real':>12}{'ratio':>10}  target")
    print(f"{'conditional accuracy':<32}{generated['conditional_accuracy']:>12.4f}{real['accuracy']:>12.4f}"
          f"{ratios['accuracy']:>10.3f}  >= {ACCURACY_TARGET} {verdict(ratios['accuracy'], ACCURACY_TARGET)}")
    print(f"{'MNIST score':<32}{generated['mnist_score']:>12.3f}{real['mnist_score']:>12.3f}"
          f"{ratios['mnist_score']:>10.3f}  >= {SCORE_TARGET} {verdict(ratios['mnist_score'], SCORE_TARGET)}")
    print(f"{'Frechet distance (floor: real)':<32}{generated['frechet_distance']:>12.3f}"
          f"{real['frechet_distance_floor']:>12.3f}")
    print(f"{'KID (floor: real)':<32}{generated['kid']:>12.4f}{real['kid_floor']:>12.4f}  "
          f"+- {generated['kid_std']:.4f} / {real['kid_floor_std']:.4f}")
    for name in ("precision", "recall", "density", "coverage"):
        print(f"{name + ' (real: val vs train)':<32}{generated[name]:>12.3f}{real['manifold_floor'][name]:>12.3f}")
    print(f"{'diversity vs real (min class)':<32}{collapse['min']:>12.3f}  (class {collapse['min_class']})")
    print("per-class diversity: " + " ".join("-" if r is None else f"{r:.2f}" for r in collapse["per_class"]))
    print("per-class accuracy:  " + " ".join(f"{a:.2f}" for a in generated["per_class_accuracy"]))
    print("wall time: " + ", ".join(f"{label} {seconds:.0f}s" for label, seconds in timings.items())
          + f"; total {total:.0f}s ({'within' if total <= WALL_TARGET_S else 'OVER'} {WALL_TARGET_S // 60} min)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the dataset and job (default: a new temp folder)")
    parser.add_argument("--epochs", type=int, help=f"override the recipe's {recipes.MNIST_RECIPE['epochs']} epochs")
    parser.add_argument("--samples", type=int, default=10000, help="generated samples to evaluate (default 10000)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 steps, 500 samples, a tiny classifier (figures meaningless)")
    args = parser.parse_args(argv)

    recipe = dict(recipes.MNIST_RECIPE)
    classifier = None
    if args.quick:
        recipe.update(epochs=1, max_steps=20)
        args.samples, classifier = 500, QUICK_CLASSIFIER
    if args.epochs:
        recipe["epochs"] = args.epochs
    work = args.work or tempfile.mkdtemp(prefix="mnist-quality-")
    dataset, job = os.path.join(work, "mnist"), os.path.join(work, "job")
    print(f"recipe: {json.dumps(recipe)}; work folder {work}", flush=True)

    timings = {}
    if not os.path.isfile(os.path.join(dataset, "dataset.json")):
        timed("dataset", timings, digits_gan, "dataset", "create", "mnist", "--out", dataset, "--quiet")
    timed("train", timings, digits_gan, "train", "--dataset", dataset, "--out", job,
          *recipes.recipe_args(recipe))
    result = timed("evaluate", timings, evaluation.evaluate, job, samples=args.samples, seed=0,
                   checkpoint="last", classifier_settings=classifier)
    print(result["summary"])
    report(result, timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
