"""Latent-space math and the registry of inference tasks (numpy only, no TensorFlow).

A *task* turns a few user parameters into the vectors fed to a trained generator:
float32 N x (z_dim + y_dim), where y is the class one-hot part (y_dim = num_classes for
conditional models, 0 otherwise). Tasks are small functions registered with
``@register_task``; ``run_task`` resolves the seed, calls the task and records what was
asked for, so the result can be reproduced.
"""
import dataclasses
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import DataError
from .files import atomic_write
from .imaging import IMAGE_SUFFIXES, list_labelled_images
from .options import Option


_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Below this |sin(angle)| the great circle through a and b is ill-defined.
_PARALLEL_EPS = 1e-7


def slerp(a, b, t):
    """Spherical linear interpolation from `a` to `b`.

    a, b: float vectors of shape (D,). t: a scalar or an array of any shape, usually in
    [0, 1]. Returns float64 t.shape + (D,) (a (D,) vector for scalar t); entries at t == 0
    are `a` and at t == 1 are `b` bit-for-bit. When a or b is zero or the two are
    (anti)parallel, the interpolation is linear.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"slerp needs two vectors of one length, got {a.shape} and {b.shape}")
    t = np.asarray(t, dtype=np.float64)
    tt = t[..., np.newaxis]
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    sin_omega = 0.0
    if norm_a > 0 and norm_b > 0:
        cos_omega = np.clip(np.dot(a / norm_a, b / norm_b), -1.0, 1.0)
        omega = np.arccos(cos_omega)
        sin_omega = np.sin(omega)
    if sin_omega < _PARALLEL_EPS:
        result = (1.0 - tt) * a + tt * b
    else:
        result = (np.sin((1.0 - tt) * omega) * a + np.sin(tt * omega) * b) / sin_omega
    result = np.where(tt == 0.0, a, result)
    return np.where(tt == 1.0, b, result)


_ARRAY_REPR = re.compile(r"^\s*array\((.*?)(,\s*dtype=\w+)?\)\s*$", re.DOTALL)
_SEPARATORS = re.compile(r"[\s,;\[\]()]+")


def parse_vector(text, expected_len, what="z"):
    """Parse a vector pasted by a user into float32 (expected_len,).

    Accepts numbers separated by spaces, commas, semicolons or newlines, optionally in
    brackets, and numpy's ``array([...], dtype=float32)`` repr. Raises DataError naming
    `what` when a token is not a number, a number is NaN/inf, or the count is wrong.
    """
    values = _parse_numbers(text, what)
    if len(values) != expected_len:
        raise DataError(f"{what} has {len(values)} numbers, expected {expected_len}")
    return values


def _parse_numbers(text, what):
    """All numbers of `text` (see parse_vector) as float32 (n,)."""
    match = _ARRAY_REPR.match(text)
    if match:
        text = match.group(1)
    tokens = [token for token in _SEPARATORS.split(text) if token]
    values = []
    for position, token in enumerate(tokens, start=1):
        try:
            value = float(token)
        except ValueError:
            raise DataError(f"{what}: {token!r} at position {position} is not a number") from None
        if _not_float32(value):
            raise DataError(f"{what}: {token!r} at position {position} {_not_float32(value)}")
        values.append(value)
    return np.asarray(values, dtype=np.float32)


def format_vector(vector):
    """One line of text that `parse_vector` reads back to the same float32 values."""
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(vector, dtype=np.float32)) + "]"


Z_DISTRIBUTIONS = ("uniform", "normal")
INFERENCE_INPUTS = ("z", "image")
# What a job written before z_distribution was recorded, or a model file that says
# nothing, draws z from: N(0, 1), as DIGITS' GAN plugin does.
DEFAULT_Z_DISTRIBUTION = "normal"


def sample_z(count, z_dim, rng, distribution=DEFAULT_Z_DISTRIBUTION):
    """float32 count x z_dim noise: U(-1, 1) ('uniform') or N(0, 1) ('normal')."""
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, (count, z_dim)).astype(np.float32)
    return rng.standard_normal((count, z_dim)).astype(np.float32)


def check_finite(values, what):
    """`values` as float32, or DataError naming `what` when an entry is NaN, infinite or
    outside float32's range (it would overflow to inf)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what}: expected numbers, got {np.asarray(values).dtype} values") from None
    bad = ~np.isfinite(array) | (np.abs(np.nan_to_num(array, nan=0.0)) > _FLOAT32_MAX)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = ", ".join(f"{axis} {i + 1}" for axis, i in zip(("row", "column", "item"), index[-3:]))
        if len(index) == 1:
            where = f"position {index[0] + 1}"
        value = float(array[index])
        raise DataError(f"{what}: {value!r} at {where or 'its only value'} {_not_float32(value)}")
    return array.astype(np.float32)


def _not_float32(value):
    """Why the float `value` cannot be a float32 input, or None."""
    if not np.isfinite(value):
        return "is not a finite number"
    if abs(value) > _FLOAT32_MAX:
        return f"is outside float32's range (|x| <= {_FLOAT32_MAX:.4g}; it would become inf)"
    return None


@dataclass(frozen=True)
class ModelFacts:
    """What a trained model takes and makes; saved as config.json's 'model' section.

    z_dim: int, or None for models without a z input (encoders). num_classes: classes
    (scalar labels) or attributes (1,1,K labels) of the training dataset, or None.
    conditional: True when the generator takes a class one-hot after z. input_shape:
    (H, W, C) of the training images. job: the job directory it was read from (for
    messages). network: the model file. inference_input: 'z' (generators) or 'image'
    (encoders); default 'z' exactly when z_dim is set. z_distribution: 'uniform'
    (U(-1, 1)) or 'normal' (N(0, 1)). class_names: the dataset's label names or None.
    Invalid combinations raise DataError (see `from_dict` for the file's name).
    """

    z_dim: Optional[int]
    num_classes: Optional[int]
    conditional: bool
    input_shape: tuple
    job: Optional[str] = None
    network: Optional[str] = None
    inference_input: Optional[str] = None
    z_distribution: str = DEFAULT_Z_DISTRIBUTION
    class_names: Optional[tuple] = None

    def __post_init__(self):
        def fix(name, value):
            object.__setattr__(self, name, value)

        try:
            fix("input_shape", tuple(int(n) for n in self.input_shape))
        except (TypeError, ValueError):
            raise DataError(f"input_shape is {self.input_shape!r}, expected [H, W, C]") from None
        fix("conditional", bool(self.conditional))
        if self.class_names is not None:
            fix("class_names", tuple(str(n) for n in self.class_names))
        if self.inference_input is None:
            fix("inference_input", "z" if self.z_dim else "image")
        for name in ("z_dim", "num_classes"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                                          and value >= 1):
                raise DataError(f"{name} is {value!r}, expected a positive integer (or null)")
            fix(name, None if value is None else int(value))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise DataError(f"input_shape is {list(self.input_shape)}, expected [H, W, C]")
        if self.conditional and not self.num_classes:
            raise DataError(f"conditional is true but num_classes is {self.num_classes}")
        if self.z_distribution not in Z_DISTRIBUTIONS:
            raise DataError(f"z_distribution is {self.z_distribution!r}, expected 'uniform' or 'normal'")
        if self.inference_input not in INFERENCE_INPUTS or (self.inference_input == "z" and not self.z_dim):
            raise DataError(f"inference_input is {self.inference_input!r}, expected 'image', "
                            f"or 'z' with z_dim set")

    @property
    def y_dim(self):
        """Width of the class one-hot after z: num_classes when conditional, else 0."""
        return self.num_classes if self.conditional else 0

    @property
    def vector_width(self):
        """Width D = z_dim + y_dim of a generator's input (y_dim for models without z)."""
        return (self.z_dim or 0) + self.y_dim

    @property
    def vector_dim(self):
        """z_dim + y_dim; DataError for models without a z input."""
        return self.require_z_dim() + self.y_dim

    def to_dict(self):
        """The config.json 'model' section (y_dim and vector_width included for readers)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "job"}
        data.update(input_shape=list(self.input_shape), y_dim=self.y_dim,
                    class_names=None if self.class_names is None else list(self.class_names))
        return data

    @classmethod
    def from_dict(cls, data, source="model", job=None):
        """ModelFacts from a config.json 'model' section; DataError naming `source`
        when a field is missing or wrong. Unknown keys are ignored."""
        if not isinstance(data, dict):
            raise DataError(f"{source}: expected a 'model' section (a JSON object), got {type(data).__name__}")
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data and key != "job"}
        if data.get("z_distribution") is None:
            fields.pop("z_distribution", None)
        try:
            facts = cls(job=job, **fields)
        except DataError as error:
            raise DataError(f"{source}: model.{error}") from None
        except TypeError as error:  # a required field is missing
            raise DataError(f"{source}: model section needs z_dim, num_classes, conditional and "
                            f"input_shape [H, W, C] ({error})") from None
        except ValueError as error:
            raise DataError(f"{source}: model section has a field of the wrong type ({error})") from None
        y_dim = data.get("y_dim")
        if y_dim is not None and y_dim != facts.y_dim:
            raise DataError(f"{source}: model.y_dim is {y_dim}, expected {facts.y_dim} "
                            f"(num_classes when conditional, else 0)")
        return facts

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def require_z_dim(self):
        if not self.z_dim:
            raise DataError(f"job {self.job}: model.z_dim is {self.z_dim}; this task needs a GAN generator")
        return self.z_dim

    def require_conditional(self, task):
        if not self.conditional:
            raise DataError(f"task {task} needs a class-conditional model; job {self.job} is unconditional")

    def sample(self, count, rng):
        """float32 count x z_dim z's drawn from the model's z_distribution."""
        return sample_z(count, self.require_z_dim(), rng, self.z_distribution)

    def z(self, value, rng, what="z"):
        """float32 (z_dim,): `value` parsed from text (or a sequence), or drawn from `rng`
        (the model's z_distribution) when empty."""
        z_dim = self.require_z_dim()
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.sample(1, rng)[0]
        if isinstance(value, str):
            return parse_vector(value, z_dim, what)
        vector = np.asarray(value).reshape(-1)
        if vector.size != z_dim:
            raise DataError(f"{what} has {vector.size} numbers, expected {z_dim}")
        return check_finite(vector, what)

    def one_hot(self, label):
        """float32 (y_dim,) one-hot of class `label` (empty for unconditional models)."""
        y = np.zeros(self.y_dim, dtype=np.float32)
        if self.conditional:
            if label is None or not 0 <= int(label) < self.num_classes:
                raise DataError(f"class is {label}, expected 0..{self.num_classes - 1}")
            y[int(label)] = 1.0
        return y

    def one_hots(self, labels):
        """float32 (N, y_dim) one-hots of int class ids `labels` (N,)."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if not self.conditional:
            return np.zeros((len(labels), 0), np.float32)
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.size:
            raise DataError(f"class is {int(bad[0])}, expected 0..{self.num_classes - 1}")
        return np.eye(self.num_classes, dtype=np.float32)[labels]

    def join(self, z, y):
        """Concatenate z (..., z_dim) and y (..., y_dim) into float32 (N, vector_dim);
        a single z or y is repeated to the other's count."""
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.require_z_dim())
        y = np.asarray(y, dtype=np.float32).reshape(-1, self.y_dim) if self.y_dim else np.zeros((1, 0), np.float32)
        count = max(len(z), len(y))
        return np.concatenate([np.broadcast_to(z, (count, z.shape[1])), np.broadcast_to(y, (count, self.y_dim))],
                              axis=1)

    def with_labels(self, z, labels):
        """z (N x z_dim) joined with the one-hots of int `labels` (N,)."""
        return self.join(z, self.one_hots(labels))

    def grid_vectors(self, seed, rows=8):
        """Fixed vectors for the per-epoch sample grid -> (vectors N x D, (rows, cols)).

        Conditional: one column per class, each row one z shared across its columns.
        Unconditional: rows x rows different z.
        """
        rng = np.random.default_rng(seed)
        if self.conditional:
            cols = self.num_classes
            z = np.repeat(self.sample(rows, rng), cols, axis=0)
            return self.with_labels(z, np.tile(np.arange(cols), rows)), (rows, cols)
        return self.sample(rows * rows, rng), (rows, rows)

    def describe(self):
        """Short text for messages, e.g. 'z_dim 100 + 10 classes (normal z)'."""
        text = f"z_dim {self.z_dim}" if self.z_dim else "no z input"
        return text + (f" + {self.num_classes} classes" if self.conditional else "") + f" ({self.z_distribution} z)"


@dataclass
class LatentBatch:
    """What a task produces.

    vectors: float32 N x (z_dim + y_dim), row-major over `grid` when it is set (None for
    tasks whose inputs are images). grid: (rows, cols) or None. frames: the number of
    animation frames (N for an animation) or None. sweep_axis: 0 when the sweep runs down
    the grid's columns, 1 when it runs along its rows, 'ring' for an analogy grid's
    border, None when there is nothing to animate. image_paths: the images to encode
    (encode list), else None; image_labels: their int class ids for a conditional
    encoder's generator (-1: inferred by the encoder), or None when no class is given.
    params: JSON-serialisable record of the request, incl. seed.
    """

    vectors: np.ndarray = None
    grid: tuple = None
    frames: int = None
    sweep_axis: object = None
    image_paths: list = None
    image_labels: list = None
    params: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.image_paths) if self.vectors is None else len(self.vectors)

    def meta(self, task, space):
        """The `latent` section recorded in the inference dataset's dataset.json."""
        return {
            "task": task,
            "grid": list(self.grid) if self.grid else None,
            "frames": self.frames,
            "sweep_axis": self.sweep_axis,
            "count": len(self),
            "params": self.params,
            "seed": self.params.get("seed"),
            "z_dim": space.z_dim,
            "num_classes": space.num_classes,
            "conditional": space.conditional,
            "input_shape": list(space.input_shape),
            "z_distribution": space.z_distribution,
            "job": space.job,
        }


@dataclass(frozen=True)
class LatentTask:
    name: str
    title: str
    func: object
    options: tuple

    @property
    def description(self):
        """The first paragraph of the task function's docstring, on one line."""
        return " ".join((self.func.__doc__ or "").strip().split("\n\n")[0].split())


TASKS = {}


def register_task(name, title, options=()):
    """Register `func(space, rng, **params) -> LatentBatch` as task `name`.

    `options` are the task's parameters, declared once for the CLI and the DIGITS form.
    """
    def decorator(func):
        TASKS[name] = LatentTask(name, title, func, tuple(options))
        return func
    return decorator


def get_task(name):
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown latent task {name!r}; expected one of: {', '.join(TASKS)}") from None


def run_task(name, space, seed=None, **params):
    """Run task `name` for `space`. A random seed is drawn and recorded when `seed` is None."""
    task = get_task(name)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, naming the task
        batch = task.func(space, np.random.default_rng(int(seed)), **params)
    if batch.vectors is not None:  # e.g. an analogy's sink1 + sink2 - source, or a huge coefficient
        batch.vectors = check_finite(batch.vectors, f"{name}: the vectors computed from the given values")
    batch.params = {**params, **batch.params, "seed": int(seed)}
    return batch


MAX_STEPS = 1000  # rows, columns, steps, transitions or z's of one task
MAX_VECTORS = 100_000  # vectors (so images to generate) of one inference dataset


def _steps(count, what):
    count = int(count)
    if not 1 <= count <= MAX_STEPS:
        raise DataError(f"{what} is {count}, expected 1 to {MAX_STEPS}")
    return count


def _check_vector_count(count, what):
    """DataError naming `what` when the `count` vectors a task is about to make are over
    MAX_VECTORS."""
    if count > MAX_VECTORS:
        raise DataError(f"{what} make {count:,} images, more than the {MAX_VECTORS:,} an inference dataset holds")


def _fractions(count):
    """count evenly spaced t in [0, 1], both ends included ([0.] for one step)."""
    return np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)


# --- tasks ------------------------------------------------------------------------------
# Options shared by several tasks are declared once, so the DIGITS form (the union of
# all tasks' options) has one field per name.

Z_HELP = "numbers separated by spaces or commas, brackets allowed; empty: random"
Z = Option("z", str, "", help=f"z vector: {Z_HELP}")
LABEL = Option("label", int, None, min=0, help="class of conditional models; empty: random")
ROWS = Option("rows", int, 10, min=1, max=MAX_STEPS, help="grid rows")
STEPS = Option("steps", int, 10, min=1, max=MAX_STEPS,
               help="images along the sweep (style sweep: its rows, DIGITS' row count; attribute edit: its columns)")


@register_task("class-sweep", "Class sweep", [
    Z, ROWS,
    Option("interpolate", str, "whole", choices=("whole", "label"),
           help="whole (default, as DIGITS): slerp the whole [z, one-hot] vector from class c (top row) "
                "to class c+1 (bottom row), both ends included; label: keep z fixed and slerp only the "
                "one-hot, stopping one step before c+1 (where the next column starts), which keeps the "
                "class part of unit length all the way"),
])
def class_sweep(space, rng, z="", rows=10, interpolate="whole"):
    """One z; each column morphs class c into class c+1 from top to bottom (rows x classes)."""
    space.require_conditional("class-sweep")
    classes, rows = space.num_classes, _steps(rows, "rows")
    z = space.z(z, rng)
    if interpolate == "whole":
        starts = space.join(z, space.one_hots(np.arange(classes)))  # [z, class c]
        ends = space.join(z, space.one_hots((np.arange(classes) + 1) % classes))  # [z, class c+1]
        cells = np.stack([slerp(a, b, _fractions(rows)) for a, b in zip(starts, ends)], axis=1)
        vectors = cells.reshape(rows * classes, -1).astype(np.float32)
    elif interpolate == "label":
        t = np.arange(rows) / rows
        labels = np.stack([slerp(space.one_hot(c), space.one_hot((c + 1) % classes), t) for c in range(classes)],
                          axis=1)  # rows x classes x y_dim
        vectors = space.join(np.broadcast_to(z, (rows * classes, z.size)), labels.reshape(rows * classes, -1))
    else:
        raise DataError(f"interpolate is {interpolate!r}, expected 'whole' or 'label'")
    return LatentBatch(vectors, grid=(rows, classes), frames=rows, sweep_axis=0)


@register_task("style-sweep", "Style sweep", [
    Option("z_start", str, "", help=f"z of the first row (left column with --layout transposed): {Z_HELP}"),
    Option("z_end", str, "", help=f"z of the last row (right column with --layout transposed): {Z_HELP}"),
    STEPS,
    Option("layout", str, "digits", choices=("digits", "transposed"),
           help="digits (default, as DIGITS): one row per slerp step from z_start (top) to z_end (bottom), "
                "one column per class; transposed: one row per class, the steps from left to right"),
])
def style_sweep(space, rng, z_start="", z_end="", steps=10, layout="digits"):
    """Two z's slerped from the first row to the last; each column one class (one column
    if unconditional). --layout transposed swaps rows and columns."""
    steps = _steps(steps, "steps")
    if layout not in ("digits", "transposed"):
        raise DataError(f"layout is {layout!r}, expected 'digits' or 'transposed'")
    start, end = space.z(z_start, rng, "z_start"), space.z(z_end, rng, "z_end")
    zs = slerp(start, end, _fractions(steps))  # steps x z_dim
    classes = list(range(space.num_classes)) if space.conditional else [None]
    by_class = np.stack([space.join(zs, space.one_hot(c)) for c in classes])  # classes x steps x D
    if layout == "transposed":
        return LatentBatch(by_class.reshape(len(classes) * steps, -1), grid=(len(classes), steps),
                           frames=steps, sweep_axis=1)
    vectors = by_class.transpose(1, 0, 2).reshape(steps * len(classes), -1)
    return LatentBatch(vectors, grid=(steps, len(classes)), frames=steps, sweep_axis=0)


@register_task("single", "Single image", [Z, LABEL])
def single_image(space, rng, z="", label=None):
    """One image from a given (or random) z and, for conditional models, a class."""
    label = _label_or_random(space, rng, label)
    vectors = space.join(space.z(z, rng), space.one_hot(label))
    return LatentBatch(vectors, grid=(1, 1), params={"label": label})


@register_task("animation", "Animation", [
    Option("zs", str, "", help="the z vectors to visit, one after another (any separators; "
                                "z_dim numbers each); empty: `count` random ones"),
    Option("count", int, 4, min=2, max=MAX_STEPS, help="number of random z vectors when none are given"),
    Option("transitions", int, 10, min=1, max=MAX_STEPS, help="frames from one z to the next"),
    LABEL,
])
def animation(space, rng, zs="", count=4, transitions=10, label=None):
    """Slerp through a list of z's (given, or `count` random ones), looping back to the first.

    Each of the len(zs) transitions has `transitions` frames, the first exactly its z.
    """
    transitions = _steps(transitions, "transitions")
    if zs is not None and len(zs):
        keys = _z_list(space, zs)
    else:
        keys = [space.z(None, rng) for _ in range(_steps(count, "count"))]
    if len(keys) < 2:
        raise DataError(f"animation needs at least 2 z vectors, got {len(keys)}")
    _check_vector_count(len(keys) * transitions, f"{len(keys)} z's x {transitions} transitions")
    label = _label_or_random(space, rng, label)
    t = np.arange(transitions) / transitions
    path = np.concatenate([slerp(keys[i], keys[(i + 1) % len(keys)], t) for i in range(len(keys))])
    vectors = space.join(path, space.one_hot(label))
    return LatentBatch(vectors, frames=len(vectors), params={"label": label, "count": len(keys)})


@register_task("analogy", "Analogy grid", [
    Option("source", str, "", help=f"z at the top left: {Z_HELP}"),
    Option("sink1", str, "", help=f"z at the top right: {Z_HELP}"),
    Option("sink2", str, "", help=f"z at the bottom left: {Z_HELP}"),
    ROWS,
    Option("cols", int, 10, min=2, max=MAX_STEPS, help="grid columns"),
    LABEL,
])
def analogy(space, rng, source="", sink1="", sink2="", rows=10, cols=10, label=None):
    """Corners source (top left), sink1 (top right), sink2 (bottom left) and
    sink1 + sink2 - source (bottom right); the grid between is slerped along both axes."""
    rows, cols = _steps(rows, "rows"), _steps(cols, "cols")
    _check_vector_count(rows * cols, f"{rows} rows x {cols} columns")
    if rows < 2 or cols < 2:
        raise DataError(f"analogy grid is {rows}x{cols}, expected at least 2x2")
    source = space.z(source, rng, "source")
    sink1, sink2 = space.z(sink1, rng, "sink1"), space.z(sink2, rng, "sink2")
    destination = sink1 + sink2 - source
    left = slerp(source, sink2, _fractions(rows))
    right = slerp(sink1, destination, _fractions(rows))
    grid = np.stack([slerp(left[r], right[r], _fractions(cols)) for r in range(rows)])
    label = _label_or_random(space, rng, label)
    vectors = space.join(grid.reshape(rows * cols, -1), space.one_hot(label))
    return LatentBatch(vectors, grid=(rows, cols), frames=2 * (rows + cols) - 4, sweep_axis="ring",
                       params={"label": label})


def read_arrays(path, what="array file"):
    """{name: array} of an .npz (never unpickled) or .h5/.hdf5 file; DataError naming
    `path` for a missing, empty, truncated or otherwise unreadable file."""
    path = os.fspath(path)
    try:
        if path.lower().endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as handle:
                return {key: handle[key][()] for key in handle.keys()}
        if os.path.isfile(path) and not zipfile.is_zipfile(path):
            # np.load would take it for a pickle and say so, which misleads
            raise DataError(f"{path}: not a readable {what} (expected an .npz: a zip archive of .npy arrays"
                            f"{', or .h5' if what == 'z file' else ''})")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except Exception as error:  # zip, zlib, HDF5 errors and pickle refusals: the file is bad
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: not a readable {what} ({reason})") from None


def save_arrays(path, arrays):
    """Write arrays to .npz or HDF5 (by `path`'s suffix), atomically."""
    def write(tmp):
        if str(path).lower().endswith(".npz"):
            np.savez(tmp, **arrays)
        else:
            import h5py

            with h5py.File(tmp, "w") as out:
                for key, value in arrays.items():
                    out.create_dataset(key, data=value)

    atomic_write(path, write)


def read_z_file(path):
    """float32 N x D vectors from .npz (array 'z' or the only one), .h5/.hdf5 (dataset
    'z' or the only one) or text (one vector per line, whitespace or comma separated).
    DataError naming `path` when it is unreadable, empty, ragged or holds a value that
    is not a finite float32 number."""
    path = os.fspath(path)
    if path.lower().endswith((".npz", ".h5", ".hdf5")):
        arrays = read_arrays(path, "z file")
        if "z" not in arrays and len(arrays) != 1:
            raise DataError(f"{path}: holds {', '.join(arrays) or 'no arrays'}; expected an array named 'z'")
        array = arrays["z"] if "z" in arrays else next(iter(arrays.values()))
        if not np.issubdtype(array.dtype, np.number) or array.ndim < 1:
            raise DataError(f"{path}: the z array is {array.dtype} {array.shape}, expected numbers N x D")
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = [line.replace(",", " ") for line in handle if line.strip()]
            array = np.loadtxt(lines, ndmin=2, dtype=np.float64) if lines else np.zeros((0, 0))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise DataError(f"{path}: cannot read z vectors ({reason})") from None
    if not array.size:
        raise DataError(f"{path}: holds no z vectors, expected one vector per line (or an N x D array)")
    return check_finite(array, f"{path}").reshape(len(array), -1)


def load_attribute_vectors(path, z_dim):
    """Read attribute directions from an .npz -> {name: float32 (z_dim,)} (z_dim None:
    any one length).

    Either arrays `names` (K strings) and `vectors` (K x z_dim), or one (z_dim,) array per
    attribute named by its key. Never unpickles. DataError naming the file for bad or
    non-finite values.
    """
    arrays = read_arrays(path, ".npz of attribute vectors")
    if "names" in arrays and "vectors" in arrays:
        names, vectors = [str(n) for n in arrays["names"]], arrays["vectors"]
        if vectors.ndim != 2 or len(names) != len(vectors):
            raise DataError(f"{path}: 'vectors' is {vectors.shape}, expected {len(names)} x {z_dim}")
        arrays = dict(zip(names, vectors))
    result = {}
    for name, vector in arrays.items():
        if vector.shape != (z_dim or vector.size,) or not np.issubdtype(vector.dtype, np.floating):
            raise DataError(f"{path}: attribute {name!r} is {vector.dtype} {vector.shape}, "
                            f"expected a float vector of {z_dim}")
        result[name] = check_finite(vector, f"{path}: attribute {name!r}")
    if not result:
        raise DataError(f"{path}: holds no attribute vectors")
    return result


def parse_coefficients(text, names):
    """Parse rows of `name=coefficient` pairs, rows separated by newlines or '|'
    -> list of {name: float}."""
    rows = []
    lines = [line for line in re.split(r"[\n|]", text or "") if line.strip()]
    for number, line in enumerate(lines, start=1):
        row = {}
        for pair in _SEPARATORS.split(line.strip()):
            if not pair:
                continue
            name, sep, value = pair.partition("=")
            if not sep:
                raise DataError(f"coefficients row {number}: {pair!r} is not name=number")
            if name not in names:
                raise DataError(f"coefficients row {number}: unknown attribute {name!r}; "
                                f"known: {', '.join(sorted(names))}")
            try:
                row[name] = float(value)
            except ValueError:
                raise DataError(f"coefficients row {number}: {value!r} for {name} is not a number") from None
            if not np.isfinite(row[name]):
                raise DataError(f"coefficients row {number}: {value!r} for {name} is not finite")
        rows.append(row)
    if not rows:
        raise DataError("coefficients: no rows given, expected rows like 'Smiling=1.5 Male=-1'")
    return rows


@register_task("attributes", "Attribute edit", [
    Option("attributes_file", str, "", kind="file",
           help="attribute vectors .npz (from digits-gan attributes)"),
    Option("coefficients", str, "", help="rows of name=coefficient pairs, rows separated by "
                                         "new lines or '|', e.g. 'Smiling=1.5 Male=-1 | Eyeglasses=2'"),
    Z, STEPS, LABEL,
])
def attribute_edit(space, rng, attributes_file="", coefficients="", z="", steps=10, label=None):
    """A z edited by rows of attribute coefficients; each row ramps the edit from 0 (left)
    to the full coefficients (right)."""
    if not attributes_file:
        raise DataError("attributes task needs an attribute vectors .npz (attributes_file)")
    vectors_by_name = load_attribute_vectors(attributes_file, space.require_z_dim())
    rows = parse_coefficients(coefficients, vectors_by_name)
    steps = _steps(steps, "steps")
    z = space.z(z, rng)
    label = _label_or_random(space, rng, label)
    ramp = np.linspace(0.0, 1.0, steps) if steps > 1 else np.ones(1)
    edits = np.stack([sum(c * vectors_by_name[n] for n, c in row.items()) for row in rows])
    zs = z + ramp[np.newaxis, :, np.newaxis] * edits[:, np.newaxis, :]  # rows x steps x z_dim
    vectors = space.join(zs.reshape(-1, z.size), space.one_hot(label))
    return LatentBatch(vectors, grid=(len(rows), steps), frames=steps, sweep_axis=1,
                       params={"label": label})


def list_images(folder=None, celeba_list=None, image_dir=None, max_count=None, class_names=None):
    """(image paths, labels) from a folder (sorted) or a CelebA list file, at most `max_count`.

    A folder's images may sit in class sub-folders (imaging.list_labelled_images: named
    by `class_names`, e.g. the training set's, or by class ids 0, 1, ...): labels are
    then the int class ids (-1 for images at the top level), else None. A CelebA list
    (list_attr_celeba.txt, list_eval_partition.txt, or one name per line) names an image
    first on each line; other lines (the header) are skipped. Names are relative to
    `image_dir`, by default the list's folder.
    """
    if bool(folder) == bool(celeba_list):
        raise DataError("encode list needs exactly one of an image folder or a CelebA list")
    labels = None
    if folder:
        paths, labels, _ = list_labelled_images(folder, class_names)
    else:
        image_dir = image_dir or os.path.dirname(os.path.abspath(celeba_list))
        try:
            with open(celeba_list, encoding="utf-8") as handle:
                firsts = [line.split()[0] for line in handle if line.split()]
        except OSError as error:
            raise DataError(f"{celeba_list}: cannot read the CelebA list ({error.strerror})") from None
        paths = [os.path.join(image_dir, n) for n in firsts if n.lower().endswith(IMAGE_SUFFIXES)]
    if max_count:
        paths = paths[:int(max_count)]
        labels = labels if labels is None else labels[:int(max_count)]
    if not paths:
        raise DataError(f"{folder or celeba_list}: no images found")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(f"{missing[0]}: image not found ({len(missing)} of {len(paths)} missing)")
    return paths, labels


@register_task("encode-list", "Encode images", [
    Option("folder", str, "", kind="dir", help="folder of images to encode"),
    Option("celeba_list", str, "", kind="file",
           help="CelebA list (e.g. list_attr_celeba.txt) naming the images to encode"),
    Option("image_dir", str, "", kind="dir", help="folder of the CelebA list's images; empty: the list's folder"),
    Option("max_count", int, 100, min=1, help="encode at most this many images"),
    Option("label", int, None, min=0, help="class given to a conditional encoder's generator for every image; "
                                           "empty: the class sub-folder (named as the training set's classes, "
                                           "or 0, 1, ...) if any, else inferred"),
])
def encode_list(space, rng, folder="", celeba_list="", image_dir="", max_count=100, label=None):
    """Images (a folder, or a CelebA list with a max count) to feed an encoder job,
    with the class for a conditional model's generator when one is given."""
    class_names = space.class_names if space.conditional else None  # unconditional: folders only organise
    paths, labels = list_images(folder, celeba_list, image_dir, max_count, class_names)
    if label is not None:
        if not space.conditional:
            raise DataError(f"label {label}: the job's model is not conditional (it takes no class)")
        space.one_hot(label)  # checks the class is in range
        labels = [int(label)] * len(paths)
    elif labels is not None and not space.conditional:
        labels = None  # class sub-folders only organise the images of an unconditional model
    elif labels is not None and max(labels) >= space.num_classes:
        raise DataError(f"{folder}: class sub-folder {max(labels)}, expected 0..{space.num_classes - 1}")
    return LatentBatch(image_paths=paths, image_labels=labels, params={"count": len(paths), "label": label})


def _label_or_random(space, rng, label):
    if space.conditional and label is None:
        return int(rng.integers(space.num_classes))
    return label


def _z_list(space, zs):
    """zs: text holding k * z_dim numbers, or a sequence of vectors -> list of float32 z's."""
    z_dim = space.require_z_dim()
    if isinstance(zs, str):
        flat = _parse_numbers(zs, "zs")
        if not flat.size or flat.size % z_dim:
            raise DataError(f"zs has {flat.size} numbers, expected a multiple of {z_dim} (one z per {z_dim})")
        return list(flat.reshape(-1, z_dim))
    return [space.z(z, None, f"z #{number}") for number, z in enumerate(zs, start=1)]
