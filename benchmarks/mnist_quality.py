"""Sample quality of network-mnist.py trained with the shared recipe on the embedded 5k MNIST.

Builds the dataset (`digits-gan dataset create mnist`), trains with
`digits_gan_plugin.runtime.train_options.MNIST_RECIPE` (`digits-gan train`), evaluates
(`digits-gan evaluate`: classifier cached under $DIGITS_GAN_CACHE) and prints each
figure next to its real-data reference:

    conditional accuracy / classifier accuracy on real held-out digits   target >= 0.97
    MNIST score / real held-out score                                    target >= 0.95
    Frechet distance next to the real floor (real held-out vs real train features)
    wall and CPU time of each phase (target: build + train + evaluate <= 20 minutes on 2 cores),
    and the load average at the start

Usage:
    python benchmarks/mnist_quality.py [--work DIR] [--epochs N] [--samples N]
    python benchmarks/mnist_quality.py --quick     # smoke run: 20 steps, tiny classifier
"""
import argparse
import json
import os
import resource
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
    """Run the CLI as a user would (its progress goes straight to the terminal) ->
    (wall seconds, CPU seconds of the child process: the figure a busy machine inflates least)."""
    print("$ digits-gan " + " ".join(map(str, args)), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digits_gan_plugin.cli", *map(str, args)], check=True,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(function, *args, **kwargs):
    """(result, (wall seconds, CPU seconds of this process))."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - start, time.process_time() - cpu_start)


def report(result, timings, load_at_start):
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    collapse = result["mode_collapse"]
    total = sum(wall for wall, _ in timings.values())

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
    print(f"1-minute load average at start: {load_at_start:.1f} (2 cores; above ~1 other work inflated the wall times)")
    print("times: " + ", ".join(f"{label} {wall:.0f}s wall {cpu:.0f}s CPU" for label, (wall, cpu) in timings.items())
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
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="mnist-quality-"))  # the CLI runs in the repository root
    dataset, job = os.path.join(work, "mnist"), os.path.join(work, "job")
    print(f"recipe: {json.dumps(recipe)}; work folder {work}", flush=True)

    timings = {}
    load_at_start = os.getloadavg()[0]
    if not os.path.isfile(os.path.join(dataset, "dataset.json")):
        timings["dataset"] = digits_gan("dataset", "create", "mnist", "--out", dataset, "--quiet")
    timings["train"] = digits_gan("train", "--dataset", dataset, "--out", job, *recipes.recipe_args(recipe))
    result, timings["evaluate"] = timed(evaluation.evaluate, job, samples=args.samples, seed=0,
                                        checkpoint="last", classifier_settings=classifier)
    print(result["summary"])
    report(result, timings, load_at_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
