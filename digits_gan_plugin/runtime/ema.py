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

The non-trainable floating-point state the sample tower reads (batch-norm moving
statistics; power-iteration vectors) gets a shadow too, re-estimated for the averaged
weights: the moving statistics the raw weights gathered do not fit the averaged ones
(samples of the averaged G normalized with them collapse toward typical images; on
network-mnist Frechet distance 3.26 -> 2.28 once re-estimated, BENCHMARKS.md). Before
every checkpoint and epoch-end grid the trainer runs ``refresh``: a train-mode copy of
the model built on the shadows (its own shuffled pass over train_db) runs only the
ops that assign these shadows, `STATISTICS_BATCHES` times, so only G's forward pass,
with the model file's own batch-norm momentum. Shadows of state the copy never assigns
are set to their variable's value. Checkpoints written before this have no statistics
shadows; inference then falls back to the raw statistics, as it did.
"""
import functools
import math

from ..errors import ModelDefinitionError, TrainingError

SUFFIX = "ema"
STATISTICS_BATCHES = 50  # batches per refresh; batch norm at momentum 0.9 keeps 0.9**50 = 0.5% of the old value
ASSIGN_OPS = {"Assign", "AssignSub", "AssignAdd", "AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp"}


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
    inside ``scope()``; ``build_refresh()`` and ``finish()`` once that tower is built."""

    def __init__(self, decay):
        self.decay = decay
        self.pairs = []        # (variable, shadow) of the trainable weights, in creation order
        self.statistics = []   # (variable, shadow) of the non-trainable state (batch-norm statistics)
        self.copies = {}       # shadow name -> op setting the shadow to its variable
        self.refresh_op = None         # one batch of the statistics' assign ops, or None
        self.reset_unassigned = None   # copies of the statistics no assign op writes, or None
        self.saver_without = None
        self.saver_without_statistics = None

    def scope(self):
        """A variable scope (the current one, AUTO_REUSE) whose towers read the shadows
        of the trainable variables and of the non-trainable state instead of them."""
        return self._scope(create=True)

    def _scope(self, create):
        import tensorflow.compat.v1 as tf

        getter = functools.partial(self._getter, create=create)
        return tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE, custom_getter=getter)

    def _getter(self, getter, name, *args, create=True, **kwargs):
        import tensorflow.compat.v1 as tf

        variable = getter(name, *args, **kwargs)
        trainable = any(variable is known for known in tf.trainable_variables())
        if not trainable and not variable.dtype.base_dtype.is_floating:
            return variable
        pairs = self.pairs if trainable else self.statistics
        for known, shadow in pairs:
            if known is variable:
                return shadow
        if not create:
            return variable
        shadow = getter(shadow_name(name), shape=variable.shape, dtype=variable.dtype.base_dtype,
                        initializer=tf.zeros_initializer(), trainable=False)
        pairs.append((variable, shadow))
        return shadow

    def build_refresh(self, build_train_tower):
        """Build the statistics refresh: `build_train_tower()` builds a train-mode tower
        (here, on the shadows; it must not create variables); of its new ops, those
        assigning a statistics shadow are the refresh."""
        import tensorflow.compat.v1 as tf

        if not self.statistics:
            return
        graph = tf.get_default_graph()
        before = set(graph.get_operations())
        with self._scope(create=False):
            build_train_tower()
        targets = {shadow.op: shadow for _, shadow in self.statistics}
        assigns = [op for op in graph.get_operations() if op not in before and op.type in ASSIGN_OPS
                   and op.inputs[0].op in targets]
        assigned = {op.inputs[0].op for op in assigns}
        if assigns:
            self.refresh_op = tf.group(*assigns, name="ema_statistics_refresh")
        unassigned = [shadow.assign(variable.read_value()) for variable, shadow in self.statistics
                      if shadow.op not in assigned]
        if unassigned:
            self.reset_unassigned = tf.group(*unassigned, name="ema_statistics_reset")

    def finish(self):
        """Build the copy ops and the Savers of every other variable (for resuming a job
        whose checkpoints lack some shadows). Call before the graph is finalized."""
        import tensorflow.compat.v1 as tf

        self.copies = {shadow.op.name: shadow.assign(variable.read_value())
                       for variable, shadow in self.pairs + self.statistics}
        shadows = {shadow.op.name for _, shadow in self.pairs + self.statistics}
        statistics = {shadow.op.name for _, shadow in self.statistics}

        def saver_without(names):
            return tf.train.Saver(var_list=[v for v in tf.global_variables() if v.op.name not in names],
                                  save_relative_paths=True)

        self.saver_without = saver_without(shadows)
        self.saver_without_statistics = saver_without(statistics) if statistics else self.saver_without

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

    def restore_saver(self, names):
        """The Saver for a checkpoint holding variable `names`: None (the job's own) when
        it has every shadow, else one that leaves the missing ones alone."""
        missing = [name for name in self.copies if name not in names]
        if not missing:
            return None
        statistics = {shadow.op.name for _, shadow in self.statistics}
        return self.saver_without_statistics if set(missing) <= statistics else self.saver_without

    def start(self, session, restored=()):
        """Set every shadow not in `restored` (names) to its variable's value."""
        pending = [op for name, op in self.copies.items() if name not in restored]
        if pending:
            session.run(pending)

    def refresh(self, session, batches=STATISTICS_BATCHES):
        """Re-estimate the statistics shadows for the current averaged weights."""
        if self.reset_unassigned is not None:
            session.run(self.reset_unassigned)
        if self.refresh_op is not None:
            for _ in range(batches):
                session.run(self.refresh_op)


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
