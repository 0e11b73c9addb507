"""Epoch-end reporting of a training run, fed one typed ``EpochReport`` per epoch.

In order, so that an interruption loses as little as possible: the metrics.csv row
with the epoch's training means (written at once), validation means (a NaN or
infinite validation loss stops training like a NaN training loss: the weights then
produce non-finite outputs on real data, and every later epoch and --best-metric
comparison would be meaningless), the row again with them, the loss-curve PNG,
TensorBoard scalars, the fixed-seed sample grid and the best checkpoint. A run resumed
at an epoch boundary whose row is missing or lacks its validation columns (Ctrl-C or a
kill inside the report) completes that row first (``complete_interrupted_epoch``).

TensorBoard tags: ``train/<entry>`` (skipped when the model's own summaries already
write that tag), ``val/<entry>``, ``train/lr``, ``perf/images_per_sec``, the model's
summaries, ``samples/reals`` and ``samples/fakes``.
"""
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from ..files import write_json_atomic
from ..imaging import make_grid, save_png, to_uint8
from .. import jobdir
from .charts import save_metrics_chart
from .model_files import model_run_errors, run_error


# Test hook: "POINT:SIGNAL" makes the trainer send itself SIGNAL (INT, KILL, ...) at POINT:
# "start" (before the graph is built), a step number (after that step) or "epoch-end"
# (inside the first epoch report, after its training row).
INTERRUPT_ENV = "DIGITS_GAN_TEST_INTERRUPT"


def maybe_interrupt(point):
    spec = os.environ.get(INTERRUPT_ENV, "")
    if spec and spec.split(":")[0] == str(point):
        import signal

        os.kill(os.getpid(), getattr(signal, "SIG" + spec.split(":")[1]))


@dataclass(frozen=True)
class EpochReport:
    epoch: int                 # 1-based
    step: int                  # batches trained at the end of the epoch
    train_means: dict          # {entry name: mean loss or None}
    scalars: dict              # {model summary tag: epoch mean}
    images_per_sec: float
    lr: float


def checkpoint_bytes(prefix):
    """Bytes on disk of one checkpoint (its .index and .data shards)."""
    prefix = Path(prefix)
    return sum(path.stat().st_size for path in prefix.parent.glob(prefix.name + ".*") if path.is_file())


class Reporter:
    def __init__(self, session, built, options, paths, plan, reader, writer):
        self.session, self.built, self.options, self.paths = session, built, options, paths
        self.plan, self.reader, self.writer = plan, reader, writer
        self.names = [entry.name for entry in built.entries]
        self.rows = jobdir.read_metrics(paths.metrics)
        self.best_value = self._read_best()
        self.grid_vectors, self.grid_shape = (built.facts.grid_vectors(options.seed) if built.sampler
                                              else (None, None))

    # ------------------------------------------------------------------ per step
    def step_summaries(self, step, losses, summary, scalars):
        """TensorBoard: the model's summaries, each active loss entry and the lr;
        collects the model's scalar values into `scalars` (tag -> list) for metrics.csv."""
        import tensorflow.compat.v1 as tf

        model_tags, model_scalars = set(), {}
        if summary is not None:
            self.writer.add_summary(summary, step)
            for value in tf.Summary.FromString(summary).value:
                model_tags.add(value.tag)
                if value.WhichOneof("value") == "simple_value":
                    tag = value.tag[len("train/"):] if value.tag.startswith("train/") else value.tag
                    scalars[tag].append(value.simple_value)
                    model_scalars[tag] = value.simple_value
        lr = self.options.lr_policy_for(self.plan.total_steps)(step - 1)
        values = [tf.Summary.Value(tag=f"train/{name}", simple_value=loss) for name, loss in losses.items()
                  if f"train/{name}" not in model_tags]
        values.append(tf.Summary.Value(tag="train/lr", simple_value=lr))
        self.writer.add_summary(tf.Summary(value=values), step)
        self._write_step_row(step, losses, model_scalars, lr)

    def _write_step_row(self, step, losses, model_scalars, lr):
        """One steps.csv row per summary interval, so charts move within an epoch."""
        row = {"step": step, "epoch": f"{step / self.plan.steps_per_epoch:.4f}", "lr": f"{lr:.6g}"}
        row.update({name: _cell(value) for name, value in losses.items()})
        row.update({tag: _cell(value) for tag, value in model_scalars.items() if tag not in row})
        columns = ["step", "epoch", *self.names, *sorted(set(model_scalars) - set(self.names)), "lr"]
        jobdir.append_step_metrics(self.paths.root, row, columns)

    # ------------------------------------------------------------------ per epoch
    def end_epoch(self, report):
        row = {"epoch": report.epoch, "step": report.step}
        row.update({name: _cell(value) for name, value in report.train_means.items()})
        row.update({name: _cell(value) for name, value in report.scalars.items() if name not in row})
        row["images_per_sec"] = f"{report.images_per_sec:.1f}"
        row["lr"] = f"{report.lr:.6g}"
        self._write_row(row)
        maybe_interrupt("epoch-end")
        self._finish(row, report.epoch, report.step, report.images_per_sec)

    def complete_interrupted_epoch(self, step):
        """After a resume at an epoch boundary: validate and draw that epoch if its row
        is missing or has no validation columns."""
        if step == 0 or (step % self.plan.steps_per_epoch and step != self.plan.total_steps):
            return
        epoch = math.ceil(step / self.plan.steps_per_epoch)
        row = next((r for r in self.rows if int(r["epoch"]) == epoch), None)
        if row is not None and (self.built.val is None or any(key.startswith("val_") for key in row)):
            return
        row = dict(row or {"epoch": epoch, "step": step})
        print(f"completing epoch {epoch}'s report (the previous run stopped inside it)", file=sys.stderr)
        self._finish(row, epoch, step, None)

    def _finish(self, row, epoch, step, images_per_sec):
        val_means = self._validate(epoch)
        row.update({f"val_{name}": _cell(value) for name, value in val_means.items()})
        self._write_row(row)
        save_metrics_chart(self.rows, self.names, self.paths.loss_curve)
        self._epoch_summaries(step, val_means, images_per_sec)
        self._write_samples(epoch, step)
        self._track_best(row, step)
        self.writer.flush()

    def _write_row(self, row):
        self.rows = [r for r in self.rows if int(r["epoch"]) != int(row["epoch"])] + [row]
        jobdir.write_metrics(self.paths.metrics, self.rows)

    def _validate(self, epoch):
        """Mean of each loss entry over one pass of val_db ({} without val_db)."""
        import tensorflow.compat.v1 as tf

        if self.built.val is None:
            return {}
        self.session.run(self.built.val.init)
        batches = []
        while True:
            try:
                batches.append(self._run(list(self.built.val.losses), None, f"validating epoch {epoch}"))
            except tf.errors.OutOfRangeError:
                break
        means = dict(zip(self.names, (float(m) for m in np.mean(batches, axis=0)))) if batches else {}
        for name, value in means.items():
            if not math.isfinite(value):
                kept = jobdir.latest_step(self.paths.root)
                raise TrainingError(f"validation loss entry {name!r} is {value} after epoch {epoch}; training "
                                    f"stopped, last good checkpoint kept: "
                                    f"{f'step {kept}' if kept is not None else 'none'}")
        return means

    def _run(self, fetches, feed, what):
        try:
            return self.session.run(fetches, feed)
        except model_run_errors() as error:
            raise run_error(error, self.built.facts.network, what, self.built.graph) from None

    def _epoch_summaries(self, step, val_means, images_per_sec):
        import tensorflow.compat.v1 as tf

        values = [tf.Summary.Value(tag=f"val/{name}", simple_value=value) for name, value in val_means.items()]
        if images_per_sec is not None:
            values.append(tf.Summary.Value(tag="perf/images_per_sec", simple_value=images_per_sec))
        self.writer.add_summary(tf.Summary(value=values), step)

    def _write_samples(self, epoch, step):
        """samples/fakes_epochNNNN.png from the fixed vectors, and a TensorBoard image."""
        sampler = self.built.sampler
        if sampler is None:
            return
        vectors = self.grid_vectors.reshape(len(self.grid_vectors), 1, 1, -1)
        images = to_uint8(self._run(sampler.output, {sampler.input: vectors}, f"drawing epoch {epoch}'s samples"))
        grid = make_grid(images, rows=self.grid_shape[0], cols=self.grid_shape[1])
        save_png(grid, self.paths.fakes(epoch))
        self._add_image("samples/fakes", grid, step)

    def write_reals_once(self):
        path = self.paths.samples / "reals.png"
        if path.exists():
            return
        x, _ = next(self.reader.batches("train_db", 64, shuffle=False, repeat=False, drop_remainder=False))
        grid = make_grid(to_uint8(x))
        save_png(grid, path)
        self._add_image("samples/reals", grid, 0)

    def _add_image(self, tag, grid, step):
        import tensorflow.compat.v1 as tf
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(buffer, format="PNG")
        image = tf.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=grid.shape[2],
                                 encoded_image_string=buffer.getvalue())
        self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, image=image)]), step)

    # ------------------------------------------------------------------ best checkpoint
    def _read_best(self):
        if not self.paths.best_json.is_file():
            return None
        try:
            return float(json.loads(self.paths.best_json.read_text(encoding="utf-8"))["value"])
        except (ValueError, KeyError, TypeError, OSError):
            return None  # unreadable: the next better value rewrites it

    def _track_best(self, row, step):
        """Save checkpoints/best/ when the --best-metric column of `row` improved."""
        metric = self.options.best_metric
        if not metric:
            return
        if metric not in row:
            raise TrainingError(f"--best-metric {metric!r}: not a metrics.csv column ({', '.join(row)})")
        if row[metric] == "":
            return
        value = float(row[metric])
        better = self.best_value is None or (value < self.best_value if self.options.best_mode == "min"
                                             else value > self.best_value)
        if not better:
            return
        self.paths.best.mkdir(parents=True, exist_ok=True)
        prefix = self.built.best_saver.save(self.session, str(self.paths.best_prefix), global_step=step,
                                            latest_filename="checkpoint")
        self.best_value = value
        write_json_atomic(self.paths.best_json, {"metric": metric, "mode": self.options.best_mode, "value": value,
                                                 "epoch": row["epoch"], "step": step, "checkpoint": prefix})


def _cell(value):
    return "" if value is None else f"{value:.6g}"
