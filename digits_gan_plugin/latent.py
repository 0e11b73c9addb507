"""Latent-space math and the registry of inference tasks (numpy only, no TensorFlow).

A *task* turns a few user parameters into the vectors fed to a trained generator:
float32 N x (z_dim + y_dim), where y is the class one-hot part (y_dim = num_classes for
conditional models, 0 otherwise). Tasks are small functions registered with
``@register_task``; ``run_task`` resolves the seed, calls the task and records what was
asked for, so the result can be reproduced.
"""
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .options import Option
from .runtime.vectors import sample_z

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

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
        if not np.isfinite(value):
            raise DataError(f"{what}: {token!r} at position {position} is not a finite number")
        values.append(value)
    return np.asarray(values, dtype=np.float32)


def format_vector(vector):
    """One line of text that `parse_vector` reads back to the same float32 values."""
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(vector, dtype=np.float32)) + "]"


@dataclass(frozen=True)
class LatentSpace:
    """What a trained job's generator takes: z size, classes, image shape.

    z_dim: int or None (None for models without a z input, e.g. encoders).
    num_classes: int or None. conditional: True when the generator takes a class one-hot.
    input_shape: (H, W, C) of the images the model was trained on.
    z_distribution: 'uniform' (U(-1, 1)) or 'normal' (N(0, 1)): what random z's follow.
    """

    z_dim: int
    num_classes: int
    conditional: bool
    input_shape: tuple
    job: str = None
    z_distribution: str = "uniform"

    @property
    def y_dim(self):
        return self.num_classes if self.conditional else 0

    @property
    def vector_dim(self):
        return self.require_z_dim() + self.y_dim

    @classmethod
    def from_job(cls, job_dir):
        """Read `job_dir/config.json` -> model {z_dim, num_classes, conditional, input_shape}."""
        path = os.path.join(job_dir, "config.json")
        try:
            with open(path, encoding="utf-8") as handle:
                model = json.load(handle)["model"]
        except FileNotFoundError:
            raise DataError(f"{path}: not found; is {job_dir} a training job directory?") from None
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}: expected JSON with a 'model' section ({error})") from None
        try:
            z_dim = None if model.get("z_dim") is None else int(model["z_dim"])
            num_classes = None if model.get("num_classes") is None else int(model["num_classes"])
            conditional = bool(model.get("conditional", False))
            input_shape = tuple(int(n) for n in model["input_shape"])
            z_distribution = str(model.get("z_distribution") or "uniform")
            y_dim = model.get("y_dim")
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{path}: model section needs z_dim, num_classes, conditional, "
                            f"input_shape [H, W, C] ({error!r})") from None
        if conditional and not num_classes:
            raise DataError(f"{path}: model.conditional is true but model.num_classes is {num_classes}")
        if len(input_shape) != 3:
            raise DataError(f"{path}: model.input_shape is {list(input_shape)}, expected [H, W, C]")
        if z_distribution not in ("uniform", "normal"):
            raise DataError(f"{path}: model.z_distribution is {z_distribution!r}, expected 'uniform' or 'normal'")
        space = cls(z_dim, num_classes, conditional, input_shape, os.path.abspath(job_dir), z_distribution)
        if y_dim is not None and int(y_dim) != space.y_dim:
            raise DataError(f"{path}: model.y_dim is {y_dim}, expected {space.y_dim} "
                            f"(num_classes when conditional, else 0)")
        return space

    def require_z_dim(self):
        if not self.z_dim:
            raise DataError(f"job {self.job}: model.z_dim is {self.z_dim}; this task needs a GAN generator")
        return self.z_dim

    def require_conditional(self, task):
        if not self.conditional:
            raise DataError(f"task {task} needs a class-conditional model; job {self.job} is unconditional")

    def z(self, value, rng, what="z"):
        """float32 (z_dim,): `value` parsed from text, or drawn from `rng` (the model's
        z_distribution) when empty."""
        z_dim = self.require_z_dim()
        if value is None or (isinstance(value, str) and not value.strip()):
            return sample_z(1, z_dim, rng, self.z_distribution)[0]
        if isinstance(value, str):
            return parse_vector(value, z_dim, what)
        vector = np.asarray(value, dtype=np.float32).reshape(-1)
        if vector.size != z_dim:
            raise DataError(f"{what} has {vector.size} numbers, expected {z_dim}")
        return vector

    def one_hot(self, label):
        """float32 (y_dim,) one-hot of class `label` (empty for unconditional models)."""
        y = np.zeros(self.y_dim, dtype=np.float32)
        if self.conditional:
            if label is None or not 0 <= int(label) < self.num_classes:
                raise DataError(f"class is {label}, expected 0..{self.num_classes - 1}")
            y[int(label)] = 1.0
        return y

    def join(self, z, y):
        """Concatenate z (..., z_dim) and y (..., y_dim) into float32 (N, vector_dim)."""
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.require_z_dim())
        y = np.broadcast_to(np.asarray(y, dtype=np.float32), (len(z), self.y_dim))
        return np.concatenate([z, y], axis=1)


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
    batch = task.func(space, np.random.default_rng(int(seed)), **params)
    batch.params = {**params, **batch.params, "seed": int(seed)}
    return batch


def _steps(count, what):
    count = int(count)
    if count < 1:
        raise DataError(f"{what} is {count}, expected at least 1")
    return count


def _fractions(count):
    """count evenly spaced t in [0, 1], both ends included ([0.] for one step)."""
    return np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)


# --- tasks ------------------------------------------------------------------------------
# Options shared by several tasks are declared once, so the DIGITS form (the union of
# all tasks' options) has one field per name.

Z_HELP = "numbers separated by spaces or commas, brackets allowed; empty: random"
Z = Option("z", str, "", help=f"z vector: {Z_HELP}")
LABEL = Option("label", int, None, min=0, help="class of conditional models; empty: random")
ROWS = Option("rows", int, 10, min=1, help="grid rows")
STEPS = Option("steps", int, 10, min=1, help="images per row")


@register_task("class-sweep", "Class sweep", [Z, ROWS])
def class_sweep(space, rng, z="", rows=10):
    """One z; each column morphs class c into class c+1 from top to bottom (rows x classes)."""
    space.require_conditional("class-sweep")
    classes = space.num_classes
    rows = _steps(rows, "rows")
    z = space.z(z, rng)
    # Exclusive end: the next column starts where this one would have arrived.
    t = np.arange(rows) / rows
    labels = np.stack([slerp(space.one_hot(c), space.one_hot((c + 1) % classes), t) for c in range(classes)],
                      axis=1)  # rows x classes x y_dim
    vectors = space.join(np.broadcast_to(z, (rows * classes, z.size)), labels.reshape(rows * classes, -1))
    return LatentBatch(vectors, grid=(rows, classes), frames=rows, sweep_axis=0)


@register_task("style-sweep", "Style sweep", [
    Option("z_start", str, "", help=f"z at the left: {Z_HELP}"),
    Option("z_end", str, "", help=f"z at the right: {Z_HELP}"),
    STEPS,
])
def style_sweep(space, rng, z_start="", z_end="", steps=10):
    """Two z's slerped from left to right; each row one class (one row if unconditional)."""
    steps = _steps(steps, "steps")
    start, end = space.z(z_start, rng, "z_start"), space.z(z_end, rng, "z_end")
    zs = slerp(start, end, _fractions(steps))  # steps x z_dim
    classes = range(space.num_classes) if space.conditional else [None]
    vectors = np.concatenate([space.join(zs, space.one_hot(c)) for c in classes])
    return LatentBatch(vectors, grid=(len(classes), steps), frames=steps, sweep_axis=1)


@register_task("single", "Single image", [Z, LABEL])
def single_image(space, rng, z="", label=None):
    """One image from a given (or random) z and, for conditional models, a class."""
    label = _label_or_random(space, rng, label)
    vectors = space.join(space.z(z, rng), space.one_hot(label))
    return LatentBatch(vectors, grid=(1, 1), params={"label": label})


@register_task("animation", "Animation", [
    Option("zs", str, "", help="the z vectors to visit, one after another (any separators; "
                                "z_dim numbers each); empty: `count` random ones"),
    Option("count", int, 4, min=2, help="number of random z vectors when none are given"),
    Option("transitions", int, 10, min=1, help="frames from one z to the next"),
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
    Option("cols", int, 10, min=2, help="grid columns"),
    LABEL,
])
def analogy(space, rng, source="", sink1="", sink2="", rows=10, cols=10, label=None):
    """Corners source (top left), sink1 (top right), sink2 (bottom left) and
    sink1 + sink2 - source (bottom right); the grid between is slerped along both axes."""
    rows, cols = _steps(rows, "rows"), _steps(cols, "cols")
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


def load_attribute_vectors(path, z_dim):
    """Read attribute directions from an .npz -> {name: float32 (z_dim,)}.

    Either arrays `names` (K strings) and `vectors` (K x z_dim), or one (z_dim,) array per
    attribute named by its key. Never unpickles.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npz of attribute vectors ({error})") from None
    if "names" in arrays and "vectors" in arrays:
        names, vectors = [str(n) for n in arrays["names"]], arrays["vectors"]
        if vectors.ndim != 2 or len(names) != len(vectors):
            raise DataError(f"{path}: 'vectors' is {vectors.shape}, expected {len(names)} x {z_dim}")
        arrays = dict(zip(names, vectors))
    result = {}
    for name, vector in arrays.items():
        if vector.shape != (z_dim,) or not np.issubdtype(vector.dtype, np.floating):
            raise DataError(f"{path}: attribute {name!r} is {vector.dtype} {vector.shape}, "
                            f"expected a float vector of {z_dim}")
        result[name] = vector.astype(np.float32)
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


def list_images(folder=None, celeba_list=None, image_dir=None, max_count=None):
    """(image paths, labels) from a folder (sorted) or a CelebA list file, at most `max_count`.

    A folder's images may sit in class sub-folders named 0, 1, ...: labels are then those
    int class ids (-1 for images at the top level), else None. A CelebA list
    (list_attr_celeba.txt, list_eval_partition.txt, or one name per line) names an image
    first on each line; other lines (the header) are skipped. Names are relative to
    `image_dir`, by default the list's folder.
    """
    if bool(folder) == bool(celeba_list):
        raise DataError("encode list needs exactly one of an image folder or a CelebA list")
    labels = None
    if folder:
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: image folder not found")
        paths, labels = _folder_images(folder)
    else:
        image_dir = image_dir or os.path.dirname(os.path.abspath(celeba_list))
        try:
            with open(celeba_list, encoding="utf-8") as handle:
                firsts = [line.split()[0] for line in handle if line.split()]
        except OSError as error:
            raise DataError(f"{celeba_list}: cannot read the CelebA list ({error.strerror})") from None
        paths = [os.path.join(image_dir, n) for n in firsts if n.lower().endswith(IMAGE_EXTENSIONS)]
    if max_count:
        paths = paths[:int(max_count)]
        labels = labels if labels is None else labels[:int(max_count)]
    if not paths:
        raise DataError(f"{folder or celeba_list}: no images found")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(f"{missing[0]}: image not found ({len(missing)} of {len(paths)} missing)")
    return paths, labels


def _folder_images(folder):
    """(sorted image paths, labels or None) of `folder` and its class sub-folders 0, 1, ..."""
    def images_in(directory):
        return [os.path.join(directory, n) for n in sorted(os.listdir(directory))
                if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, n))]

    paths = images_in(folder)
    labels = [-1] * len(paths)
    classes = sorted((n for n in os.listdir(folder) if n.isdigit() and os.path.isdir(os.path.join(folder, n))), key=int)
    for name in classes:
        inside = images_in(os.path.join(folder, name))
        paths += inside
        labels += [int(name)] * len(inside)
    return paths, (labels if classes else None)


@register_task("encode-list", "Encode images", [
    Option("folder", str, "", kind="dir", help="folder of images to encode"),
    Option("celeba_list", str, "", kind="file",
           help="CelebA list (e.g. list_attr_celeba.txt) naming the images to encode"),
    Option("image_dir", str, "", kind="dir", help="folder of the CelebA list's images; empty: the list's folder"),
    Option("max_count", int, 100, min=1, help="encode at most this many images"),
    Option("label", int, None, min=0, help="class given to a conditional encoder's generator for every image; "
                                           "empty: the class sub-folder (0, 1, ...) if any, else inferred"),
])
def encode_list(space, rng, folder="", celeba_list="", image_dir="", max_count=100, label=None):
    """Images (a folder, or a CelebA list with a max count) to feed an encoder job,
    with the class for a conditional model's generator when one is given."""
    paths, labels = list_images(folder, celeba_list, image_dir, max_count)
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
