"""An exponential moving average (EMA) of a generator's weights (Karras et al. 2018,
Yazici et al. 2019): training keeps it, every later use of the job prefers it.

Training (``Shadows``, option ``--ema-decay`` or the model file's ``ema_decay``): every
trainable variable that the sample tower reads (a GAN's generator) gets a shadow, a
non-trainable variable named ``<name>/ema`` that every checkpoint saves. After each step
whose active loss entries update a variable (a control dependency on those updates),

    shadow <- shadow - (1 - decay) * (shadow - variable)

The sample tower is built on the shadows (a variable-scope custom getter), so the epoch
grids show the averaged generator. Shadows start as copies of the variables once these
are initialized or restored (``--weights`` included); ``--resume`` restores them.

Every later graph of a job (``inference.Generator``, which infer, evaluate, export, the
projector and directions use) restores each variable from its shadow when the checkpoint
has one (``restore_map``): the job's own variable names, the averaged values.

Batch-norm moving statistics are not trainable, so they have no shadow: inference with
the EMA weights normalizes with the moving statistics gathered by the raw weights.
"""
import math

from ..errors import ModelDefinitionError, TrainingError

SUFFIX = "ema"


def shadow_name(name):
    """The checkpoint / variable name of the shadow of variable `name`."""
    return f"{name}/{SUFFIX}"


def is_shadow(name):
    return name.endswith("/" + SUFFIX)


def check_decay(value, where):
    """`value` as a float in (0, 1), else a one-line error naming `where`."""
    error = TrainingError if where.startswith("--") else ModelDefinitionError
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value < 1:
        raise error(f"{where}: the EMA decay must be a number strictly between 0 and 1 (e.g. 0.999), "
                    f"got {value!r}")
    return float(value)


def job_decay(option, model_class, network):
    """The decay a job trains with: --ema-decay, else the model file's `ema_decay`
    class attribute, else None (no EMA); checked."""
    if option is not None:
        return check_decay(option, "--ema-decay")
    value = getattr(model_class, "ema_decay", None)
    return None if value is None else check_decay(value, f"{network}: UserModel.ema_decay")


class Shadows:
    """The shadows of one training graph, created while the sample tower is built
    inside ``scope()``; ``finish()`` once that tower is built."""

    def __init__(self, decay):
        self.decay = decay
        self.pairs = []        # (variable, shadow), in creation order
        self.copies = {}       # shadow name -> op setting the shadow to its variable
        self.saver_without = None

    def scope(self):
        """A variable scope (the current one, AUTO_REUSE) whose towers read the shadows
        of the trainable variables instead of the variables."""
        import tensorflow.compat.v1 as tf

        return tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE, custom_getter=self._getter)

    def _getter(self, getter, name, *args, **kwargs):
        import tensorflow.compat.v1 as tf

        variable = getter(name, *args, **kwargs)
        if not any(variable is trainable for trainable in tf.trainable_variables()):
            return variable
        for known, shadow in self.pairs:
            if known is variable:
                return shadow
        shadow = getter(shadow_name(name), shape=variable.shape, dtype=variable.dtype.base_dtype,
                        initializer=tf.zeros_initializer(), trainable=False)
        self.pairs.append((variable, shadow))
        return shadow

    def finish(self):
        """Build the copy ops and a Saver of every other variable (for resuming a job
        whose checkpoints have no shadows yet). Call before the graph is finalized."""
        import tensorflow.compat.v1 as tf

        self.copies = {shadow.op.name: shadow.assign(variable.read_value()) for variable, shadow in self.pairs}
        shadows = {shadow.op.name for _, shadow in self.pairs}
        self.saver_without = tf.train.Saver(var_list=[v for v in tf.global_variables() if v.op.name not in shadows],
                                            save_relative_paths=True)

    def update(self, variables):
        """An op moving the shadows of `variables` one step toward them (None when none
        of them has a shadow). Build it under a control dependency on their updates."""
        import tensorflow.compat.v1 as tf

        moving = [(v, s) for v, s in self.pairs if any(v is w for w in variables)]
        if not moving:
            return None
        rate = 1.0 - self.decay
        return tf.group(*[shadow.assign_sub(rate * (shadow.read_value() - variable.read_value()))
                          for variable, shadow in moving], name="ema_update")

    def missing_from(self, names):
        """Shadow names not among `names` (a checkpoint's variable names)."""
        return [name for name in self.copies if name not in names]

    def start(self, session, restored=()):
        """Set every shadow not in `restored` (names) to its variable's value."""
        pending = [op for name, op in self.copies.items() if name not in restored]
        if pending:
            session.run(pending)


def checkpoint_names(prefix):
    """The set of variable names stored in checkpoint `prefix`."""
    import tensorflow.compat.v1 as tf

    return {name for name, _ in tf.train.list_variables(prefix)}


def restore_map(variables, names, use_ema=True):
    """({checkpoint name: variable} for a Saver, 'ema' | 'raw'): each variable from its
    shadow when `names` (the checkpoint's) has one and `use_ema`, else from itself."""
    mapping = {}
    for variable in variables:
        name = variable.op.name
        mapping[shadow_name(name) if use_ema and shadow_name(name) in names else name] = variable
    return mapping, "ema" if any(is_shadow(name) for name in mapping) else "raw"
