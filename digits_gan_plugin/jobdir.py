"""The job directory: the one module that knows its layout.

    JOBDIR/config.json            resolved options, 'dataset', 'model' (latent.ModelFacts)
    JOBDIR/network.py             copy of the model file (inference uses it)
    JOBDIR/checkpoints/           model.ckpt-STEP.* (the last --keep) + 'checkpoint' state
    JOBDIR/checkpoints/best/      the best checkpoint by --best-metric + best.json
    JOBDIR/events.out.tfevents.*  TensorBoard events (in the job folder itself, so that
                                  `tensorboard --logdir PARENT` names the run after the job)
    JOBDIR/train.lock             held (fcntl.flock) by the one process training the job
    JOBDIR/samples/               reals.png, fakes_epoch0001.png, ...
    JOBDIR/metrics.csv, JOBDIR/steps.csv (per summary interval), JOBDIR/loss_curve.png, JOBDIR/eval.json
    JOBDIR/inference/<name>/      result.npz, result.json, grid.png (``digits-gan infer``)
    JOBDIR/attributes/            attribute_vectors.npz (``digits-gan attributes``)
    JOBDIR/gallery/               index.html and pictures (``digits-gan gallery``)
    JOBDIR/export/                SavedModel, model.json, weights.npz (``digits-gan export``)

Every other module asks here for paths, the model facts, checkpoints, metrics and
inference results; none builds a job path from a string. TensorFlow is imported only
to read a checkpoint's index (``find_checkpoint``).
"""
import csv
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from .errors import DataError, TrainingError, os_error_reason
from .files import check_out_folder, staged_folder, write_json_atomic, write_text_atomic
from .imaging import save_png
from .latent import ModelFacts, read_arrays, save_arrays

CONFIG_FILE = "config.json"
CHECKPOINT_PREFIX = "model.ckpt"
CHECKPOINT_STATE = "checkpoint"
RESULT_ARRAYS = "result.npz"
RESULT_INFO = "result.json"
RESULT_GRID = "grid.png"
RESULT_SUFFIXES = (".npz", ".h5", ".hdf5")
_STEP = re.compile(r"-(\d+)$")


class JobPaths:
    """Paths inside one job directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / CONFIG_FILE
        self.network = self.root / "network.py"
        self.checkpoints = self.root / "checkpoints"
        self.checkpoint_state = self.checkpoints / CHECKPOINT_STATE
        self.checkpoint_prefix = self.checkpoints / CHECKPOINT_PREFIX
        self.best = self.checkpoints / "best"
        self.best_prefix = self.best / CHECKPOINT_PREFIX
        self.best_json = self.best / "best.json"
        self.events = self.root  # TensorBoard run = the job's folder name (not 'job/events')
        self.lock = self.root / "train.lock"
        self.samples = self.root / "samples"
        self.metrics = self.root / "metrics.csv"
        self.step_metrics = self.root / "steps.csv"
        self.loss_curve = self.root / "loss_curve.png"
        self.eval_json = self.root / "eval.json"
        self.inference = self.root / "inference"
        self.attributes = self.root / "attributes"
        self.gallery = self.root / "gallery"
        self.export = self.root / "export"

    def fakes(self, epoch):
        """Sample grid of 1-based `epoch`."""
        return self.samples / f"fakes_epoch{epoch:04d}.png"

    def result(self, name):
        """Folder of the inference result `name`."""
        return self.inference / name


def is_job(path):
    """Whether `path` is a training job directory (holds config.json)."""
    return JobPaths(path).config.is_file()


# ------------------------------------------------------------------ config, model facts

def read_config(job_dir):
    """The config.json dict of a job; DataError when `job_dir` is not a job."""
    path = JobPaths(job_dir).config
    if not path.is_file():
        raise DataError(f"{job_dir}: not a training job (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def model_facts_from_config(job_dir, config):
    """latent.ModelFacts of `config` (the dict read from `job_dir`), validated once;
    `network` is the job's copy of the model file when it has one."""
    paths = JobPaths(job_dir)
    if "model" not in config:
        raise DataError(f"{paths.config}: expected a 'model' section (is {job_dir} a training job?)")
    facts = ModelFacts.from_dict(config["model"], source=str(paths.config), job=os.path.abspath(job_dir))
    if paths.network.is_file():  # the model file as trained, even if the original moved or changed
        facts = facts.replace(network=str(paths.network))
    return facts


def read_model_facts(job_dir):
    """What the job's model takes and makes (see latent.ModelFacts)."""
    return model_facts_from_config(job_dir, read_config(job_dir))


# ------------------------------------------------------------------------- checkpoints

def checkpoint_step(prefix):
    """Global step of a checkpoint prefix ('.../model.ckpt-1200' -> 1200), or None."""
    match = _STEP.search(str(prefix))
    return int(match.group(1)) if match else None


def has_checkpoint(job_dir):
    """Whether the job has saved a checkpoint (state file present; not validated)."""
    return JobPaths(job_dir).checkpoint_state.is_file()


def checkpoint_candidates(directory):
    """Checkpoint prefixes in `directory`, newest (highest step) first: those its state
    file records (taken inside `directory`, where a moved job keeps them) and any other
    `*.index` there (a state file may be lost or stale)."""
    directory = Path(directory)
    prefixes = {str(path)[:-len(".index")] for path in directory.glob("*.index")}
    try:
        state = (directory / CHECKPOINT_STATE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        state = ""
    for name in re.findall(r'^\w*model_checkpoint_path:\s*"([^"]+)"', state, re.MULTILINE):
        prefixes.add(str(directory / Path(name).name))  # here, even when the job folder was moved
    return sorted(prefixes, key=lambda p: (checkpoint_step(p) or -1, p), reverse=True)


def checkpoint_problem(prefix):
    """Why checkpoint `prefix` cannot be restored (missing or empty index or data
    shards, an unreadable index, data shorter than the tensors it indexes), or None."""
    prefix = str(prefix)
    index = Path(prefix + ".index")
    if not index.is_file() or index.stat().st_size == 0:
        return "its .index file is missing or empty"
    shards = sorted(Path(prefix).parent.glob(Path(prefix).name + ".data-*-of-*"))
    if not shards:
        return "its .data shard is missing"
    expected = int(re.search(r"-of-(\d+)$", shards[0].name).group(1))
    if len(shards) != expected or any(shard.stat().st_size == 0 for shard in shards):
        return f"{expected - len(shards)} of its {expected} .data shard(s) are missing or empty"
    return _checkpoint_read_problem(prefix, sum(shard.stat().st_size for shard in shards))


def _checkpoint_read_problem(prefix, data_bytes):
    """Read the index with TensorFlow; compare the bytes of its numeric tensors with
    the data shards' size (TensorFlow writes them back to back)."""
    import tensorflow.compat.v1 as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    except Exception as error:  # DataLossError, OpError, ...: anything means unreadable
        return f"its index is unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
    needed = sum(int(np.prod(shapes[name])) * dtype.size for name, dtype in dtypes.items()
                 if dtype != tf.string and name in shapes)
    if data_bytes < needed:
        return f"its data holds {data_bytes} bytes, the index needs {needed} (truncated)"
    return None


def job_checkpoint(job_dir, checkpoint="last"):
    """The checkpoint prefix a command names for a job: 'last' (or None) and 'best' of
    `job_dir`, anything else a checkpoint directory or prefix (see find_checkpoint)."""
    checkpoint = checkpoint or "last"
    if checkpoint in ("last", "best"):
        return find_checkpoint(job_dir, which=checkpoint)
    return find_checkpoint(checkpoint)


def find_checkpoint(path, which="last"):
    """Resolve a usable checkpoint prefix from a job directory (`which` 'last' or
    'best'), a checkpoint directory, or a checkpoint prefix.

    In a directory, a truncated or corrupt newest checkpoint is skipped for the newest
    good one, with a warning on stderr. A prefix given by name must be good. Raises
    TrainingError (one line) when there is none."""
    path = Path(path)
    if not path.is_dir():
        if Path(str(path) + ".index").is_file():
            problem = checkpoint_problem(path)
            if problem:
                raise TrainingError(f"{path}: checkpoint cannot be used: {problem}")
            return str(path)
        raise TrainingError(f"{path}: not a job directory, checkpoint directory or checkpoint prefix")
    if is_job(path):
        directory = JobPaths(path).best if which == "best" else JobPaths(path).checkpoints
    else:
        directory = path
    candidates = checkpoint_candidates(directory) if directory.is_dir() else []
    if not candidates:
        raise TrainingError(f"{directory}: no {which} checkpoint")
    skipped = []
    for prefix in candidates:
        problem = checkpoint_problem(prefix)
        if problem is None:
            for bad, why in skipped:
                print(f"digits-gan: warning: {bad}: skipped, {why}; using {Path(prefix).name} "
                      f"(step {checkpoint_step(prefix)})", file=sys.stderr)
            return prefix
        skipped.append((prefix, problem))
    bad, why = skipped[0]
    raise TrainingError(f"{directory}: no usable checkpoint ({len(skipped)} found; newest {Path(bad).name}: {why})")


def latest_step(job_dir):
    """Step of the job's newest checkpoint (not validated, no TensorFlow), or None."""
    candidates = checkpoint_candidates(JobPaths(job_dir).checkpoints)
    return checkpoint_step(candidates[0]) if candidates else None


# ----------------------------------------------------------------------------- metrics

def read_metrics(path):
    """Rows of metrics.csv (`path`, or a job directory) as dicts of str ([] when absent)."""
    path = Path(path)
    if path.is_dir():
        path = JobPaths(path).metrics
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            return list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable metrics CSV ({error})") from None


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


def read_step_metrics(job_dir):
    """Rows of steps.csv (one per summary interval, written while an epoch runs) as dicts
    of str; [] when absent. A last line cut short by a crash is dropped."""
    path = JobPaths(job_dir).step_metrics
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable metrics CSV ({error})") from None
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))
    return [row for row in rows if None not in row and all(value is not None for value in row.values())]


def append_step_metrics(job_dir, row, columns):
    """Append one row (a dict) to steps.csv; `columns` fixes the header, written when
    the file is new. Appending keeps this cheap on every summary step; the reader drops
    a torn last line."""
    path = JobPaths(job_dir).step_metrics
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), restval="", extrasaction="ignore",
                                lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)


# ------------------------------------------------------------------- inference results

class InferenceResult:
    """An inference result as written by ``write_result``: a folder holding result.npz
    (+ result.json, grid.png), or an .npz / .h5 file (+ a .png beside it).

    Attributes: path (what was opened), name, meta (result.json, {} when absent),
    arrays (every array), images (uint8 N,H,W,C or None), inputs (float32 N x D, or
    the encoded images), labels, z (encoders: float32 N x z_dim) and reconstructions
    (encoders: the generator's image of each z, the same array as images). A result
    with both ``z`` and an image array is an encoder's; files written before the
    reconstruction was stored once (``reconstructions`` beside ``images``) read alike.
    Bad files raise DataError naming the file, never anything else.
    """

    def __init__(self, path):
        path = Path(path)
        self.path = path
        self.name = path.stem if path.suffix.lower() in RESULT_SUFFIXES else path.name
        arrays_path, info_path, _ = result_files(path)
        self.meta = _read_result_info(info_path) if info_path else {}
        self.arrays = read_arrays(arrays_path, "inference result")
        self.images = self.arrays.get("images", self.arrays.get("reconstructions"))
        self.inputs = self.arrays.get("inputs")
        self.labels = self.arrays.get("labels")
        self.z = self.arrays.get("z")
        if self.images is None and self.z is None:
            raise DataError(f"{arrays_path}: expected an 'images' array (uint8 N,H,W,C), or an encoder's "
                            f"'z' and 'images'")
        if self.images is not None and (self.images.ndim != 4 or self.images.dtype != np.uint8):
            raise DataError(f"{arrays_path}: 'images' is {self.images.dtype} {self.images.shape}, "
                            f"expected uint8 N,H,W,C")

    @property
    def is_encoder(self):
        return self.z is not None and self.images is not None

    @property
    def reconstructions(self):
        return self.images if self.is_encoder else None

    @property
    def latent(self):
        """The inference dataset's latent section; for results made without one (e.g.
        `infer --classes`), just the grid that result.json records."""
        return self.meta.get("latent") or {"grid": self.meta.get("grid")}


def result_files(out):
    """(arrays, info or None, grid) paths of a result at `out`: a folder, or a file
    whose suffix is .npz / .h5 / .hdf5 (the grid then beside it as .png)."""
    out = Path(out)
    if out.suffix.lower() in RESULT_SUFFIXES:
        return out, None, out.with_suffix(".png")
    return out / RESULT_ARRAYS, out / RESULT_INFO, out / RESULT_GRID


def find_results(job_dir):
    """The job's inference result folders (those holding result.npz), sorted by name."""
    folder = JobPaths(job_dir).inference
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if (path / RESULT_ARRAYS).is_file())


def write_result(out, arrays, info=None, grid=None):
    """Write an inference result at `out` (see ``result_files``): the arrays (.npz or
    HDF5), `info` as result.json (folders only) and `grid` (a PNG-encodable uint8
    image, or None). Returns the written paths.

    All or nothing: a folder is staged beside `out` and renamed into place; a file
    result writes its grid first and the arrays last, removing the grid on failure.
    OSError (a full disk, no permission) becomes one DataError line naming `out`."""
    out = Path(out)
    arrays_path, info_path, grid_path = result_files(out)
    try:
        if info_path is None:
            return _write_file_result(arrays_path, grid_path, arrays, grid)
        return _write_folder_result(out, arrays, info, grid)
    except OSError as error:
        raise DataError(f"{out}: cannot write the inference result ({os_error_reason(error)}); "
                        f"nothing was written") from None


def _write_file_result(arrays_path, grid_path, arrays, grid):
    written = []
    try:
        if grid is not None:
            save_png(grid, grid_path)
            written.append(str(grid_path))
        save_arrays(arrays_path, arrays)
    except BaseException:
        for path in written:
            os.remove(path)
        raise
    return [str(arrays_path)] + written


def _write_folder_result(out, arrays, info, grid):
    names = [RESULT_ARRAYS]
    # an earlier result is replaced, never a folder of other files named by mistake
    check_out_folder(out, True, (RESULT_ARRAYS, RESULT_INFO), "inference result folder")
    with staged_folder(out, "inference result") as staged:
        save_arrays(staged / RESULT_ARRAYS, arrays)
        if grid is not None:
            save_png(grid, staged / RESULT_GRID)
            names.append(RESULT_GRID)
        if info is not None:
            write_json_atomic(staged / RESULT_INFO, info)
            names.append(RESULT_INFO)
    return [str(out / name) for name in names]


def _read_result_info(path):
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object")
    return info
