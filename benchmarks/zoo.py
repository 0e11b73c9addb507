"""Every MNIST zoo member trained under one CPU budget, judged offline, in one table.

Members: network-mnist (the baseline: the conditional DCGAN as the DIGITS example trains
it, `MNIST_RECIPE` without its EMA of G), then the same file with the EMA of G (decay
0.995: the walkthrough's recipe; the runtime re-estimates batch norm for the averaged
weights), then network-mnist-wgangp, network-mnist-sngan and network-mnist-acgan with
that EMA, each with the baseline recipe but its own network (the zoo files set their
own solvers and learning rates in their loss entries). Same dataset (the embedded
4,500-digit sample unless --dataset), batch size and seed (0) for all.

Budget: --cpu-budget CPU seconds of training steps per member, the baseline included
(process time, all of TensorFlow's threads: unlike wall time it does not depend on what
else the machine runs). Each member first trains --calibration-steps steps to measure its
CPU seconds per step (the steps after the first few, graph build and warm-up left out),
then trains for as many steps as fit in the budget. The table gives each run's process CPU
seconds and wall seconds (the whole training call: graph build, checkpoints and
validation included) and images/s; the load average is printed at the start and the end.

Judged by `digits-gan evaluate` (its classifier, cached per dataset, no download):
conditional accuracy / real ratio, MNIST score / real ratio, Frechet distance and its real
floor (held-out vs train features), KID (mean +- std over subsets), precision, recall,
density, coverage; plus steps, training CPU and wall time and images/s. Prints a Markdown table
(BENCHMARKS.md) and, with --figure, writes one 10 x 10 class grid per model side by side.

Members with options: `NAME[option=value,...]`, e.g.
`network-mnist[diffaugment=translation,cutout]` or
`network-mnist-sngan[df_dim=32,lr=...]`: the options are class attributes of the file's
UserModel (docs/zoo.md, "Options"); zoo.py writes a copy of the file into the work folder
with `UserModel.option = value` lines appended and trains that. Inside the
brackets a comma starts a new option only where `name=` follows it, so a value may hold
commas; values are Python literals (2e-4, 32, None) or else strings. An unknown file or
option, a bad value (the file's own checks, run on a throwaway graph) or a malformed spec
stops before any training.

Usage:
    python benchmarks/zoo.py [--work DIR] [--dataset DS] [--cpu-budget SECONDS]
                             [--members 'network-mnist-sngan,network-mnist[regularizer=r1]']
                             [--samples N] [--figure PNG]
    python benchmarks/zoo.py --quick    # smoke run: a few steps each, tiny judge (figures meaningless)
"""
import argparse
import ast
import io
import json
import math
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits_gan_plugin import evaluation, jobdir  # noqa: E402
from digits_gan_plugin.errors import DigitsGanError  # noqa: E402
from digits_gan_plugin.files import atomic_write, write_text_atomic  # noqa: E402
from digits_gan_plugin.runtime import train_options as recipes  # noqa: E402
from digits_gan_plugin.runtime.model_files import resolve_network  # noqa: E402

BASELINE = "network-mnist"
EMA = "ema_decay=0.995"  # MNIST_RECIPE's EMA, as a model-file option
ZOO = tuple(f"{name}[{EMA}]" for name in ("network-mnist", "network-mnist-wgangp", "network-mnist-sngan",
                                          "network-mnist-acgan"))
QUICK_STEPS = 3
WARM_UP_STEPS = 10  # calibration steps left out of the CPU-per-step estimate
COLUMNS = ("model", "steps", "acc ratio", "score ratio", "FD", "FD floor", "KID", "precision", "recall",
           "density", "coverage", "CPU s", "wall s", "img/s")


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
    """Train `recipe` for `steps` steps into job_dir -> (process CPU seconds, wall seconds)
    of the training call and the process CPU time after every step (a list)."""
    from digits_gan_plugin.runtime.trainer import TrainOptions, train

    if os.path.exists(job_dir):
        raise SystemExit(f"{job_dir}: already exists; give a new --work folder")
    steps_per_epoch = max(1, train_count(dataset) // recipe["batch_size"])
    options = dict(recipe, dataset=str(dataset), epochs=-(-steps // steps_per_epoch), max_steps=steps)
    after_step = []
    cpu, wall = time.process_time(), time.perf_counter()
    train(TrainOptions(**options), job_dir, progress=progress,
          step_callback=lambda step: after_step.append(time.process_time()))
    return time.process_time() - cpu, time.perf_counter() - wall, after_step


def train_count(dataset):
    from digits_gan_plugin.dataset_io import DatasetReader

    return DatasetReader(dataset).count("train_db")


def budget_steps(args, recipe, dataset, calibration, progress):
    """Steps for a member: as many as its calibrated CPU seconds per step (a run into the
    job folder `calibration`) fit in --cpu-budget (QUICK_STEPS with --quick) -> (steps,
    CPU seconds per step or None)."""
    if args.quick:
        return QUICK_STEPS, None
    after_step = train_member(recipe, dataset, calibration, args.calibration_steps, progress)[2]
    per_step = (after_step[-1] - after_step[WARM_UP_STEPS - 1]) / (len(after_step) - WARM_UP_STEPS)
    return max(1, int(args.cpu_budget / per_step)), per_step


def judge(job_dir, args, classifier, cpu_s, wall_s, batch_size):
    result = evaluation.evaluate(job_dir, samples=args.samples, seed=0, checkpoint="last",
                                 classifier_settings=classifier, progress=not args.quick)
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    seconds, steps = loop_seconds(job_dir, batch_size)
    return {
        "steps": steps, "acc ratio": ratios["accuracy"], "score ratio": ratios["mnist_score"],
        "FD": generated["frechet_distance"], "FD floor": real["frechet_distance_floor"],
        "KID": generated["kid"], "KID std": generated["kid_std"],
        **{name: generated[name] for name in ("precision", "recall", "density", "coverage")},
        "CPU s": cpu_s, "wall s": wall_s, "img/s": steps * batch_size / seconds if seconds else None,
    }


def load_average():
    return " / ".join(f"{value:.1f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"


def markdown_table(rows):
    def cell(name, row):
        value = row.get(name)
        if name == "model":
            return f"`{value}`"
        if name == "KID":
            return f"{value:.4f} +- {row['KID std']:.4f}"
        if isinstance(value, float):
            return f"{value:.0f}" if name in ("CPU s", "wall s", "img/s") else f"{value:.3f}"
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
        axis.set_title(name.replace("network-", "").replace("[", "\n["), fontsize=10)
        axis.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)

    def write(tmp_path):
        with open(tmp_path, "wb") as stream:
            stream.write(buffer.getvalue())

    atomic_write(path, write)


class Member:
    """A zoo member: a shipped model file (name) and class-attribute overrides (options)."""

    def __init__(self, spec, name, options):
        self.spec, self.name, self.options = spec, name, options
        self.slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", spec).strip("_")  # its job folder's name

    def network(self, work):
        """The model file to train: the shipped file, or (with options) a copy in
        work/models with `UserModel.option = value` lines appended."""
        if not self.options:
            return self.name
        path = resolve_network(self.name)
        # Attributes set on the class, not a `class UserModel(UserModel)` subclass: that
        # would rebind the name the file's `super(UserModel, self)` calls look up (recursion).
        lines = [f"UserModel.{key} = {value!r}" for key, value in self.options.items()]
        source = open(path, encoding="utf-8").read().rstrip("\n")
        source += f"\n\n\n# benchmarks/zoo.py member {self.spec}\n" + "\n".join(lines) + "\n"
        copy = os.path.join(work, "models", self.slug + ".py")
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        write_text_atomic(copy, source)
        return copy


def split_members(text):
    """The comma-separated member specs of --members (commas inside [...] kept)."""
    specs, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            specs.append(current.strip())
            current = ""
        else:
            current += char
    return specs + [current.strip()]


def option_value(text):
    """A Python literal (2e-4, 32, None, 'x') if it is one and has no comma, else the string."""
    if "," not in text:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    return text


def parse_member(spec):
    """NAME or NAME[option=value,...] -> Member; ValueError saying what is wrong."""
    match = re.fullmatch(r"([^\[\]]+?)(?:\[(.*)\])?", spec, re.S)
    if not spec or not match:
        raise ValueError(f"{spec!r}: expected NAME or NAME[option=value,...]")
    name, inside = match.group(1).strip(), match.group(2)
    options = {}
    if inside is not None:
        if not inside.strip():
            raise ValueError(f"{spec!r}: empty brackets (leave them out for the file as shipped)")
        key = None
        for piece in inside.split(","):
            option = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=(.*)", piece, re.S)
            if option:
                key = option.group(1)
                if key in options:
                    raise ValueError(f"{spec!r}: option {key} given twice")
                options[key] = option.group(2).strip()
            elif key is None:
                raise ValueError(f"{spec!r}: expected option=value inside the brackets, got {piece.strip()!r}")
            else:
                options[key] += "," + piece.strip()
        options = {key: option_value(value) for key, value in options.items()}
    return Member(spec, name, options)


def check_member(member):
    """Raise DigitsGanError / ValueError if the member's file is unknown, an option is not
    one of its UserModel's attributes, or the file's own checks or the runtime's (its EMA
    decay) reject a value (a training tower built on a throwaway graph)."""
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.runtime import ema
    from digits_gan_plugin.runtime.graph import build_tower, model_facts, reuse_scope
    from digits_gan_plugin.runtime.model_files import load_model_class

    path = resolve_network(member.name)
    if not member.options:
        return
    model_class = load_model_class(path)
    for key in member.options:
        if key.startswith("_") or not hasattr(model_class, key) or callable(getattr(model_class, key)):
            raise ValueError(f"{member.spec!r}: {key} is not an option of {member.name} "
                             f"(a class attribute of its UserModel)")
    variant = type("UserModel", (model_class,), dict(member.options))
    meta = {"stages": {"train_db": {"feature_shape": [1, 28, 28], "label_shape": []}}, "num_classes": 10}
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        x, y = tf.placeholder(tf.float32, [2, 28, 28, 1]), tf.placeholder(tf.int64, [2])
        try:
            ema.job_decay(None, variant, path)
            with reuse_scope():
                build_tower(variant, model_facts(variant, path, meta), x, y, "train", ["loss"])
        except DigitsGanError as error:
            raise ValueError(f"{member.spec!r}: {error}") from None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the dataset and jobs (default: a new temp folder)")
    parser.add_argument("--dataset", help="an MNIST-format dataset (default: build the embedded sample)")
    parser.add_argument("--cpu-budget", type=float, default=300.0,
                        help="process CPU seconds of training steps per member (default 300)")
    parser.add_argument("--calibration-steps", type=int, default=40,
                        help=f"steps measuring a member's CPU seconds per step (> {WARM_UP_STEPS})")
    parser.add_argument("--members", help="comma-separated zoo members, NAME or NAME[option=value,...] "
                        f"(default: {','.join(ZOO)})")
    parser.add_argument("--samples", type=int, default=10000, help="generated samples per evaluation")
    parser.add_argument("--figure", help="write the side-by-side sample grids to this PNG")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_STEPS} steps each, 100 samples, a tiny judge (figures meaningless)")
    args = parser.parse_args(argv)
    members = []
    for spec in split_members(args.members) if args.members else list(ZOO):
        try:
            members.append(parse_member(spec))
            check_member(members[-1])
        except (DigitsGanError, ValueError) as error:
            parser.error(f"--members: {error}")
    args.members = members
    if not (math.isfinite(args.cpu_budget) and args.cpu_budget > 0):
        parser.error(f"--cpu-budget: expected a positive number of seconds, got {args.cpu_budget}")
    if args.calibration_steps <= WARM_UP_STEPS:
        parser.error(f"--calibration-steps: expected more than {WARM_UP_STEPS}, got {args.calibration_steps}")
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
    baseline = {name: value for name, value in recipes.MNIST_RECIPE.items() if name != "ema_decay"}
    classifier = evaluation.QUICK_CLASSIFIER if args.quick else None
    progress = not args.quick
    print(f"baseline recipe: {json.dumps(baseline)}; budget: {args.cpu_budget:.0f} CPU s per member; "
          f"load average {load_average()}; work folder {work}", flush=True)

    jobs, rows = {}, []
    for member in [parse_member(BASELINE)] + args.members:
        recipe = dict(baseline, network=member.network(work))
        steps, per_step = budget_steps(args, recipe, dataset, os.path.join(work, "calibration-" + member.slug),
                                       progress)
        if per_step:
            print(f"{member.spec}: {per_step:.3f} CPU s per step -> {steps} steps", flush=True)
        jobs[member.spec] = os.path.join(work, member.slug)
        cpu, wall, _ = train_member(recipe, dataset, jobs[member.spec], steps, progress)
        rows.append(dict(model=member.spec, **judge(jobs[member.spec], args, classifier, cpu, wall,
                                                    recipe["batch_size"])))

    print(f"\nBudget: {args.cpu_budget:.0f} CPU s of training steps per member; seed 0, batch "
          f"{baseline['batch_size']}, dataset {dataset}; load average at the end {load_average()}\n")
    print(markdown_table(rows))
    if args.figure:
        write_figure(args.figure, jobs)
        print(f"\nsample grids: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
