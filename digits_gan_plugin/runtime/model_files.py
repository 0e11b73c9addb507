"""Finding, reading and executing model-definition files (``network-*.py``).

A model file is plain Python executed with these names defined: ``tf``
(``tensorflow.compat.v1``, graph mode, plus ``tf.contrib.layers.batch_norm`` and
``tf.contrib.slim``: see ``tf1_compat``), ``slim`` (tf_slim with a working
``batch_norm``), ``Tower``, ``model_property``, ``digits`` (stage names and loss
helpers), ``np`` and ``math``; its own ``import tensorflow as tf`` gets the same ``tf``.
It must define ``class UserModel(Tower)``. Listing and describing files reads them as
text, so it does not import TensorFlow; executing them does.
"""
import ast
import contextlib
import math
import re
import traceback
from pathlib import Path

import numpy as np

from ..errors import ModelDefinitionError, TrainingError
from . import digits_helpers
from .tower import Tower, model_property


def shipped_definitions_dir():
    """The folder of the model definitions shipped with the package."""
    import model_definitions

    return Path(model_definitions.__file__).resolve().parent


def list_model_definitions():
    """Return {name: path} of the shipped definitions, e.g. {'network-mnist': Path(...)}."""
    return {path.stem: path for path in sorted(shipped_definitions_dir().glob("network-*.py"))}


def resolve_network(name_or_path):
    """Return the Path of a model file given its path or a shipped name
    ('network-mnist', 'mnist' or 'network-mnist.py')."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    shipped = list_model_definitions()
    for candidate in (path.stem, "network-" + path.stem):
        if candidate in shipped:
            return shipped[candidate]
    names = ", ".join(shipped) or "none"
    raise ModelDefinitionError(f"{name_or_path}: no such model file or shipped definition (shipped: {names})")


def describe(path):
    """First line of the model file's module docstring ('' when it has none)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        return f"(syntax error at line {error.lineno})"
    except (OSError, UnicodeDecodeError):
        return "(not a readable UTF-8 file)"
    docstring = ast.get_docstring(tree) or ""
    return docstring.strip().splitlines()[0] if docstring.strip() else ""


def digits_module():
    """The ``digits`` helper module for model files: DIGITS' own when installed."""
    try:  # pragma: no cover - exercised only inside a DIGITS install
        from digits.tools.tf import utils

        return utils
    except ImportError:
        return digits_helpers


def _location(path, error):
    """'FILE:LINE' of the innermost traceback frame inside the model file, else FILE."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


MAX_DETAIL = 600  # characters of an exception's message quoted in a one-line error


@contextlib.contextmanager
def model_code(path, what, data=None):
    """Turn any exception raised while running model-file code into a
    ModelDefinitionError naming FILE:LINE and `what` was being done; data: what the
    model was given (tower_data), since a file written for other image sizes or labels
    fails deep inside TensorFlow with a message about tensor shapes or dtypes."""
    try:
        yield
    except ModelDefinitionError:
        raise
    except Exception as error:
        given = f" on {data}" if data else ""
        detail = one_line(str(error))  # --debug shows the whole traceback
        raise ModelDefinitionError(f"{_location(path, error)}: {type(error).__name__} while {what}{given}: {detail}") \
            from error


def tower_data(x, y, input_shape):
    """'28x28x1 images with class labels' ('1x1x110 vectors', 'attribute labels 1x1x40',
    'no labels'): what a tower's model is given, for model_code's messages."""
    static = x.shape.as_list()[1:] if x.shape.ndims == 4 else None
    dims = static if static and None not in static else list(input_shape)
    images = "x".join(str(n) for n in dims) + (" vectors" if dims[:2] == [1, 1] else " images")
    if y is None:
        labels = "no labels"
    elif y.dtype.is_integer:
        labels = "class labels"
    elif y.shape.ndims:
        labels = "attribute labels " + "x".join(str(n) for n in y.shape.as_list()[1:])
    else:
        labels = "float labels"
    return f"{images} with {labels}"


def _read_source(path):
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelDefinitionError(f"{path}: cannot read model file: {error.strerror}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ModelDefinitionError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                                   f"save the model file as UTF-8") from None


def one_line(text, limit=MAX_DETAIL):
    """`text` on one line, cut to `limit` characters with '...' when longer."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def op_error_detail(error, limit=MAX_DETAIL):
    """The message of a TensorFlow OpError on one line, without what TF 2 wraps
    around it in graph mode ("Graph execution error:", "Detected at node X defined at
    (most recent call last): <the Python stack> Node: 'X'", "[[{{node X}}]]", the
    hint on listing allocated tensors that comes with every ResourceExhaustedError)."""
    message = getattr(error, "message", "") or str(error)
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.strip().startswith("Graph execution error")]
    nodes = [index for index, line in enumerate(lines) if line.startswith("Node: ")]
    if nodes:
        lines = [" ".join(lines[nodes[-1] + 1:])]
    text = re.sub(r"\[\[\{\{node [^}]*\}\}\]\]", "", lines[0] if lines else "")
    return one_line(text.split(" Hint: If you want to see a list of allocated tensors")[0], limit)


def run_error(error, path, what, graph=None):
    """The one-line error for a TensorFlow run-time failure (tf.errors.OpError) while
    `what`: a ModelDefinitionError 'FILE:LINE: ...' when the failing op (named in the
    message, looked up in `graph`) was created by the model file at `path`, else a
    TrainingError."""
    message = getattr(error, "message", "") or str(error)
    detail = op_error_detail(error)
    if type(error).__name__ == "ResourceExhaustedError":  # an OOM: the batch, not the model file, is too big
        detail += "; out of memory: try a smaller --batch-size"
    path = Path(path).resolve()  # as load_model_class compiled it
    line = _model_line(error, message, str(path), graph)
    if line:
        return ModelDefinitionError(f"{path}:{line}: {type(error).__name__} while {what}: {detail}")
    return TrainingError(f"{type(error).__name__} while {what}: {detail}")


def _model_line(error, message, path, graph):
    """Line of the model file that created the failing op, or None."""
    ops = [error.op] if getattr(error, "op", None) is not None else []
    if graph is not None:
        for name in reversed(re.findall(r"\{\{node ([^}]+)\}\}", message)):
            # a node inside a function body (e.g. an assertion's guard) is named alone
            ops += [op for op in graph.get_operations()
                    if op.name == name or op.name.endswith("/" + name) or f"/{name}/" in op.name]
    for op in ops:
        frames = [frame for frame in (op.traceback or []) if frame[0] == path]
        if frames:
            return frames[-1][1]
    return None


def model_run_errors():
    """The TensorFlow errors a model's own ops raise at run time (bad shapes, failed
    assertions, exceptions inside py_func, running out of memory)."""
    import tensorflow.compat.v1 as tf

    return (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.InternalError,
            tf.errors.UnimplementedError, tf.errors.ResourceExhaustedError)


def load_model_class(path):
    """Execute the model file at `path` and return its UserModel class.

    Raises ModelDefinitionError "FILE:LINE: message" on a syntax error or an exception
    at import time, and "FILE: ..." when UserModel is missing or not a Tower subclass.
    """
    from . import tf1_compat

    path = Path(path).resolve()
    source = _read_source(path)
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise ModelDefinitionError(f"{path}:{error.lineno}: syntax error: {error.msg}") from error
    namespace = {
        "__name__": "digits_gan_user_model",
        "__file__": str(path),
        "__builtins__": tf1_compat.model_builtins(),
        "tf": tf1_compat.tensorflow_v1(),
        "slim": tf1_compat.slim_module(),
        "Tower": Tower,
        "model_property": model_property,
        "digits": digits_module(),
        "np": np,
        "math": math,
    }
    with model_code(path, "executing the model file"):
        exec(code, namespace)
    model_class = namespace.get("UserModel")
    if model_class is None:
        raise ModelDefinitionError(f"{path}: defines no UserModel class (expected 'class UserModel(Tower)')")
    if not (isinstance(model_class, type) and issubclass(model_class, Tower)):
        raise ModelDefinitionError(f"{path}: UserModel must be a class derived from Tower")
    return model_class
