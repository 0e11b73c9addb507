"""The TensorFlow a model file sees: the v1 API, plus the pieces of TF 1.x that DIGITS'
own model files use and the installed stack lacks.

- ``tensorflow_v1()``: a module object that is ``tensorflow.compat.v1`` plus
  ``contrib`` (``contrib.layers.batch_norm``, ``contrib.slim``), so a file written for
  DIGITS' TF 1.x runs here in graph mode.
- ``model_builtins()``: builtins for executing a model file, whose ``__import__``
  answers ``import tensorflow as tf`` (and ``tensorflow.contrib...``) with that module,
  only inside the model file; every other import is the normal one.
- ``batch_norm``: ``tf.contrib.layers.batch_norm`` / ``slim.batch_norm`` on plain
  tf.compat.v1 variables (tf-slim's needs the tf_keras package, absent under Keras 3):
  beta / gamma / moving_mean / moving_variance in `scope`, batch statistics while
  training with the moving-average updates put in `updates_collections` (default
  UPDATE_OPS; None = applied before the output, as DIGITS' GAN files ask), the moving
  averages otherwise.
"""
import builtins
import types


def _v1():
    import tensorflow.compat.v1 as tf

    return tf


def _moments_with_updates(x, axes, moving_mean, moving_variance, decay, updates_collections):
    tf = _v1()
    mean, variance = tf.nn.moments(x, axes)
    updates = [tf.assign_sub(moving_mean, (1.0 - decay) * (moving_mean - mean)),
               tf.assign_sub(moving_variance, (1.0 - decay) * (moving_variance - variance))]
    if updates_collections is None:
        with tf.control_dependencies(updates):
            return tf.identity(mean), tf.identity(variance)
    for update in updates:
        tf.add_to_collections(updates_collections, update)
    return mean, variance


def batch_norm(inputs, decay=0.999, center=True, scale=False, epsilon=0.001, activation_fn=None,
               param_initializers=None, updates_collections="update_ops", is_training=True, reuse=None,
               variables_collections=None, outputs_collections=None, trainable=True, scope=None,
               data_format="NHWC", **_ignored):
    """TF 1.x's tf.contrib.layers.batch_norm (the arguments DIGITS-era files pass;
    `fused`, `zero_debias_moving_mean` and the like are accepted and ignored)."""
    tf = _v1()
    if updates_collections == "update_ops":
        updates_collections = tf.GraphKeys.UPDATE_OPS
    x = tf.convert_to_tensor(inputs)
    channels_last = data_format != "NCHW"
    size = x.shape[-1 if channels_last else 1]
    if size is None or getattr(size, "value", size) is None:
        raise ValueError("batch_norm: the channel axis of the input needs a static size")
    size = int(size)
    initializers = param_initializers or {}
    with tf.variable_scope(scope, default_name="BatchNorm", values=[x], reuse=reuse):
        def variable(name, default, trainable_variable):
            return tf.get_variable(name, [size], initializer=initializers.get(name, default),
                                   trainable=trainable_variable and trainable)

        beta = variable("beta", tf.zeros_initializer(), True) if center else None
        gamma = variable("gamma", tf.ones_initializer(), True) if scale else None
        moving_mean = variable("moving_mean", tf.zeros_initializer(), False)
        moving_variance = variable("moving_variance", tf.ones_initializer(), False)
        axes = [axis for axis in range(x.shape.ndims) if axis != (x.shape.ndims - 1 if channels_last else 1)]

        def train_statistics():
            return _moments_with_updates(x, axes, moving_mean, moving_variance, decay, updates_collections)

        if isinstance(is_training, bool):
            mean, variance = train_statistics() if is_training else (moving_mean, moving_variance)
        else:
            mean, variance = tf.cond(tf.cast(is_training, tf.bool), train_statistics,
                                     lambda: (tf.identity(moving_mean), tf.identity(moving_variance)))
        if not channels_last:
            shape = [1, size] + [1] * (x.shape.ndims - 2)
            mean, variance = tf.reshape(mean, shape), tf.reshape(variance, shape)
            beta = None if beta is None else tf.reshape(beta, shape)
            gamma = None if gamma is None else tf.reshape(gamma, shape)
        outputs = tf.nn.batch_normalization(x, mean, variance, beta, gamma, epsilon)
    return activation_fn(outputs) if activation_fn else outputs


class _Delegate(types.ModuleType):
    """A module whose own attributes win and whose other attributes come from `target`."""

    def __init__(self, name, target, **own):
        super().__init__(name)
        self.__dict__["_target"] = target
        self.__dict__.update(own)

    def __getattr__(self, name):
        return getattr(self.__dict__["_target"], name)


_MODULES = {}


def slim_module():
    """tf_slim with batch_norm replaced by ours (so slim.arg_scope works on it too)."""
    if "slim" not in _MODULES:
        import tf_slim
        from tf_slim.ops.arg_scope import add_arg_scope

        _MODULES["slim"] = _Delegate("tensorflow.contrib.slim", tf_slim, batch_norm=add_arg_scope(batch_norm))
    return _MODULES["slim"]


def tensorflow_v1():
    """``tensorflow.compat.v1`` with ``contrib.layers`` and ``contrib.slim``."""
    if "tf" not in _MODULES:
        tf = _v1()
        slim = slim_module()
        layers = _Delegate("tensorflow.contrib.layers", slim, batch_norm=slim.batch_norm,
                           xavier_initializer=tf.glorot_uniform_initializer)
        contrib = _Delegate("tensorflow.contrib", types.SimpleNamespace(), layers=layers, slim=slim,
                            framework=_Delegate("tensorflow.contrib.framework", slim))
        _MODULES["tf"] = _Delegate("tensorflow", tf, contrib=contrib)
    return _MODULES["tf"]


def _model_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (name == "tensorflow" or name.startswith("tensorflow.contrib")):
        module = tensorflow_v1()
        if fromlist and name != "tensorflow":  # from tensorflow.contrib[.x] import y
            for part in name.split(".")[1:]:
                module = getattr(module, part)
        return module
    return builtins.__import__(name, globals, locals, fromlist, level)


def model_builtins():
    """The builtins of a model file's namespace (see the module docstring)."""
    return dict(vars(builtins), __import__=_model_import)
