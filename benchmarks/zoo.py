"""Every MNIST zoo member trained under one CPU budget, judged offline, in one table.

Members: network-mnist (the conditional DCGAN baseline, `MNIST_RECIPE`), then
network-mnist-wgangp, network-mnist-sngan and network-mnist-acgan, each with the baseline
recipe but its own network (the zoo files set their own solvers and learning rates in
their loss entries). Same dataset (the embedded 4,500-digit sample unless --dataset),
batch size and seed (0) for all.

Budget (--budget time, the default): the wall time of the baseline's training loop
(MNIST_RECIPE: 30 epochs, ~10 minutes on 2 idle cores). Each member first runs
--calibration-steps steps to measure its images/s, then trains for as many steps as that
rate fits in the budget (a slower step buys fewer steps; the calibration includes the
warm-up, so the estimate errs on the short side). --budget steps: every member trains the
baseline's number of steps instead.

Judged by `digits-gan evaluate` (its classifier, cached per dataset, no download):
conditional accuracy / real ratio, MNIST score / real ratio, Frechet distance and its real
floor (held-out vs train features), KID (mean +- std over subsets), precision, recall,
density, coverage; plus steps, training wall time and images/s. Prints a Markdown table
(BENCHMARKS.md) and, with --figure, writes one 10 x 10 class grid per model side by side.

Usage:
    python benchmarks/zoo.py [--work DIR] [--dataset DS] [--budget time|steps]
                             [--members network-mnist-sngan,...] [--samples N] [--figure PNG]
    python benchmarks/zoo.py --quick    # smoke run: a few steps each, tiny judge (figures meaningless)
"""
import argparse
import io
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits_gan_plugin import evaluation, jobdir  # noqa: E402
from digits_gan_plugin.errors import DigitsGanError  # noqa: E402
from digits_gan_plugin.files import atomic_write  # noqa: E402
from digits_gan_plugin.runtime import train_options as recipes  # noqa: E402
from digits_gan_plugin.runtime.model_files import resolve_network  # noqa: E402

BASELINE = "network-mnist"
ZOO = ("network-mnist-wgangp", "network-mnist-sngan", "network-mnist-acgan")
QUICK_STEPS = 3
COLUMNS = ("model", "steps", "acc ratio", "score ratio", "FD", "FD floor", "KID", "precision", "recall",
           "density", "coverage", "train s", "img/s")


def loop_seconds(job_dir, batch_size):
    """(seconds spent in training steps, steps) from the job's metrics.csv rows: each
    epoch's steps x batch / its images_per_sec."""
    seconds, previous = 0.0, 0
    for row in jobdir.read_metrics(job_dir):
        step = int(row["step"])
        seconds += (step - previous) * batch_size / float(row["images_per_sec"])
        previous = step
    return seconds, previous


def train_member(recipe, dataset, job_dir, steps, progress):
    """Train `recipe` for `steps` steps into job_dir -> wall seconds (graph build included)."""
    from digits_gan_plugin.runtime.trainer import TrainOptions, train

    if os.path.exists(job_dir):
        raise SystemExit(f"{job_dir}: already exists; give a new --work folder")
    steps_per_epoch = max(1, train_count(dataset) // recipe["batch_size"])
    options = dict(recipe, dataset=str(dataset), epochs=-(-steps // steps_per_epoch), max_steps=steps)
    start = time.perf_counter()
    train(TrainOptions(**options), job_dir, progress=progress)
    return time.perf_counter() - start


def train_count(dataset):
    from digits_gan_plugin.dataset_io import DatasetReader

    return DatasetReader(dataset).count("train_db")


def budget_steps(args, recipe, dataset, work, baseline_loop_s, baseline_steps, progress):
    """Steps for a member: the baseline's (--budget steps, --quick) or as many as its
    calibrated images/s fit in the baseline's loop time."""
    if args.quick or args.budget == "steps":
        return baseline_steps
    calibration = os.path.join(work, "calibration-" + recipe["network"])
    train_member(recipe, dataset, calibration, args.calibration_steps, progress)
    seconds, steps = loop_seconds(calibration, recipe["batch_size"])
    return max(1, int(baseline_loop_s * steps / seconds))


def judge(job_dir, args, classifier, wall_s, batch_size):
    result = evaluation.evaluate(job_dir, samples=args.samples, seed=0, checkpoint="last",
                                 classifier_settings=classifier, progress=not args.quick)
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    seconds, steps = loop_seconds(job_dir, batch_size)
    return {
        "steps": steps, "acc ratio": ratios["accuracy"], "score ratio": ratios["mnist_score"],
        "FD": generated["frechet_distance"], "FD floor": real["frechet_distance_floor"],
        "KID": generated["kid"], "KID std": generated["kid_std"],
        **{name: generated[name] for name in ("precision", "recall", "density", "coverage")},
        "train s": wall_s, "img/s": steps * batch_size / seconds if seconds else None,
    }


def markdown_table(rows):
    def cell(name, row):
        value = row.get(name)
        if name == "model":
            return f"`{value}`"
        if name == "KID":
            return f"{value:.4f} +- {row['KID std']:.4f}"
        if isinstance(value, float):
            return f"{value:.0f}" if name in ("train s", "img/s") else f"{value:.3f}"
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(name, row) for name in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def write_figure(path, jobs):
    """One 10 x 10 grid per job (row k: class k, seed 0), side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from digits_gan_plugin.imaging import make_grid
    from digits_gan_plugin.runtime.inference import generate_classes

    figure, axes = plt.subplots(1, len(jobs), figsize=(3 * len(jobs), 3.3), squeeze=False)
    for axis, (name, job_dir) in zip(axes[0], jobs.items()):
        images, _ = generate_classes(job_dir, list(range(10)), 10, seed=0)
        axis.imshow(make_grid(images, rows=10, cols=10)[..., 0], cmap="gray", vmin=0, vmax=255)
        axis.set_title(name.replace("network-", ""), fontsize=10)
        axis.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)

    def write(tmp_path):
        with open(tmp_path, "wb") as stream:
            stream.write(buffer.getvalue())

    atomic_write(path, write)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the dataset and jobs (default: a new temp folder)")
    parser.add_argument("--dataset", help="an MNIST-format dataset (default: build the embedded sample)")
    parser.add_argument("--budget", choices=("time", "steps"), default="time",
                        help="members get the baseline's training time (default) or its number of steps")
    parser.add_argument("--calibration-steps", type=int, default=60, help="steps measuring a member's images/s")
    parser.add_argument("--members", help=f"comma-separated zoo members (default: {','.join(ZOO)})")
    parser.add_argument("--samples", type=int, default=10000, help="generated samples per evaluation")
    parser.add_argument("--figure", help="write the side-by-side sample grids to this PNG")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_STEPS} steps each, 100 samples, a tiny judge (figures meaningless)")
    args = parser.parse_args(argv)
    args.members = [name.strip() for name in args.members.split(",")] if args.members else list(ZOO)
    for name in args.members:
        try:
            resolve_network(name)
        except DigitsGanError as error:
            parser.error(f"--members: {error}")
    if args.quick:
        args.samples = 100
    return args


def main(argv=None):
    from digits_gan_plugin.cli import main as digits_gan

    args = parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="zoo-")
    dataset = args.dataset or os.path.join(work, "mnist")
    if not os.path.isfile(os.path.join(dataset, "dataset.json")) and digits_gan(
            ["dataset", "create", "mnist", "--out", dataset, "--quiet"]):
        return 2
    baseline = dict(recipes.MNIST_RECIPE)
    classifier = evaluation.QUICK_CLASSIFIER if args.quick else None
    progress = not args.quick
    print(f"baseline recipe: {json.dumps(baseline)}; budget: {args.budget}; work folder {work}", flush=True)

    jobs, rows = {}, []
    steps = QUICK_STEPS if args.quick else baseline["epochs"] * (train_count(dataset) // baseline["batch_size"])
    jobs[BASELINE] = os.path.join(work, BASELINE)
    wall = train_member(baseline, dataset, jobs[BASELINE], steps, progress)
    baseline_loop_s, baseline_steps = loop_seconds(jobs[BASELINE], baseline["batch_size"])
    rows.append(dict(model=BASELINE, **judge(jobs[BASELINE], args, classifier, wall, baseline["batch_size"])))
    for name in args.members:
        recipe = dict(baseline, network=name)
        member_steps = budget_steps(args, recipe, dataset, work, baseline_loop_s, baseline_steps, progress)
        jobs[name] = os.path.join(work, name)
        wall = train_member(recipe, dataset, jobs[name], member_steps, progress)
        rows.append(dict(model=name, **judge(jobs[name], args, classifier, wall, recipe["batch_size"])))

    print(f"\nBudget: {args.budget} of the baseline ({baseline_steps} steps, {baseline_loop_s:.0f} s of training "
          f"steps); seed 0, batch {baseline['batch_size']}, dataset {dataset}\n")
    print(markdown_table(rows))
    if args.figure:
        write_figure(args.figure, jobs)
        print(f"\nsample grids: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
