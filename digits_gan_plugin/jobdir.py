"""The job directory written by ``digits-gan train`` and read by inference.

    JOBDIR/config.json            resolved options, 'dataset', 'model' (ModelFacts)
    JOBDIR/network.py             copy of the model file (inference uses it)
    JOBDIR/checkpoints/           model.ckpt-STEP.* (the last --keep) + 'checkpoint' state
    JOBDIR/checkpoints/best/      the best checkpoint by --best-metric + best.json
    JOBDIR/events/                TensorBoard events
    JOBDIR/samples/               reals.png, fakes_epoch0001.png, ...
    JOBDIR/metrics.csv, JOBDIR/loss_curve.png
    JOBDIR/inference/<name>/      outputs of ``digits-gan infer --dataset``
"""
import csv
import io
import json
from pathlib import Path

from .errors import TrainingError
from .files import write_text_atomic

CONFIG_FILE = "config.json"
CHECKPOINT_PREFIX = "model.ckpt"


class JobPaths:
    """Paths inside one job directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / CONFIG_FILE
        self.network = self.root / "network.py"
        self.checkpoints = self.root / "checkpoints"
        self.best = self.checkpoints / "best"
        self.best_json = self.best / "best.json"
        self.events = self.root / "events"
        self.samples = self.root / "samples"
        self.metrics = self.root / "metrics.csv"
        self.loss_curve = self.root / "loss_curve.png"
        self.inference = self.root / "inference"

    def fakes(self, epoch):
        """Sample grid of 1-based `epoch`."""
        return self.samples / f"fakes_epoch{epoch:04d}.png"


def read_config(job_dir):
    """The config.json dict of a job; TrainingError when `job_dir` is not a job."""
    path = JobPaths(job_dir).config
    if not path.is_file():
        raise TrainingError(f"{job_dir}: not a training job (no {CONFIG_FILE})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise TrainingError(f"{path}: not valid JSON ({error})") from None


def latest_checkpoint(directory):
    """Prefix of the newest checkpoint recorded in `directory`'s state file, or None."""
    import tensorflow.compat.v1 as tf

    if not Path(directory).is_dir():
        return None
    return tf.train.latest_checkpoint(str(directory))


def find_checkpoint(path, which="last"):
    """Resolve a checkpoint prefix from a job directory (`which` 'last' or 'best'), a
    checkpoint directory, or a checkpoint prefix. Raises TrainingError when none."""
    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            paths = JobPaths(path)
            directory = paths.best if which == "best" else paths.checkpoints
        else:
            directory = path
        found = latest_checkpoint(directory)
        if not found:
            raise TrainingError(f"{directory}: no {which} checkpoint")
        return found
    if Path(str(path) + ".index").is_file():
        return str(path)
    raise TrainingError(f"{path}: not a job directory, checkpoint directory or checkpoint prefix")


def read_metrics(path):
    """Rows of metrics.csv as dicts of str (empty list when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def write_metrics(path, rows):
    """Write rows (dicts) as CSV, atomically; columns in order of first appearance."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
