"""Fitting z (and the class) to any image: ``digits-gan latent project``.

The generator is the job's frozen inference graph (``export.freeze``) as a differentiable
TF2 function. For each image, Adam moves z to lower

    loss = mean((G(z, y) - x)^2)                    pixels in [0, 1]
         + perceptual_weight * mean over f of mean((f(G) - f(x))^2) / mean(f(x)^2)

where f are features of the image: the judge's penultimate layer (``--perceptual
judge``), or every 4-D activation of the GAN's own discriminator applied to an image
(``--perceptual discriminator``: found in the job's model file generically, see
``DiscriminatorFeatures``),

with z kept in the model's distribution after every step (uniform: clipped to [-1, 1];
normal: clipped to +-3) and the lowest-loss z of each image kept. Start: the encoder's z and class when an encoder job is given,
else z = 0 (the distribution's mean). Conditional models without a given class search
it: every class is tried for the first `search_steps`, each image keeps its best one.
Images are independent rows of one batch (the loss is their sum, Adam is elementwise).

OUT (``project_command``), staged and renamed into place:
    z.npz             z: float32 N x D generator inputs (z, then the one-hot), what
                      `digits-gan infer --z` reads; latent: N x z_dim; labels (int64,
                      conditional); mse: per image; names: the image files
    reconstruction.png  the targets (odd rows) above their reconstructions (even rows)
    optimisation.gif  the same pairs while the optimisation runs
    projection.json   settings, per-image MSE, seconds per image, start
"""
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from ..errors import DataError, ModelDefinitionError
from ..files import check_out_folder, staged_folder, write_json_atomic
from ..imaging import list_image_files, make_grid, save_gif, save_png
from ..latent import save_arrays
from ..options import Option

Z_BOUNDS = {"uniform": 1.0, "normal": 3.0}
PERCEPTUAL = ("judge", "discriminator")
# The optimisation's options, declared once: CLI flags (cli/latent_model.py) and the web
# form. Their bounds are checked by ProjectorSettings.check (one line, naming the flag).
OPTIONS = [
    Option("steps", int, 100, "Adam steps in all"),
    Option("lr", float, 0.05, "Adam learning rate"),
    Option("search_steps", int, None, "steps trying every class, for conditional models without a given class "
                                      "(default: a quarter of the steps)"),
    Option("perceptual_weight", float, 0.0, "weight of the feature loss (0: pixels only)"),
    Option("perceptual", str, "judge", "whose features the feature loss compares: the judge classifier's or the "
                                       "GAN's own discriminator's", choices=PERCEPTUAL),
]


@dataclass(frozen=True)
class ProjectorSettings:
    """steps: Adam steps in all; learning_rate: Adam's; perceptual_weight: weight of the
    feature term (0: pixels only); perceptual: whose features, 'judge' or
    'discriminator'; search_steps: steps of the class search (None: a quarter of
    `steps`); frames: snapshots kept for the GIF."""

    steps: int = 100
    learning_rate: float = 0.05
    perceptual_weight: float = 0.0
    perceptual: str = "judge"
    search_steps: Optional[int] = None
    frames: int = 12

    @classmethod
    def from_options(cls, values):
        """Settings of OPTIONS' values ({name: value}, as the CLI or the web form give them)."""
        values = {option.name: option.convert(values.get(option.name)) for option in OPTIONS}
        return cls(steps=values["steps"], learning_rate=values["lr"], perceptual_weight=values["perceptual_weight"],
                   perceptual=values["perceptual"], search_steps=values["search_steps"]).check()

    def check(self):
        for name in ("steps", "frames"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name} {getattr(self, name)}: expected an integer >= 1")
        if not self.learning_rate > 0:
            raise DataError(f"--lr {self.learning_rate}: expected a number > 0")
        if self.perceptual_weight < 0:
            raise DataError(f"--perceptual-weight {self.perceptual_weight}: expected a number >= 0")
        if self.perceptual not in PERCEPTUAL:
            raise DataError(f"--perceptual {self.perceptual}: expected one of {', '.join(PERCEPTUAL)}")
        if self.search_steps is not None and not 0 <= self.search_steps < self.steps:
            raise DataError(f"--search-steps {self.search_steps}: expected 0..{self.steps - 1}")
        return self


@dataclass
class Projection:
    """vectors float32 N x D (generator inputs); z N x z_dim; labels int64 N or None;
    reconstructions uint8 N,H,W,C; mse float64 N (of the uint8 reconstructions, pixels
    in [0, 1]); frames: uint8 N,H,W,C snapshots;
    seconds: optimisation time."""

    vectors: np.ndarray
    z: np.ndarray
    labels: Optional[np.ndarray]
    reconstructions: np.ndarray
    mse: np.ndarray
    frames: list
    seconds: float


class Projector:
    """Fits z to target images for one FrozenTower (see the module docstring). features:
    the perceptual term's (JudgeFeatures or DiscriminatorFeatures), needed when
    settings.perceptual_weight > 0. progress: a tqdm bar of the steps on a terminal."""

    def __init__(self, tower, settings=ProjectorSettings(), features=None, progress=False):
        import tensorflow as tf

        from .export import generate_function

        self.progress = progress
        self.facts = tower.facts
        self.settings = settings.check()
        if settings.perceptual_weight and features is None:
            raise DataError(f"--perceptual-weight needs the {settings.perceptual}'s features")
        self.features = features if settings.perceptual_weight else None
        self.generate = generate_function(tower)
        self.bound = Z_BOUNDS[self.facts.z_distribution]
        # one trace serves batches of any size (reduce_retracing generalises the shapes)
        self._gradient = tf.function(self._loss_and_gradient, reduce_retracing=True)

    def project(self, targets, z=None, labels=None):
        """targets uint8 N,H,W,C; z: start float N x z_dim (None: 0); labels: int class
        ids N for conditional models (None: searched) -> Projection."""
        targets = np.asarray(targets)
        count, z_dim = len(targets), self.facts.z_dim
        z = np.zeros((count, z_dim), np.float32) if z is None else np.clip(np.asarray(z, np.float32), -self.bound,
                                                                           self.bound)
        steps, frames = self.settings.steps, []
        start = time.perf_counter()
        if self.facts.conditional and labels is None:
            search = self.settings.search_steps if self.settings.search_steps is not None else steps // 4
            z, labels = self._search_classes(targets, z, max(search, 1), frames)
            steps -= max(search, 1)
        if self.facts.conditional:
            labels = np.asarray(labels, np.int64)
            self.facts.one_hots(labels)  # DataError for a class out of range
        z, images, mse = self._fit(targets, z, labels, steps, frames)
        vectors = self.facts.with_labels(z, labels) if self.facts.conditional else z
        return Projection(vectors=vectors, z=z, labels=labels, reconstructions=images, mse=mse,
                          frames=frames, seconds=time.perf_counter() - start)

    def _search_classes(self, targets, z, steps, frames):
        """Fit every class for `steps`; each image keeps its best (z, class)."""
        count, classes = len(targets), self.facts.num_classes
        labels = np.tile(np.arange(classes), count)
        z, images, mse = self._fit(np.repeat(targets, classes, axis=0), np.repeat(z, classes, axis=0), labels,
                                   steps, None)
        best = np.argmin(mse.reshape(count, classes), axis=1) + np.arange(count) * classes
        frames.append(images[best])
        return z[best], labels[best]

    def _fit(self, targets, z, labels, steps, frames):
        """`steps` Adam steps from z -> (the lowest-loss z of each row seen, its uint8
        images, its pixel MSE): a row never ends worse than it started.

        Adam runs in numpy on the gradient of one traced function, which serves every
        batch (the class search's N x classes rows and the fit's N)."""
        import tensorflow as tf

        y = tf.constant(self.facts.one_hots(labels)) if self.facts.conditional else None
        classes = tf.constant(np.zeros(len(targets), np.int64) if labels is None else np.asarray(labels, np.int64))
        target = tf.constant(np.asarray(targets, np.float32) / 255.0)
        target_features = self._features(target, classes)
        keep = set(np.linspace(0, steps, min(self.settings.frames, steps + 1)).round().astype(int).tolist()) \
            if frames is not None else set()
        z = np.array(z, np.float32)
        best_z, best_loss = z.copy(), np.full(len(z), np.inf)
        moment, second = np.zeros_like(z), np.zeros_like(z)
        beta1, beta2, rate = 0.9, 0.999, self.settings.learning_rate
        bar = tqdm(total=steps, unit="step", desc="projecting", disable=not self.progress or not sys.stderr.isatty())
        for index in range(steps + 1):  # the last pass only scores the final z
            images, loss, gradient = (value.numpy() for value in self._gradient(tf.constant(z), y, classes, target,
                                                                                target_features))
            better = loss < best_loss
            best_z[better], best_loss[better] = z[better], loss[better]
            if index in keep:
                frames.append(images)
            if index == steps:
                break
            bar.update()
            moment = beta1 * moment + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * np.square(gradient)
            step = rate * (moment / (1 - beta1 ** (index + 1))) / (np.sqrt(second / (1 - beta2 ** (index + 1))) + 1e-8)
            z = np.clip(z - step, -self.bound, self.bound).astype(np.float32)
        bar.close()
        images = self.generate(tf.constant(best_z), y)[0].numpy()
        mse = np.mean(np.square(images / 255.0 - np.asarray(targets) / 255.0), axis=(1, 2, 3))
        return best_z, images, mse

    def _features(self, images01, classes):
        """The perceptual features (a list of N-row tensors) of images in [0, 1], or None."""
        return None if self.features is None else self.features(images01 * 255.0, classes)

    def _loss_and_gradient(self, z, y, classes, target, target_features):
        """(uint8 images, loss of each row, d(sum of losses)/dz) at z (traced once per
        kind of batch: see __init__)."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(z)
            images, pixels = self.generate(z, y)
            fake = (pixels + 1.0) / 2.0
            loss = tf.reduce_mean(tf.square(fake - target), axis=[1, 2, 3])
            if target_features is not None:
                loss += self.settings.perceptual_weight * tf.add_n([
                    _row_mean(tf.square(fake_f - real_f)) / (_row_mean(tf.square(real_f)) + 1e-6)
                    for fake_f, real_f in zip(self._features(fake, classes), target_features)]) / len(target_features)
            total = tf.reduce_sum(loss)
        return images, loss, tape.gradient(total, z)


def _row_mean(tensor):
    """The mean over all axes but the first."""
    import tensorflow as tf

    return tf.reduce_mean(tf.reshape(tensor, [tf.shape(tensor)[0], -1]), axis=1)


class JudgeFeatures:
    """The judge classifier's penultimate features as the perceptual term: called with
    images float N,H,W,C 0..255 and class ids -> [features N,F]."""

    def __init__(self, judge, facts):
        if list(judge.input_shape) != list(facts.input_shape):
            raise DataError(f"judge expects images {judge.input_shape}, the model makes {list(facts.input_shape)}")
        self.judge = judge

    def __call__(self, images, classes):
        return [self.judge.feature_tensor(images)]


class DiscriminatorFeatures:
    """The GAN job's own discriminator as the perceptual term: called with images float
    N,H,W,C 0..255 and int64 class ids -> its 4-D activations (a list).

    Found generically: the job's model file builds its val tower (batch norm on its
    moving averages) on an image placeholder; the activations kept are the 4-D outputs
    of nonlinearities (else of convolutions) under the discriminator's variable scope
    (the model's `d_scope`, else 'discriminator') that depend on the image and on no
    random op (D applied to the real image, not to G's samples). Frozen with the job's
    checkpoint, they run as a differentiable TF2 function."""

    def __init__(self, job_dir, checkpoint="last"):
        import tensorflow as tf

        graph_def, inputs, outputs = self._freeze(job_dir, checkpoint)
        self.names = outputs
        specs = [tf.TensorSpec([None] + list(self._facts.input_shape), tf.float32), tf.TensorSpec([None], tf.int64)]

        def features(images, classes):
            feeds = {inputs[0]: images}
            if inputs[1] is not None:
                feeds[inputs[1]] = classes
            return tf.compat.v1.import_graph_def(graph_def, input_map=feeds, return_elements=outputs,
                                                 name="discriminator_features")

        self._function = tf.compat.v1.wrap_function(features, specs)

    def __call__(self, images, classes):
        return self._function(images, classes)

    def _freeze(self, job_dir, checkpoint):
        """(GraphDef, (image input name, class input name or None), feature tensor names)."""
        import tensorflow.compat.v1 as tf

        from .. import jobdir
        from .graph import build_tower, reuse_scope
        from .model_files import load_model_class

        config = jobdir.read_config(job_dir)
        self._facts = facts = jobdir.model_facts_from_config(job_dir, config)
        prefix = jobdir.job_checkpoint(job_dir, checkpoint)
        graph = tf.Graph()
        with graph.as_default():
            images = tf.placeholder(tf.float32, [None] + list(facts.input_shape), name="images")
            # only conditional models read the labels (the class ids D is given)
            classes = tf.placeholder(tf.int64, [None], name="classes") if facts.conditional else None
            with reuse_scope():
                model = build_tower(load_model_class(facts.network), facts, images, classes, "val", ["loss"],
                                    digits=bool(config.get("digits_semantics")))
            found = _discriminator_activations(graph, images.op, getattr(model, "d_scope", None) or "discriminator")
            if not found:
                raise ModelDefinitionError(f"{facts.network}: no 4-D activations of the discriminator applied to "
                                           f"the image were found (looked under its variable scope "
                                           f"{getattr(model, 'd_scope', None) or 'discriminator'!r})")
            with tf.Session(graph=graph) as session:
                tf.train.Saver(var_list=tf.global_variables()).restore(session, prefix)
                graph_def = tf.graph_util.convert_variables_to_constants(
                    session, graph.as_graph_def(), sorted({tensor.op.name for tensor in found}))
            uses_classes = classes is not None and classes.op.name in {
                op.name for tensor in found for op in _upstream(tensor.op)}
        return graph_def, (images.name, classes.name if uses_classes else None), [tensor.name for tensor in found]


def _downstream(ops):
    """Names of the ops reachable from `ops` (themselves included)."""
    seen, stack = set(), list(ops)
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen.add(op.name)
            stack += [consumer for output in op.outputs for consumer in output.consumers()]
    return seen


def _upstream(op):
    """The ops `op` depends on (itself included)."""
    seen, stack, found = set(), [op], []
    while stack:
        source = stack.pop()
        if source.name not in seen:
            seen.add(source.name)
            found.append(source)
            stack += [tensor.op for tensor in source.inputs]
    return found


def _discriminator_activations(graph, image_op, d_scope):
    """The 4-D float outputs of nonlinearities (else convolutions) in ops under `d_scope`
    (its last name, any '_N' copy of it) fed by `image_op` and by no random op."""
    import re

    from .directions import ACTIVATION_OPS, LAYER_OPS

    scope = re.compile(rf"(^|/){re.escape(d_scope.split('/')[-1])}(_\d+)?/")
    random = [op for op in graph.get_operations() if "Random" in op.type or op.type in ("TruncatedNormal",
                                                                                          "Multinomial")]
    real = _downstream([image_op]) - _downstream(random)
    for types in (ACTIVATION_OPS, LAYER_OPS):
        found = [op.outputs[0] for op in graph.get_operations()
                 if op.name in real and op.type in types and scope.search(op.name)
                 and op.outputs[0].shape.ndims == 4 and op.outputs[0].dtype.is_floating]
        if found:
            return found
    return []


def encoder_start(encoder_job, targets, labels=None, checkpoint="last"):
    """(z float32 N x z_dim, classes int64 N or None, reconstructions uint8) of an encoder
    job for uint8 N,H,W,C targets (labels: the class given to its generator, or None)."""
    from .inference import load_generator

    with load_generator(encoder_job, checkpoint) as encoder:
        if encoder.facts.inference_input != "image" or "z" not in encoder.outputs:
            raise DataError(f"{encoder_job}: not an encoder job (expected an image input and a 'z' output)")
        given = None if labels is None or encoder.labels is None else np.asarray(labels, np.int64)
        outputs = encoder.run(targets, labels=given)
    classes = outputs.get("classes")
    return (outputs["z"].reshape(len(targets), -1).astype(np.float32),
            None if classes is None else classes.astype(np.int64), outputs.get(encoder.image_key))


def load_targets(paths, shape, resize=True):
    """uint8 N,H,W,C images from image files and folders of images (sorted), made to
    `shape` (H, W, C): another size or channel count is converted (one warning line
    each) unless `resize` is False (DataError naming the expected shape)."""
    from PIL import Image

    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += [Path(name) for name in list_image_files(path)]
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such image file or folder")
    if not files:
        raise DataError(f"{', '.join(map(str, paths))}: no images found")
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                images.append(_fit_image(image, path, shape, resize))
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error})") from None
    return np.stack(images), [str(path) for path in files]


def _fit_image(image, path, shape, resize):
    """uint8 H,W,C of a PIL image made to `shape`, warning about each change (DataError
    naming the expected shape instead when `resize` is False)."""
    from PIL import Image

    height, width, channels = shape
    mode = "L" if channels == 1 else "RGB"
    found = f"{image.size[1]}x{image.size[0]}x{len(image.getbands())}"
    expected = f"{height}x{width}x{channels}"
    changed = image.size != (width, height) or image.mode not in (mode, "1" if channels == 1 else mode)
    if changed and not resize:
        raise DataError(f"{path}: image is {found}, the model expects {expected} (drop --no-resize to convert it)")
    if changed:
        print(f"digits-gan: warning: {path}: {found} ({image.mode}) converted to {expected} "
              f"(the model's image shape)", file=sys.stderr)
    image = image.convert(mode)
    if image.size != (width, height):
        image = image.resize((width, height), Image.LANCZOS)
    return np.asarray(image, np.uint8).reshape(height, width, channels)


def pairs_grid(targets, images, cols=8):
    """Targets above their reconstructions: row pairs of at most `cols` images."""
    rows = []
    for start in range(0, len(targets), cols):
        rows += [targets[start:start + cols], images[start:start + cols]]
    width = min(cols, len(targets))
    cells = [np.concatenate([row, np.zeros((width - len(row),) + row.shape[1:], np.uint8)]) for row in rows]
    return make_grid(np.concatenate(cells), rows=len(cells), cols=width)


def perceptual_features(job_dir, settings, facts, dataset=None, checkpoint="last"):
    """The features settings.perceptual names for job_dir (None when the weight is 0).
    dataset: the judge's (default the job's)."""
    from .. import jobdir

    if not settings.perceptual_weight:
        return None
    if settings.perceptual == "discriminator":
        return DiscriminatorFeatures(job_dir, checkpoint)
    from ..evaluation import load_or_train_classifier

    judge = load_or_train_classifier(dataset or jobdir.read_config(job_dir).get("dataset"), progress=False)
    return JudgeFeatures(judge, facts)


def project_command(job_dir, images, out, encoder_job=None, label=None, settings=ProjectorSettings(),
                    checkpoint="last", encoder_checkpoint="last", dataset=None, resize=True, overwrite=False):
    """``digits-gan latent project``: fit each image (files / folders) -> (Projection,
    written paths). dataset: the judge's dataset (default the job's) when the
    perceptual term is on."""
    from .. import jobdir
    from .export import freeze

    settings.check()
    out = Path(out)
    check_out_folder(out, overwrite, ("projection.json", "z.npz"), "projection")
    facts = jobdir.read_model_facts(job_dir)
    facts.require_z_dim()
    targets, names = load_targets(images, facts.input_shape, resize)
    labels = None
    if label is not None:
        facts.require_conditional("project --label")
        labels = np.full(len(targets), int(label), np.int64)
        facts.one_hots(labels)
    z = None
    if encoder_job:
        z, classes, _ = encoder_start(encoder_job, targets, labels, encoder_checkpoint)
        labels = labels if labels is not None or not facts.conditional else classes
    features = perceptual_features(job_dir, settings, facts, dataset, checkpoint)
    projection = Projector(freeze(job_dir, checkpoint), settings, features, progress=True).project(targets, z, labels)
    info = dict(job=str(job_dir), encoder=encoder_job and str(encoder_job), images=names,
                settings=asdict(settings), mse=projection.mse.tolist(), mean_mse=float(projection.mse.mean()),
                seconds_per_image=projection.seconds / len(targets),
                start="encoder" if encoder_job else "z = 0",
                labels=None if projection.labels is None else projection.labels.tolist())
    return projection, _write_projection(out, targets, projection, names, info)


def _write_projection(out, targets, projection, names, info):
    arrays = dict(z=projection.vectors.astype(np.float32), latent=projection.z.astype(np.float32),
                  mse=projection.mse, names=np.asarray(names, dtype=str))
    if projection.labels is not None:
        arrays["labels"] = projection.labels
    with staged_folder(out, "projection") as staged:
        save_arrays(staged / "z.npz", arrays)
        save_png(pairs_grid(targets, projection.reconstructions), staged / "reconstruction.png")
        frames = projection.frames + [projection.reconstructions]
        save_gif([pairs_grid(targets, frame) for frame in frames], staged / "optimisation.gif", duration_ms=150)
        write_json_atomic(staged / "projection.json", info)
    return [str(out / name) for name in ("z.npz", "reconstruction.png", "optimisation.gif", "projection.json")]


def read_projection(folder):
    """(z.npz arrays, projection.json) of a projection folder."""
    from ..latent import read_arrays

    folder = Path(folder)
    try:
        info = json.loads((folder / "projection.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder}/projection.json: not readable ({error})") from None
    return read_arrays(folder / "z.npz", "projection z file"), info
