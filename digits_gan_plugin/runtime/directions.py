"""Directions in a generator's z found without labels (and with them, where they exist):
``digits-gan latent directions``.

- sefa (closed-form factorization, Shen & Zhou 2021): A, the generator's first layer
  (the first MatMul / convolution fed by the input) restricted to z, is read off the
  frozen graph as its exact Jacobian (the layer is linear: row i = f(e_i) - f(0)); the
  directions are the eigenvectors of A A^T with the largest eigenvalues (score).
- ganspace (PCA of early activations, Harkonen et al. 2020): the activations after that
  layer's nonlinearity for `samples` z drawn from the model's distribution; each top
  principal component is taken back to z by least squares of z on the PCA coordinates
  (score: its share of the variance).
- boundary (InterFaceGAN, Shen et al. 2020): with an encoder job and a labelled dataset,
  per attribute (CelebA's 40) or per class (MNIST's digits, one-vs-rest) the unit normal
  of a logistic-regression boundary between the encoded z of the images with and
  without it (score: held-out balanced accuracy, 0.5 = chance), written next to the mean-difference vector
  (``attributes.attribute_vectors``, as ``meandiff_NAME``). A conditional encoder is
  given each image's true class, so its z holds what the class does not: style.

OUT (staged, renamed into place): directions.npz with ``names`` (str K) and ``vectors``
(float32 K x z_dim, unit rows) as ``latent.load_attribute_vectors`` reads them (so the
``attributes`` latent task edits with e.g. ``sefa_0=2``), plus ``method`` (str K),
``score`` (float64 K) and ``extent`` (the sweep's reach); for each direction NAME.png (one
row per z, the edit from -extent to +extent left to right) and NAME.gif (the sweep
played forth and back); directions.json (the settings and each direction's score).
"""
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import write_json_atomic
from ..imaging import make_grid, save_gif, save_png
from ..latent import save_arrays
from ..files import check_out_folder, staged_folder

METHODS = ("sefa", "ganspace", "boundary")
LAYER_OPS = ("MatMul", "BatchMatMulV2", "Conv2D", "Conv2DBackpropInput", "DepthwiseConv2dNative")
ACTIVATION_OPS = ("Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Maximum", "Tanh", "Sigmoid", "Softplus")
FILE_NAME = "directions.npz"


@dataclass
class Directions:
    """names (list of K str), vectors float32 K x z_dim (unit rows), method (K str),
    score float64 K."""

    names: list
    vectors: np.ndarray
    method: list
    score: np.ndarray

    def arrays(self, extent):
        return {"names": np.asarray(self.names, dtype=str), "vectors": self.vectors.astype(np.float32),
                "method": np.asarray(self.method, dtype=str), "score": np.asarray(self.score, np.float64),
                "extent": np.float64(extent)}

    def __add__(self, other):
        return Directions(self.names + other.names, np.concatenate([self.vectors, other.vectors]),
                          self.method + other.method, np.concatenate([self.score, other.score]))


class FirstLayer:
    """The frozen generator in a TF1 session with its first layer found: `layer` (the
    first MatMul / convolution fed by the input) and `activation` (the first
    nonlinearity after it, else `layer`)."""

    def __init__(self, tower):
        import tensorflow.compat.v1 as tf

        self.facts = tower.facts
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(tower.graph_def, name="")
        self.input = self.graph.get_tensor_by_name(tower.input)
        self.layer = _first_op(self.input.op, LAYER_OPS)
        if self.layer is None:
            raise DataError(f"{self.facts.network}: no MatMul or convolution is fed by the generator's input")
        activation = _first_op(self.layer, ACTIVATION_OPS)
        self.activation = (activation or self.layer).outputs[0]
        self.session = tf.Session(graph=self.graph)

    def close(self):
        self.session.close()

    def run(self, tensor, z, labels=None):
        vectors = self.facts.with_labels(z, labels) if self.facts.conditional else np.asarray(z, np.float32)
        batches = [self.session.run(tensor, {self.input: vectors[i:i + 256].reshape(-1, 1, 1, vectors.shape[1])})
                   for i in range(0, len(vectors), 256)]
        return np.concatenate(batches).reshape(len(vectors), -1).astype(np.float64)

    def jacobian(self):
        """z_dim x units: how the first layer's output moves per unit of each z entry."""
        z = np.vstack([np.zeros((1, self.facts.z_dim)), np.eye(self.facts.z_dim)]).astype(np.float32)
        labels = np.zeros(len(z), np.int64) if self.facts.conditional else None
        outputs = self.run(self.layer.outputs[0], z, labels)
        return outputs[1:] - outputs[0]


def _first_op(start, types):
    """The op of one of `types` downstream of `start` that has no other such op upstream
    of it (the nearest one first when several), or None."""
    depth, frontier = {start.name: 0}, [start]
    while frontier:
        following = []
        for op in (op for source in frontier for out in source.outputs for op in out.consumers()):
            if op.name not in depth:
                depth[op.name] = depth[frontier[0].name] + 1
                following.append(op)
        frontier = following
    graph = start.graph
    candidates = [graph.get_operation_by_name(name) for name in depth
                  if name != start.name and graph.get_operation_by_name(name).type in types]
    first = [op for op in candidates if not _has_upstream(op, types, set(depth), start.name)]
    return min(first, key=lambda op: depth[op.name]) if first else None


def _has_upstream(op, types, reachable, start_name):
    """Whether an op of `types` (other than `op`) lies between `start_name` and `op`."""
    stack, seen = [tensor.op for tensor in op.inputs], set()
    while stack:
        source = stack.pop()
        if source.name in seen or source.name not in reachable or source.name == start_name:
            continue
        if source.type in types:
            return True
        seen.add(source.name)
        stack += [tensor.op for tensor in source.inputs]
    return False


def sefa(layer, count):
    """The `count` SeFa directions of a FirstLayer."""
    jacobian = layer.jacobian()
    if not np.any(jacobian):
        raise DataError(f"{layer.facts.network}: the first layer ({layer.layer.name}) does not depend on z")
    values, vectors = np.linalg.eigh(jacobian @ jacobian.T)
    order = np.argsort(values)[::-1][:count]
    return Directions([f"sefa_{k}" for k in range(len(order))], vectors[:, order].T.astype(np.float32),
                      ["sefa"] * len(order), values[order] / values.sum())


def ganspace(layer, count, samples, rng):
    """The `count` GANSpace directions of a FirstLayer from `samples` random z."""
    facts = layer.facts
    z = facts.sample(samples, rng).astype(np.float64)
    labels = rng.integers(facts.num_classes, size=samples) if facts.conditional else None
    activations = layer.run(layer.activation, z.astype(np.float32), labels)
    centred = activations - activations.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    count = min(count, len(singular))
    coordinates = centred @ components[:count].T                          # samples x count
    back, *_ = np.linalg.lstsq(coordinates, z - z.mean(axis=0), rcond=None)  # count x z_dim
    norms = np.linalg.norm(back, axis=1, keepdims=True)
    variance = singular ** 2 / np.sum(singular ** 2)
    return Directions([f"ganspace_{k}" for k in range(count)], (back / np.maximum(norms, 1e-12)).astype(np.float32),
                      ["ganspace"] * count, variance[:count])


def boundaries(encoder_job, dataset_dir, max_images=None, seed=0):
    """InterFaceGAN boundaries and mean-difference vectors of each attribute (or class)
    of a labelled dataset, encoded by `encoder_job`."""
    z, labels, names = labelled_codes(encoder_job, dataset_dir, max_images)
    return fit_boundaries(z, labels, names, seed)


def labelled_codes(encoder_job, dataset_dir, max_images=None):
    """(z float32 N x z_dim, labels N x K (> 0: has it), names K) of a dataset's images
    encoded by `encoder_job`: attribute labels as they are, class ids one-hot (one
    attribute per class, named by label_names, else by the id)."""
    from ..attributes import STAGES, encode_dataset
    from ..dataset_io import DatasetReader
    from .projector import encoder_start

    reader = DatasetReader(dataset_dir)
    stages = [stage for stage in STAGES if stage in reader.stages]
    if not stages or reader.label_shape(stages[0]) != []:
        return encode_dataset(encoder_job, dataset_dir, max_images=max_images, progress=False)
    images, classes = (np.concatenate(arrays)[:max_images] for arrays in zip(*map(reader.read_all, stages)))
    count = int(reader.num_classes or classes.max() + 1)
    names = reader.label_names if reader.label_names and len(reader.label_names) == count else list(map(str, range(count)))
    z, _, _ = encoder_start(encoder_job, images, classes)
    return z, np.eye(count)[classes] * 2 - 1, [f"class_{name}" for name in names]


def fit_boundaries(z, labels, names, seed=0):
    """z float N x z_dim, labels N x K (> 0: has the attribute), names K -> Directions
    boundary_NAME (unit normals of class-balanced logistic regressions, score: balanced
    accuracy on a held-out quarter, 0.5 = chance) then meandiff_NAME (unit mean differences, score 0), for each attribute
    that some images have and some do not."""
    from ..attributes import attribute_vectors

    try:  # a dependency of the runtime extra (setup.py)
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import balanced_accuracy_score
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataError('boundary directions need scikit-learn: pip install "digits-gan[runtime]"') from None
    z = np.asarray(z, np.float64)
    labels = np.asarray(labels).reshape(len(z), -1)
    means = attribute_vectors(z, labels, list(names))
    vectors, scores = [], []
    for name in means.names:
        has = labels[:, list(names).index(name)] > 0
        if min(has.sum(), (~has).sum()) >= 2:
            z_fit, z_test, y_fit, y_test = train_test_split(z, has, test_size=0.25, random_state=seed, stratify=has)
        else:  # too few on one side to hold any out
            z_fit, z_test, y_fit, y_test = z, z, has, has
        # balanced: one digit against the nine others is 10% / 90%
        model = LogisticRegression(max_iter=1000, class_weight="balanced").fit(z_fit, y_fit)
        normal = model.coef_[0]
        vectors.append(normal / max(np.linalg.norm(normal), 1e-12))
        scores.append(balanced_accuracy_score(y_test, model.predict(z_test)))
    mean_norms = np.linalg.norm(means.vectors, axis=1, keepdims=True)
    found = Directions([f"boundary_{n}" for n in means.names], np.asarray(vectors, np.float32).reshape(-1, z.shape[1]),
                       ["boundary"] * len(vectors), np.asarray(scores, np.float64))
    return found + Directions([f"meandiff_{n}" for n in means.names],
                              (means.vectors / np.maximum(mean_norms, 1e-12)).astype(np.float32),
                              ["meandiff"] * len(vectors), np.zeros(len(vectors)))


def default_extent(facts):
    """How far a sweep reaches: 0.3 x the expected length of a z (normal z_dim 100: 3)."""
    second_moment = 1.0 / 3.0 if facts.z_distribution == "uniform" else 1.0
    return 0.3 * float(np.sqrt(facts.z_dim * second_moment))


def sweep_vectors(facts, direction, extent, steps, rows, rng):
    """Generator inputs rows x steps (row-major): `rows` random z, each edited from
    -extent to +extent along `direction` -> (vectors N x D, coefficients (steps,))."""
    z = facts.sample(rows, rng)
    t = np.linspace(-extent, extent, steps)
    edited = (z[:, None, :] + t[None, :, None] * np.asarray(direction)[None, None, :]).reshape(rows * steps, -1)
    if facts.conditional:
        labels = np.repeat(rng.integers(facts.num_classes, size=rows), steps)
        return facts.with_labels(edited.astype(np.float32), labels), t
    return edited.astype(np.float32), t


def select(directions, indices):
    """The directions at `indices` (DataError naming the range for one out of it)."""
    if indices is None:
        return directions
    bad = [index for index in indices if not 0 <= index < len(directions.names)]
    if bad:
        raise DataError(f"--index {bad[0]}: out of range, expected 0..{len(directions.names) - 1} "
                        f"({len(directions.names)} directions)")
    return Directions([directions.names[i] for i in indices], directions.vectors[list(indices)],
                      [directions.method[i] for i in indices], directions.score[list(indices)])


def directions_command(job_dir, out, methods=("sefa", "ganspace"), count=5, indices=None, samples=2000, steps=9,
                       rows=4, extent=None, seed=0, encoder_job=None, dataset=None, checkpoint="last",
                       overwrite=False):
    """``digits-gan latent directions`` -> (Directions, written paths)."""
    from .export import freeze, generate_function

    out = Path(out)
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"--method {unknown[0]}: expected one of {', '.join(METHODS)}")
    if "boundary" in methods and not (encoder_job and dataset):
        raise DataError("--method boundary needs --encoder JOBDIR and --dataset DIR (class or attribute labels)")
    for name, value, low in (("count", count, 1), ("samples", samples, 2), ("steps", steps, 2), ("rows", rows, 1)):
        if value < low:
            raise DataError(f"--{name} {value}: expected an integer >= {low}")
    check_out_folder(out, overwrite, ("directions.json", "directions.npz"), "directions folder")
    tower = freeze(job_dir, checkpoint)
    facts = tower.facts.replace(job=str(job_dir))
    facts.require_z_dim()
    if count > facts.z_dim:  # beyond z_dim, directions in z are no longer independent
        print(f"digits-gan: --count {count}: a {facts.z_dim}-dimensional z has at most {facts.z_dim} "
              f"directions per method; finding {facts.z_dim}", file=sys.stderr)
        count = facts.z_dim
    rng = np.random.default_rng(seed)
    found = Directions([], np.zeros((0, facts.z_dim), np.float32), [], np.zeros(0))
    layer = FirstLayer(tower) if {"sefa", "ganspace"} & set(methods) else None
    try:
        if "sefa" in methods:
            found = found + sefa(layer, count)
        if "ganspace" in methods:
            found = found + ganspace(layer, count, samples, rng)
    finally:
        if layer is not None:
            layer.close()
    if "boundary" in methods:
        found = found + boundaries(encoder_job, dataset, seed=seed)
    found = select(found, indices)
    extent = default_extent(facts) if extent is None else float(extent)
    generate = generate_function(tower)
    sweeps = {name: _render(generate, facts, sweep_vectors(facts, vector, extent, steps, rows, np.random.default_rng(seed))[0])
              for name, vector in zip(found.names, found.vectors)}
    info = dict(job=str(job_dir), methods=methods, extent=extent, steps=steps, rows=rows, seed=seed, samples=samples,
                directions=[dict(name=n, method=m, score=float(s)) for n, m, s in zip(found.names, found.method,
                                                                                    found.score)])
    return found, _write(out, found, sweeps, extent, steps, rows, info)


def _render(generate, facts, vectors):
    """uint8 images of generator inputs N x D through `generate` (export.generate_function)."""
    import tensorflow as tf

    z, y = vectors[:, :facts.z_dim], vectors[:, facts.z_dim:]
    images, _ = generate(tf.constant(z), tf.constant(y) if facts.conditional else None)
    return images.numpy()


def _write(out, found, sweeps, extent, steps, rows, info):
    with staged_folder(out, "directions") as staged:
        save_arrays(staged / FILE_NAME, found.arrays(extent))
        for name, images in sweeps.items():
            save_png(make_grid(images, rows=rows, cols=steps), staged / f"{name}.png")
            by_step = images.reshape((rows, steps) + images.shape[1:]).transpose(1, 0, 2, 3, 4)
            frames = [make_grid(frame, rows=1, cols=rows) for frame in by_step]
            save_gif(frames + frames[-2:0:-1], staged / f"{name}.gif", duration_ms=120)
        write_json_atomic(staged / "directions.json", info)
    return [str(out / FILE_NAME)] + [str(out / f"{name}.png") for name in sweeps]
