"""Running a trained job's inference op: ``load_generator``, ``generate_classes`` and
the ``digits-gan infer`` command.

Outputs of ``infer_command`` (``--out``): a path ending in .npz or .h5/.hdf5 gets the
arrays in that file plus the image grid next to it (same name, .png); any other path is
a directory receiving ``result.npz``, ``result.json`` and ``grid.png``. Without --out:
``JOBDIR/inference/<dataset dir name | z-file stem | 'classes'>/``. Arrays: ``images``
(uint8 N,H,W,C), ``inputs`` (float32 N x D vectors, or the input images), ``labels``
(int64, with --classes) and every other output of a dict-valued inference op. The
layout, writer and reader are ``jobdir.result_files`` / ``write_result`` /
``InferenceResult``.

A job trained with an EMA of its generator's weights (``--ema-decay``) infers with the
EMA weights; ``infer_command`` says so on stderr and result.json's ``weights`` is
``'ema'`` (``'raw'`` otherwise).

Image-input models (encoders, ``inference_input = 'image'``): the inference tower's ``y``
is an int64 (N,) placeholder of class ids, -1 meaning "not given" (the model infers it);
``infer_command`` feeds an inference dataset's scalar labels there. Their results hold
``z`` beside ``images`` (the generator's reconstruction of each z): that pair is what
makes a result an encoder's.
"""
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..dataset_io import DatasetReader
from ..files import usable_cores
from ..errors import DataError, TrainingError
from ..imaging import make_grid, to_uint8
from ..latent import read_z_file
from .. import jobdir
from . import ema
from .graph import build_tower, inference_outputs, reuse_scope
from .model_files import load_model_class, model_run_errors, op_error_detail, run_error


class Generator:
    """A job's inference tower restored from a checkpoint ('last' or None, 'best', or a
    checkpoint prefix), in its own graph and session: the one place a job's generator is
    restored. With `use_ema` (default) each variable comes from its EMA shadow when the
    checkpoint has one (see ``ema``).

    Attributes: z_dim, num_classes, conditional, input_shape [H,W,C], facts, checkpoint,
    weights ('ema' or 'raw'), ema_decay (of the job, or None).
    Use as a context manager (or call close()).
    """

    def __init__(self, job_dir, checkpoint="last", use_ema=True):
        import tensorflow.compat.v1 as tf

        config = jobdir.read_config(job_dir)
        self.ema_decay = config.get("ema_decay")
        self.facts = facts = jobdir.model_facts_from_config(job_dir, config)
        self.z_dim, self.num_classes = facts.z_dim, facts.num_classes
        self.conditional, self.input_shape = facts.conditional, list(facts.input_shape)
        self.checkpoint = jobdir.job_checkpoint(job_dir, checkpoint)
        model_class = load_model_class(facts.network)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.labels = None
            if facts.inference_input == "z":
                self.input = tf.placeholder(tf.float32, [None, 1, 1, facts.vector_width], name="z")
            else:
                self.input = tf.placeholder(tf.float32, [None] + self.input_shape, name="images")
                if facts.conditional:
                    not_given = tf.fill(tf.shape(self.input)[:1], tf.constant(-1, tf.int64))
                    self.labels = tf.placeholder_with_default(not_given, [None], name="labels")
            digits = bool(config.get("digits_semantics"))  # towers built as trained
            with reuse_scope():
                output = build_tower(model_class, facts, self.input, self.labels, "inf", ["inference"],
                                     digits=digits).inference
            self.outputs = inference_outputs(output, facts)  # DIGITS' flat [z | pixels] split here
            self.image_key = "images" if "images" in self.outputs else next(
                (key for key, tensor in self.outputs.items() if tensor.shape.ndims == 4), None)
            variables = tf.global_variables()
        threads = usable_cores()
        session_config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
        self.session = tf.Session(graph=self.graph, config=session_config)
        try:
            with self.graph.as_default():
                names, self.weights = ema.restore_map(variables, ema.checkpoint_names(self.checkpoint), use_ema)
                tf.train.Saver(var_list=names).restore(self.session, self.checkpoint)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
            self.close()
            raise TrainingError(f"{self.checkpoint}: does not match the model's variables: {op_error_detail(error)}") from None
        except tf.errors.OpError as error:  # DataLossError: a shard corrupted in place (same size, bad CRC)
            self.close()
            raise TrainingError(f"{self.checkpoint}: checkpoint cannot be read ({type(error).__name__}: "
                                f"{op_error_detail(error)})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.session.close()

    def run(self, inputs, batch_size=256, labels=None):
        """All inference outputs for `inputs` (float32 N x D vectors, or N,1,1,D; images
        N,H,W,C for image-input models) -> {name: numpy array of N rows}.

        labels: for conditional image-input models, int (N,) class ids given to the model
        (-1: let it infer that row's class); None infers every class."""
        inputs = np.asarray(inputs, np.float32)
        if batch_size < 1:
            raise DataError(f"batch size {batch_size}: expected an integer >= 1")
        if not len(inputs):
            raise DataError("no inputs to run through the model (0 vectors or images)")
        if labels is not None:
            labels = self._check_labels(labels, len(inputs))
        if self.facts.inference_input == "z":
            inputs = inputs.reshape(len(inputs), -1)
            if inputs.shape[1] != self.facts.vector_width:
                raise DataError(f"inference vectors have width {inputs.shape[1]}, the model expects "
                                f"{self.facts.vector_width} (z_dim {self.z_dim} + y_dim {self.facts.y_dim})")
            inputs = inputs.reshape(len(inputs), 1, 1, -1)
        elif list(inputs.shape[1:]) != self.input_shape:
            raise DataError(f"input images have shape {list(inputs.shape[1:])}, the model expects {self.input_shape}")
        chunks = []
        for start in range(0, len(inputs), batch_size):
            feed = {self.input: inputs[start:start + batch_size]}
            if labels is not None:
                feed[self.labels] = labels[start:start + batch_size]
            try:
                chunks.append(self.session.run(self.outputs, feed))
            except model_run_errors() as error:
                raise run_error(error, self.facts.network, f"running inference on rows {start}..",
                                self.graph) from None
        return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in self.outputs}

    def _check_labels(self, labels, count):
        """int64 (count,) class ids in -1..num_classes-1; DataError otherwise."""
        if self.labels is None:
            raise DataError(f"{self.facts.network}: the model takes no class labels at inference "
                            f"(only conditional image-input models do)")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels: expected {count} integer class ids, got {labels.dtype} {labels.shape}")
        bad = labels[(labels < -1) | (labels >= self.num_classes)]
        if bad.size:
            raise DataError(f"labels: class {int(bad[0])} is outside 0..{self.num_classes - 1} (-1: infer)")
        return labels.astype(np.int64)

    def generate(self, vectors, batch_size=256):
        """float32 N x (z_dim + y_dim) vectors -> uint8 N,H,W,C images."""
        if self.image_key is None:
            raise TrainingError(f"{self.facts.network}: the inference op returns no N,H,W,C image output")
        return to_uint8(self.run(vectors, batch_size)[self.image_key])

    def generate_classes(self, classes, per_class, seed):
        """`per_class` images of each class id in `classes`, z drawn from `seed` ->
        (images uint8 N,H,W,C, labels int64 N), class-major order."""
        vectors, labels = class_vectors(self.facts, classes, per_class, seed)
        return self.generate(vectors), labels

    def describe_weights(self):
        """'EMA weights (decay D)' or 'raw weights', for the line a command prints."""
        return f"EMA weights (decay {self.ema_decay:g})" if self.weights == "ema" else "raw weights"


def load_generator(job_dir, checkpoint="last", use_ema=True):
    """The Generator of a training job (checkpoint 'last', 'best' or a prefix; the EMA
    weights when the checkpoint has them, unless use_ema is False)."""
    return Generator(job_dir, checkpoint, use_ema)


def class_vectors(facts, classes, per_class, seed):
    """(float32 N x D vectors, int64 labels N): `per_class` z for each class in order,
    drawn from the model's z distribution."""
    if not facts.conditional:
        raise TrainingError(f"{facts.network}: the model is not conditional; it cannot generate chosen classes")
    classes = [int(c) for c in classes]
    if not classes:
        raise DataError(f"--classes is empty, expected class ids in 0..{facts.y_dim - 1}")
    bad = [c for c in classes if not 0 <= c < facts.y_dim]
    if bad:
        raise DataError(f"--classes {bad}: expected class ids in 0..{facts.y_dim - 1}")
    if per_class < 1:
        raise DataError(f"--per-class {per_class}: expected an integer >= 1")
    labels = np.repeat(np.asarray(classes, np.int64), per_class)
    z = facts.sample(len(labels), np.random.default_rng(seed))
    return facts.with_labels(z, labels), labels


def generate_classes(job_dir, classes, per_class, seed, checkpoint="last"):
    """Generate `per_class` images of each class id in `classes` with z drawn from
    `seed` -> (images uint8 N,H,W,C, labels int64 N), class-major order."""
    with load_generator(job_dir, checkpoint) as generator:
        return generator.generate_classes(classes, per_class, seed)


def infer_command(job_dir, dataset=None, z_file=None, classes=None, per_class=10, seed=0, checkpoint="last",
                  out=None, batch_size=256):
    """``digits-gan infer``: exactly one of dataset / z_file / classes. Returns the
    written paths (see the module docstring for the layout). Inputs are read and
    checked before the model is loaded."""
    if batch_size < 1:
        raise DataError(f"--batch-size {batch_size}: expected an integer >= 1")
    facts = jobdir.read_model_facts(job_dir)
    inputs, labels, name, grid_shape, info = _inference_inputs(facts, job_dir, dataset, z_file, classes,
                                                               per_class, seed)
    info.update(job=str(job_dir), created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with load_generator(job_dir, checkpoint) as generator:
        info.update(checkpoint=generator.checkpoint, weights=generator.weights)
        if generator.weights == "ema":
            print(f"digits-gan: {Path(generator.checkpoint).name}: the generator's {generator.describe_weights()}",
                  file=sys.stderr)
        outputs = generator.run(inputs, batch_size, labels=labels if generator.labels is not None else None)
        image_key = generator.image_key
    arrays = {"inputs": np.asarray(inputs, np.float32)}
    grid = None
    if image_key is not None:
        arrays["images"] = images = to_uint8(outputs.pop(image_key))
        rows, cols = grid_shape if grid_shape and grid_shape[0] * grid_shape[1] >= len(images) else (None, None)
        grid = make_grid(images, rows=rows, cols=cols) if len(images) else None
    arrays.update(outputs)
    if labels is not None:
        arrays["labels"] = labels
    return jobdir.write_result(out or jobdir.JobPaths(job_dir).result(name), arrays, info, grid)


def _check_width(facts, vectors, what):
    """Vectors of another width than the model takes: DataError naming their source
    before the model is loaded."""
    width = facts.vector_width
    if facts.inference_input == "z" and width and vectors.shape[1] != width:
        raise DataError(f"{what} have width {vectors.shape[1]}, the model expects {width} "
                        f"(z_dim {facts.z_dim} + y_dim {facts.y_dim})")


def _inference_inputs(facts, job_dir, dataset, z_file, classes, per_class, seed):
    """(inputs, labels or None, default result name, grid (rows, cols) or None, info)."""
    if facts.inference_input == "image" and dataset is None:
        raise DataError(f"{job_dir}: the model encodes images; give an inference dataset of images "
                        f"(--dataset, e.g. from `digits-gan latent encode-list`), not --z or --classes")
    if classes is not None:
        inputs, labels = class_vectors(facts, classes, per_class, seed)
        info = dict(task="classes", classes=list(classes), per_class=per_class, seed=seed)
        return inputs, labels, "classes", (len(classes), per_class), info
    if z_file is not None:
        vectors = read_z_file(z_file)
        _check_width(facts, vectors, f"{z_file}: its z vectors")
        return vectors, None, Path(z_file).stem, None, dict(task="z_file", z_file=str(z_file))
    reader = DatasetReader(dataset)
    stage = "test_db" if "test_db" in reader.stages else reader.stages[0]
    inputs, dataset_labels = reader.read_all(stage)
    if not len(inputs):
        raise DataError(f"{dataset}: stage {stage} holds no entries to run through the model")
    labels = None
    if facts.inference_input == "image" and facts.conditional and dataset_labels is not None \
            and dataset_labels.ndim == 1:
        labels = dataset_labels
    if facts.inference_input == "z":  # N x D, whatever layout the dataset's items have
        inputs = np.asarray(inputs, np.float32).reshape(len(inputs), -1)
        _check_width(facts, inputs, f"{dataset}: its {stage} entries")
    latent = reader.meta.get("latent")
    latent = latent if isinstance(latent, dict) else {}
    grid = latent.get("grid")
    if grid is not None and not (isinstance(grid, list) and len(grid) == 2
                                 and all(isinstance(n, int) and n > 0 for n in grid)):
        raise DataError(f"{dataset}/dataset.json: latent.grid: expected [rows, cols] of positive integers, got {grid!r}")
    grid_shape = tuple(grid) if grid else None
    info = dict(task=latent.get("task"), grid=grid, dataset=str(dataset), latent=latent)
    return inputs, labels, Path(dataset).resolve().name, grid_shape, info
