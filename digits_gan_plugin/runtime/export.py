"""Taking a trained generator out of the training system: ``digits-gan export JOB``.

OUT (default ``JOBDIR/export/``) receives, all or nothing (staged beside it, renamed):

    saved_model/      TensorFlow SavedModel (tag 'serve'), signatures
                      'generate': z float32 [N, z_dim] (+ y float32 [N, classes], one-hot,
                      for conditional models) -> images uint8 [N, H, W, C] (0..255) and
                      pixels float32 [N, H, W, C] in [-1, 1];
                      'encode' (with an encoder job): images float32 [N, H, W, C] 0..255
                      -> z float32 [N, z_dim], classes int64 [N] (conditional), images
                      uint8 (the reconstruction G(z, class)).
    model.json        z size and distribution, classes and names, image shape, output
                      ranges, source jobs and checkpoints, EMA flag and decay, sizes, files.
    weights.npz       the generator's own variables {name: array} (no D, no optimizer
                      slots): its size is stated next to the checkpoint's.
    generator.tflite  --format tflite: the 'generate' graph for a fixed batch (--batch).
    generator.onnx    --format onnx: the 'generate' graph (dynamic batch), ONNX opset
                      --opset (>= 15), converted by tf2onnx.

Every format runs the same frozen graph: the job's inference tower as ``load_generator``
builds it, its variables turned into constants (the EMA of the generator's weights
when the job kept one: ``"ema": true``). The uint8 output is the model's own
(so a SavedModel gives exactly ``digits-gan infer``'s pixels); the float output is the
model's pixel value before rounding, scaled from 0..255 to [-1, 1].
"""
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import jobdir
from ..errors import DataError, TrainingError
from ..files import check_out_folder, staged_folder, write_json_atomic
from ..latent import save_arrays
from .inference import load_generator
from .model_files import op_error_detail

FORMATS = ("savedmodel", "tflite", "onnx")
MAX_TFLITE_BATCH = 4096  # the converter crashes (not fails) on absurd fixed batches
MIN_OPSET = 15
DEFAULT_OPSET = 17
SAVED_MODEL = "saved_model"
MODEL_JSON = "model.json"
WEIGHTS = "weights.npz"
TFLITE = "generator.tflite"
ONNX = "generator.onnx"
# What each optional format needs, and the pip command that brings it.
FORMAT_EXTRAS = {"onnx": (("tf2onnx", "onnxruntime"), 'pip install "digits-gan[export]" (tf2onnx, onnxruntime)')}
# A model's quantisation to uint8: the ops between its float 0..255 pixels and its output.
_QUANTISE_OPS = ("Cast", "Round", "Rint", "ClipByValue", "Minimum", "Maximum", "Identity")


@dataclass(frozen=True)
class FrozenTower:
    """A job's inference tower with its variables as constants.

    graph_def: tf.GraphDef. input: name of the input tensor ('z:0', N,1,1,D vectors, or
    'images:0'). labels: the class-id input of a conditional encoder, or None. outputs:
    {output name: tensor name}. image: the uint8-able image output's name or None.
    float_image: the float 0..255 pixels before the model rounds them (the image
    output itself for float models). weights: {variable name: array}. facts:
    latent.ModelFacts. checkpoint: the prefix restored. ema: whether
    `weights` are the job's EMA of its generator's weights (see ``ema``).
    """

    graph_def: object
    input: str
    labels: Optional[str]
    outputs: dict
    image: Optional[str]
    float_image: Optional[str]
    weights: dict
    facts: object
    checkpoint: str
    ema: bool = False

    @property
    def weight_bytes(self):
        return int(sum(array.nbytes for array in self.weights.values()))

    @property
    def parameter_count(self):
        return int(sum(array.size for array in self.weights.values()))


def freeze(job_dir, checkpoint="last"):
    """The FrozenTower of a job's inference op (checkpoint 'last', 'best' or a prefix)."""
    import tensorflow.compat.v1 as tf

    with load_generator(job_dir, checkpoint) as generator:
        with generator.graph.as_default():
            variables = tf.global_variables()
            weights = generator.session.run({variable.op.name: variable for variable in variables})
            image = generator.outputs.get(generator.image_key) if generator.image_key else None
            float_image = _float_pixels(image) if image is not None else None
            fetches = list(generator.outputs.values()) + ([float_image] if float_image is not None else [])
            graph_def = tf.graph_util.convert_variables_to_constants(
                generator.session, generator.graph.as_graph_def(), sorted({t.op.name for t in fetches}))
        return FrozenTower(
            graph_def=graph_def, input=generator.input.name,
            labels=generator.labels.name if generator.labels is not None else None,
            outputs={key: tensor.name for key, tensor in generator.outputs.items()},
            image=image.name if image is not None else None,
            float_image=float_image.name if float_image is not None else None,
            weights=weights, facts=generator.facts, checkpoint=generator.checkpoint,
            ema=generator.weights == "ema")


def _float_pixels(image):
    """The float tensor a model's uint8 image output is rounded from (walking back through
    cast / round / clip ops), or `image` itself when it is already float."""
    tensor = image
    while tensor.dtype.is_integer and tensor.op.type in _QUANTISE_OPS and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    while tensor.op.type in ("Round", "Rint", "ClipByValue") and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    if tensor.dtype.is_floating:
        return tensor
    import tensorflow.compat.v1 as tf

    return tf.cast(image, tf.float32)  # an integer model end to end: its pixels are exact


def import_generate(tower, z, y=None, scope="generate"):
    """Import `tower` (a z-input FrozenTower) into the default graph fed by `z` [N, z_dim]
    (and one-hot `y` [N, classes]) -> (images uint8 N,H,W,C, pixels float32 in [-1, 1])."""
    import tensorflow.compat.v1 as tf

    facts = tower.facts
    vectors = tf.concat([z, y], axis=1) if facts.conditional else z
    vectors = tf.reshape(vectors, [-1, 1, 1, facts.vector_width])
    image, float_image = tf.import_graph_def(tower.graph_def, input_map={tower.input: vectors},
                                             return_elements=[tower.image, tower.float_image], name=scope)
    if image.dtype != tf.uint8:  # as imaging.to_uint8: clip, round half to even
        image = tf.cast(tf.round(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0)), tf.uint8)
    pixels = tf.clip_by_value(tf.cast(float_image, tf.float32) / 127.5 - 1.0, -1.0, 1.0)
    return image, pixels


def import_encode(tower, images, scope="encode"):
    """Import an encoder FrozenTower fed by `images` float32 [N,H,W,C] 0..255 -> {name:
    tensor} of its outputs (z, classes, images)."""
    import tensorflow.compat.v1 as tf

    names = sorted(tower.outputs)
    tensors = tf.import_graph_def(tower.graph_def, input_map={tower.input: images},
                                  return_elements=[tower.outputs[name] for name in names], name=scope)
    return dict(zip(names, tensors))


def generate_placeholders(facts, batch=None):
    """(z, y or None) placeholders named 'z' and 'y' for `facts` (batch None: any N)."""
    import tensorflow.compat.v1 as tf

    z = tf.placeholder(tf.float32, [batch, facts.require_z_dim()], name="z")
    y = tf.placeholder(tf.float32, [batch, facts.num_classes], name="y") if facts.conditional else None
    return z, y


def _generate_graph(generator, batch=None):
    """A tf.Graph with placeholders z (, y) and outputs 'images:0', 'pixels:0'."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        z, y = generate_placeholders(generator.facts, batch)
        images, pixels = import_generate(generator, z, y)
        tf.identity(images, name="images")
        tf.identity(pixels, name="pixels")
    return graph


def _write_saved_model(folder, generator, encoder=None):
    import tensorflow.compat.v1 as tf

    graph = _generate_graph(generator)
    with graph.as_default():
        signature = tf.saved_model.signature_def_utils.predict_signature_def
        inputs = {"z": graph.get_tensor_by_name("z:0")}
        if generator.facts.conditional:
            inputs["y"] = graph.get_tensor_by_name("y:0")
        outputs = {"images": graph.get_tensor_by_name("images:0"), "pixels": graph.get_tensor_by_name("pixels:0")}
        signatures = {"generate": signature(inputs, outputs)}
        if encoder is not None:
            images = tf.placeholder(tf.float32, [None] + list(encoder.facts.input_shape), name="encode_images")
            encoded = import_encode(encoder, images)
            signatures["encode"] = signature({"images": images}, encoded)
        with tf.Session(graph=graph) as session:
            builder = tf.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING], signature_def_map=signatures,
                                                 strip_default_attrs=True)
            builder.save()


@contextlib.contextmanager
def _write_errors_as_os_errors():
    """TensorFlow's file writes (the SavedModel) fail with an OpError, not OSError
    (a full disk is a ResourceExhaustedError): as OSError, staged_folder makes it one line."""
    import tensorflow.compat.v1 as tf

    try:
        yield
    except tf.errors.OpError as error:
        raise OSError(op_error_detail(error)) from None


def _write_tflite(path, generator, batch):
    import tensorflow.compat.v1 as tf

    graph = _generate_graph(generator, batch)
    with graph.as_default(), tf.Session(graph=graph) as session:
        inputs = [graph.get_tensor_by_name("z:0")] + ([graph.get_tensor_by_name("y:0")]
                                                      if generator.facts.conditional else [])
        outputs = [graph.get_tensor_by_name("images:0"), graph.get_tensor_by_name("pixels:0")]
        converter = tf.lite.TFLiteConverter.from_session(session, inputs, outputs)
        try:
            Path(path).write_bytes(converter.convert())
        except OSError:  # the disk, not the converter
            raise
        except Exception as error:  # ConverterError and friends: the graph has an op TFLite lacks
            raise TrainingError(f"{generator.facts.network}: TFLite cannot convert this generator "
                                f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None


def _write_onnx(path, generator, opset):
    import tf2onnx

    graph = _generate_graph(generator)
    inputs = ["z:0"] + (["y:0"] if generator.facts.conditional else [])
    try:
        tf2onnx.convert.from_graph_def(graph.as_graph_def(), input_names=inputs,
                                       output_names=["images:0", "pixels:0"], opset=opset, output_path=str(path))
    except OSError:  # the disk, not the converter
        raise
    except Exception as error:  # tf2onnx raises plain exceptions for unsupported ops
        raise TrainingError(f"{generator.facts.network}: tf2onnx cannot convert this generator "
                            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None


def check_formats(formats, opset=DEFAULT_OPSET, batch=1):
    """`formats` as a list of known names, DataError for an unknown one, a missing extra
    (with the pip command), an opset below 15 or a batch below 1."""
    import importlib.util

    formats = list(dict.fromkeys(formats or ["savedmodel"]))
    for name in formats:
        if name not in FORMATS:
            raise DataError(f"--format {name}: expected one of {', '.join(FORMATS)}")
        modules, hint = FORMAT_EXTRAS.get(name, ((), ""))
        missing = [module for module in modules if importlib.util.find_spec(module) is None]
        if missing:
            raise DataError(f"--format {name} needs {', '.join(missing)}, which is not installed: {hint}")
    if "onnx" in formats and opset < MIN_OPSET:
        raise DataError(f"--opset {opset}: expected {MIN_OPSET} or higher")
    if not 1 <= batch <= MAX_TFLITE_BATCH:
        raise DataError(f"--batch {batch}: expected 1 to {MAX_TFLITE_BATCH} (the TFLite model's fixed batch)")
    return formats


def resolve_jobs(job_dir, encoder_job=None):
    """(generator job, encoder job or None): an encoder job given as JOB takes its
    generator from the job its --weights named."""
    facts = jobdir.read_model_facts(job_dir)
    if facts.inference_input == "image":
        if encoder_job:
            raise DataError(f"{job_dir}: is an encoder job; give the GAN job as JOB and this one as --encoder")
        source = jobdir.read_config(job_dir).get("weights")
        if not source or not jobdir.is_job(source):
            raise DataError(f"{job_dir}: an encoder job whose --weights ({source}) is not a GAN job directory; "
                            f"run `digits-gan export GAN_JOB --encoder {job_dir}`")
        return str(source), str(job_dir)
    if encoder_job and jobdir.read_model_facts(encoder_job).inference_input != "image":
        raise DataError(f"--encoder {encoder_job}: not an encoder job (its model's inference input is 'z')")
    return str(job_dir), encoder_job and str(encoder_job)


def model_card(generator, generator_job, encoder=None, encoder_job=None, files=()):
    """The model.json dict (see the module docstring)."""
    facts = generator.facts
    config = jobdir.read_config(generator_job)
    checkpoint_bytes = _checkpoint_bytes(generator.checkpoint)
    card = {
        "format": "digits-gan export 1",
        "signatures": {"generate": {"inputs": {"z": [None, facts.z_dim]}, "outputs": ["images", "pixels"]}},
        "z_dim": facts.z_dim,
        "z_distribution": facts.z_distribution,
        "z_range": [-1.0, 1.0] if facts.z_distribution == "uniform" else None,
        "conditional": facts.conditional,
        "num_classes": facts.num_classes if facts.conditional else None,
        "class_names": list(facts.class_names) if facts.conditional and facts.class_names else None,
        "image_shape": list(facts.input_shape),
        "outputs": {"images": {"dtype": "uint8", "range": [0, 255], "layout": "NHWC"},
                    "pixels": {"dtype": "float32", "range": [-1.0, 1.0], "layout": "NHWC"}},
        "source_job": os.path.abspath(generator_job),
        "network": os.path.basename(facts.network or ""),
        "checkpoint": generator.checkpoint,
        "step": jobdir.checkpoint_step(generator.checkpoint),
        "ema": generator.ema,
        "ema_decay": config.get("ema_decay") if generator.ema else None,
        "generator_weights": {"parameters": generator.parameter_count, "bytes": generator.weight_bytes},
        "checkpoint_bytes": checkpoint_bytes,
        "files": sorted(files),
    }
    if facts.conditional:
        card["signatures"]["generate"]["inputs"]["y"] = [None, facts.num_classes]
    if encoder is not None:
        card["signatures"]["encode"] = {"inputs": {"images": [None] + list(encoder.facts.input_shape)},
                                        "outputs": sorted(encoder.outputs)}
        card["encoder"] = {"source_job": os.path.abspath(encoder_job), "checkpoint": encoder.checkpoint,
                           "network": os.path.basename(encoder.facts.network or ""),
                           "parameters": encoder.parameter_count, "bytes": encoder.weight_bytes}
    return card


def _checkpoint_bytes(prefix):
    prefix = Path(prefix)
    return int(sum(path.stat().st_size for path in prefix.parent.glob(prefix.name + ".*")
                   if not path.name.endswith(".meta")))


def export_command(job_dir, out=None, formats=("savedmodel",), encoder_job=None, checkpoint="last", batch=1,
                   opset=DEFAULT_OPSET, overwrite=False):
    """``digits-gan export``: write the artefacts of `formats` (the SavedModel always)
    into `out` -> the model.json dict. Inputs, extras and `out` are checked first."""
    formats = check_formats(formats, opset, batch)
    generator_job, encoder_job = resolve_jobs(job_dir, encoder_job)
    out = Path(out) if out else jobdir.JobPaths(job_dir).export
    check_out_folder(out, overwrite, (MODEL_JSON, SAVED_MODEL), "export")
    generator = freeze(generator_job, checkpoint)
    if generator.image is None or not generator.facts.z_dim:
        raise DataError(f"{generator_job}: the inference op makes no N,H,W,C image from z; nothing to export")
    encoder = freeze(encoder_job, "last") if encoder_job else None
    with staged_folder(out, "export") as staged, _write_errors_as_os_errors():
        _write_saved_model(staged / SAVED_MODEL, generator, encoder)
        save_arrays(staged / WEIGHTS, generator.weights)
        files = [SAVED_MODEL, WEIGHTS, MODEL_JSON]
        if "tflite" in formats:
            _write_tflite(staged / TFLITE, generator, batch)
            files.append(TFLITE)
        if "onnx" in formats:
            _write_onnx(staged / ONNX, generator, opset)
            files.append(ONNX)
        card = model_card(generator, generator_job, encoder, encoder_job, files)
        card.update(tflite_batch=batch if "tflite" in formats else None, onnx_opset=opset if "onnx" in formats else None)
        write_json_atomic(staged / MODEL_JSON, card)
    card["out"] = str(out)
    return card


def read_model_card(folder):
    """The model.json of an export folder; DataError when it is not one."""
    path = Path(folder) / MODEL_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder}: not a digits-gan export (no {MODEL_JSON})") from None
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not readable JSON ({error})") from None


def describe_sizes(card):
    """One line: the generator's weights next to the checkpoint's size."""
    weights = card["generator_weights"]
    return (f"generator weights: {weights['bytes'] / 1e6:.1f} MB ({weights['parameters']:,} parameters); "
            f"checkpoint: {card['checkpoint_bytes'] / 1e6:.1f} MB (with D and optimizer slots)")


def saved_model_generate(folder):
    """The 'generate' signature of an exported SavedModel, loaded by TensorFlow alone:
    a callable (z, y=None) -> (images uint8, pixels float32) on numpy arrays."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(Path(folder) / SAVED_MODEL)).signatures["generate"]

    def generate(z, y=None):
        feeds = {"z": tf.constant(np.asarray(z, np.float32))}
        if y is not None:
            feeds["y"] = tf.constant(np.asarray(y, np.float32))
        result = signature(**feeds)
        return result["images"].numpy(), result["pixels"].numpy()

    return generate


def generate_function(tower):
    """`tower` (a z-input FrozenTower) as a differentiable TF2 function (z [N, z_dim],
    y [N, classes] or None) -> (images uint8, pixels float32 in [-1, 1]), eager-callable."""
    import tensorflow as tf

    facts = tower.facts
    specs = [tf.TensorSpec([None, facts.require_z_dim()], tf.float32)]
    if facts.conditional:
        specs.append(tf.TensorSpec([None, facts.num_classes], tf.float32))
        wrapped = tf.compat.v1.wrap_function(lambda z, y: import_generate(tower, z, y), specs)
        return wrapped
    wrapped = tf.compat.v1.wrap_function(lambda z: import_generate(tower, z), specs)
    return lambda z, y=None: wrapped(z)
