"""Building towers and per-entry update ops from a UserModel class (graph mode).

Everything here runs inside a ``tf.Graph().as_default()`` block owned by the caller.
"""
import math
from dataclasses import dataclass, replace

from ..errors import DataError, ModelDefinitionError, TrainingError
from ..latent import DEFAULT_Z_DISTRIBUTION, ModelFacts
from .model_files import model_code, tower_data
from .schedules import check_solver, make_optimizer

# Keys a loss entry may have (see the package docstring).
ENTRY_KEYS = ("loss", "vars", "name", "solver", "learning_rate", "solver_args", "start_step", "every")


def model_facts(model_class, path, meta):
    """ModelFacts of `model_class` (loaded from `path`) trained on a dataset whose
    dataset.json is `meta`. nclasses = num_classes for scalar labels, K for 1,1,K
    attribute labels. conditional = the class attribute if set, else True exactly when
    the dataset has scalar class labels."""
    train = meta["stages"]["train_db"]
    channels, height, width = train["feature_shape"]
    label_shape = train.get("label_shape")
    scalar_labels = label_shape == [] and bool(meta.get("num_classes"))
    if scalar_labels:
        nclasses = int(meta["num_classes"])
    elif label_shape:
        nclasses = int(label_shape[-1])
    else:
        nclasses = None
    conditional = bool(getattr(model_class, "conditional", scalar_labels))
    if conditional and not nclasses:
        raise ModelDefinitionError(f"{path}: UserModel.conditional is true (the generator takes a class), but the "
                                   f"dataset has no labels; train it on a labelled dataset")
    z_dim = getattr(model_class, "z_dim", None)
    if z_dim is not None and (not isinstance(z_dim, int) or z_dim < 1):
        raise ModelDefinitionError(f"{path}: UserModel.z_dim must be a positive int, got {z_dim!r}")
    names = meta.get("label_names")
    try:
        return ModelFacts(
            z_dim=z_dim,
            num_classes=nclasses,
            conditional=conditional,
            input_shape=(height, width, channels),
            network=str(path),
            inference_input=getattr(model_class, "inference_input", None),
            z_distribution=getattr(model_class, "z_distribution", DEFAULT_Z_DISTRIBUTION),
            class_names=names if names and len(names) == nclasses else None,
        )
    except DataError as error:
        raise ModelDefinitionError(f"{path}: UserModel {error}") from None


def reuse_scope():
    """The root variable scope with AUTO_REUSE: every tower shares the same variables,
    named as the model file names them (e.g. 'generator/fc1/weights')."""
    import tensorflow.compat.v1 as tf

    return tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE)


def build_tower(model_class, facts, x, y, stage, properties, digits=False):
    """Instantiate UserModel for one stage ('train', 'val' or 'inf'; 'train_<name>' for
    further train-mode towers) and build the given model properties inside name scope
    `stage`; returns the model.

    digits: as NVIDIA DIGITS builds towers (docs/model_files.md): `x` loses its static
    shape, `nclasses` is 0 (DIGITS' value for generic datasets), `input_shape` is the
    shape of the data read (1,1,D vectors at inference), the model is created outside
    the 'model' variable scope, and `inference` is built on every tower, inside
    variable_scope('model'), before `loss`."""
    import tensorflow.compat.v1 as tf

    training = stage == "train" or stage.startswith("train_")
    data = tower_data(x, y, facts.input_shape)
    with tf.name_scope(stage), model_code(facts.network, f"building the {stage} tower", data):
        if not digits:
            model = model_class(x, y, list(facts.input_shape), facts.num_classes,
                                is_training=training, is_inference=stage == "inf")
            for name in properties:
                getattr(model, name)
            return model
        input_shape = [1, 1, facts.vector_width] if stage == "inf" and facts.inference_input == "z" \
            else list(facts.input_shape)
        x = tf.placeholder_with_default(x, [None] * x.shape.ndims, name="x_without_static_shape")
        model = model_class(x, y, input_shape, 0, is_training=training, is_inference=stage == "inf")
        with tf.variable_scope("model"):
            model.inference
            if stage != "inf":
                model.loss
    return model


def facts_from_instance(facts, model):
    """`facts` completed from a built model instance: DIGITS' own GAN files set z_dim
    (and y_dim) in __init__ rather than on the class. Such a model is a generator when
    its inference output is N,H,W,C images, an encoder ('image' input) when it is DIGITS'
    flat [z | pixels] tensor."""
    z_dim = getattr(model, "z_dim", None)
    if facts.z_dim or not isinstance(z_dim, int) or isinstance(z_dim, bool) or z_dim < 1:
        return facts
    inference_input = getattr(type(model), "inference_input", None)
    if inference_input is None:
        with model_code(facts.network, "building the inference output"):
            output = model.inference
        flat = not isinstance(output, dict) and getattr(output, "shape", None) is not None and output.shape.ndims == 2
        inference_input = "image" if flat else "z"
    try:
        facts = facts.replace(z_dim=z_dim, inference_input=inference_input)
    except DataError as error:
        raise ModelDefinitionError(f"{facts.network}: UserModel {error}") from None
    if inference_input == "image":
        inference_outputs(model.inference, facts)  # a 2-D output must be [z | pixels]
    return facts


@dataclass
class LossEntry:
    """One network's loss and the variables its own optimizer updates."""

    name: str
    loss: object
    variables: list
    solver: str
    learning_rate: float
    start_step: int = 0
    every: int = 1
    solver_args: dict = None

    def runs_at(self, step):
        """Whether this entry updates at global step `step` (batches already trained)."""
        return step >= self.start_step and step % self.every == 0


def loss_entries(loss, path, solver, learning_rate):
    """Normalize UserModel.loss (one tensor or a list of dicts) into LossEntry objects;
    `solver` and `learning_rate` are the job's defaults."""
    import tensorflow.compat.v1 as tf
    from tensorflow import Variable  # v2 base class: also matches resource variables

    if isinstance(loss, tf.Tensor):
        loss = [{"name": "loss", "loss": loss, "vars": tf.trainable_variables()}]
    if not isinstance(loss, (list, tuple)) or not loss:
        raise ModelDefinitionError(f"{path}: UserModel.loss must be a scalar tensor or a non-empty list of dicts")
    entries = []
    for index, raw in enumerate(loss):
        where = f"{path}: loss entry {index}"
        if not isinstance(raw, dict) or "loss" not in raw or "vars" not in raw:
            raise ModelDefinitionError(f"{where}: expected a dict with keys 'loss' and 'vars'")
        tensor = raw["loss"]
        if not isinstance(tensor, tf.Tensor) or tensor.shape.ndims != 0:
            raise ModelDefinitionError(f"{where}: 'loss' must be a scalar tensor, got {tensor!r}")
        variables = list(raw["vars"])
        if not variables or not all(isinstance(v, Variable) for v in variables):
            raise ModelDefinitionError(f"{where}: 'vars' must be a non-empty list of variables")
        unknown = sorted(set(raw) - set(ENTRY_KEYS))
        if unknown:
            raise ModelDefinitionError(f"{where}: unknown key(s) {unknown} (expected {', '.join(ENTRY_KEYS)})")
        solver_args = raw.get("solver_args") or {}
        if not isinstance(solver_args, dict):
            raise ModelDefinitionError(f"{where}: 'solver_args' must be a dict of optimizer keyword arguments")
        name = raw.get("name") or tensor.op.name.split("/")[-1]
        start_step, every = raw.get("start_step", 0), raw.get("every", 1)
        if not isinstance(start_step, int) or start_step < 0:
            raise ModelDefinitionError(f"{where}: 'start_step' must be an int >= 0, got {start_step!r}")
        if not isinstance(every, int) or every < 1:
            raise ModelDefinitionError(f"{where}: 'every' must be an int >= 1, got {every!r}")
        entry_lr = raw.get("learning_rate", learning_rate)
        if not isinstance(entry_lr, (int, float)) or not entry_lr > 0:
            raise ModelDefinitionError(f"{where}: 'learning_rate' must be a number > 0, got {entry_lr!r}")
        entries.append(LossEntry(
            name=name, loss=tensor, variables=variables,
            solver=check_solver(raw.get("solver", solver), where=f"{where}: 'solver'"),
            learning_rate=float(entry_lr), start_step=start_step, every=every,
            solver_args=solver_args,
        ))
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise ModelDefinitionError(f"{path}: loss entry names must be unique, got {names}")
    return entries


def active_sets(entries):
    """Every distinct tuple of entry indices that run together at some step."""
    horizon = max(entry.start_step for entry in entries) + math.lcm(*(entry.every for entry in entries))
    return {active_at(entries, step) for step in range(horizon)}


def check_entries_run(entries, total_steps, path):
    """TrainingError naming the first entry whose start_step / every keep it from running
    in the job's `total_steps` steps (0 .. total_steps - 1)."""
    for entry in entries:
        first = -(-entry.start_step // entry.every) * entry.every
        if first >= total_steps:
            raise TrainingError(f"{path}: loss entry {entry.name!r} never runs: start_step {entry.start_step}, "
                                f"every {entry.every} make its first step {first}, but the job trains "
                                f"{total_steps} steps (0..{total_steps - 1}); train longer or lower its "
                                f"start_step")


def active_at(entries, step):
    """Tuple of indices of the entries that run at global step `step`."""
    return tuple(index for index, entry in enumerate(entries) if entry.runs_at(step))


class UpdateOps:
    """One optimizer per loss entry and one grouped step op per set of active entries.

    `tower_entries[t]` are the LossEntry objects of train tower t (same names and order
    in every tower; tower t was built on `devices[t]`). Each entry's gradients are
    computed per tower on that tower's device (after the tower model's gradientUpdate
    hook), averaged across towers on the first device and applied once. A step op waits
    for the gradients of all its entries (one forward pass), applies the entries'
    updates one after another in list order, then moves the EMA shadows of the updated
    variables (`ema`, an ema.Shadows, if any), runs `extra_ops` (UPDATE_OPS) and adds 1
    to `global_step`.
    """

    def __init__(self, tower_entries, models, path, lr_scale, global_step, extra_ops, devices=(None,),
                 shared_optimizer=None, ema=None):
        """shared_optimizer: (solver, learning rate) for DIGITS semantics: one optimizer
        for every entry (the entries' own solver keys are ignored, as DIGITS does) and
        the global step advanced once per entry applied."""
        import tensorflow.compat.v1 as tf

        self.entries = tower_entries[0]
        optimizers, gradients = [], []
        shared = None
        if shared_optimizer:
            shared = make_optimizer(shared_optimizer[0], shared_optimizer[1] * lr_scale,
                                    name=f"shared_{shared_optimizer[0]}")
        for index, entry in enumerate(self.entries):
            optimizer = shared or make_optimizer(
                entry.solver, entry.learning_rate * lr_scale, name=f"{_op_name(entry.name)}_{entry.solver}",
                solver_args=entry.solver_args,
            )
            per_tower = []
            for entries, model, device in zip(tower_entries, models, devices):
                data = tower_data(model.x, model.y, model.input_shape)
                with tf.device(device), model_code(path, f"computing the gradients of loss entry {entry.name!r}",
                                                   data):
                    # GATE_NONE: the step op below already orders the updates; per-op gating
                    # only serializes the backward pass (about 1.3x slower steps on 2 cores).
                    pairs = optimizer.compute_gradients(
                        entries[index].loss, var_list=entries[index].variables,
                        gate_gradients=tf.train.Optimizer.GATE_NONE,
                    )
                    pairs = model.gradientUpdate([(g, v) for g, v in pairs if g is not None])
                if not pairs:
                    raise ModelDefinitionError(f"{path}: loss entry {entry.name!r} depends on none of its 'vars'")
                per_tower.append(pairs)
            with tf.device(devices[0]):
                gradients.append(average_gradients(per_tower))
            optimizers.append(optimizer)
        self.step_ops = {}
        for active in sorted(active_sets(self.entries)):
            previous = [grad.op for index in active for grad, _ in gradients[index]]
            for index in active:
                with tf.control_dependencies(previous):
                    previous = [optimizers[index].apply_gradients(gradients[index])]
            if ema is not None:
                with tf.control_dependencies(previous):
                    update = ema.update([v for index in active for v in self.entries[index].variables])
                previous = [update] if update is not None else previous
            with tf.control_dependencies(previous):
                increment = global_step.assign_add(len(active) if shared else 1)
            self.step_ops[active] = tf.group(increment, *extra_ops, name="step_" + "_".join(map(str, active)))

    def op_at(self, step):
        """(active entry indices, step op) for global step `step`."""
        active = active_at(self.entries, step)
        return active, self.step_ops[active]


def average_gradients(tower_pairs):
    """Mean over towers of [(gradient, variable), ...] lists (one list per tower, the
    same variables in the same order); a single tower's list is returned as is."""
    import tensorflow.compat.v1 as tf

    if len(tower_pairs) == 1:
        return tower_pairs[0]
    averaged = []
    for pairs in zip(*tower_pairs):
        variable = pairs[0][1]
        if any(v is not variable for _, v in pairs):
            raise ModelDefinitionError(f"towers disagree on the variables of a loss entry ({variable.op.name})")
        grads = [tf.convert_to_tensor(g) for g, _ in pairs]  # IndexedSlices -> dense
        averaged.append((tf.add_n(grads) / float(len(grads)), variable))
    return averaged


def build_train_towers(model_class, facts, inputs, devices, path, solver, learning_rate, digits=False):
    """One train tower per device: `inputs[t]` is the (x, y) batch slice of tower t,
    built under `tf.device(devices[t])` and name scope 'train' (tower 0, whose summaries
    and UPDATE_OPS the trainer uses) or 'train_t'. Variables are shared through the
    caller's reuse scope and so created on the first device. Returns (models,
    tower_entries); tower_entries[t] is tower t's LossEntry list."""
    import tensorflow.compat.v1 as tf

    models, tower_entries = [], []
    gated = {"BiasAdd": _gated_bias_add_gradient()}
    for index, ((x, y), device) in enumerate(zip(inputs, devices)):
        with tf.device(device), tf.get_default_graph().gradient_override_map(gated):
            model = build_tower(model_class, facts, x, y, "train" if index == 0 else f"train_{index}", ["loss"],
                                digits=digits)
        entries = loss_entries(model.loss, path, solver, learning_rate)
        if tower_entries and [e.name for e in entries] != [e.name for e in tower_entries[0]]:
            raise ModelDefinitionError(f"{path}: tower {index} returned loss entries {[e.name for e in entries]}, "
                                       f"tower 0 {[e.name for e in tower_entries[0]]}")
        models.append(model)
        tower_entries.append(entries)
    return models, tower_entries


GATED_BIAS_ADD_GRADIENT = "DigitsGanGatedBiasAddGrad"


def _gated_bias_add_gradient():
    """The name of BiasAdd's gradient with its two outputs grouped (tf.tuple), registered
    once. Ungated, oneDNN fuses a convolution's filter gradient with its bias gradient
    (_MklNativeConv2DBackpropFilterWithBias), which measured slower than the two kernels
    apart: network-celebA's D filter gradients 242 vs 224 ms a step, ~2.5% of it, 1 thread.
    The same values; the pass-through gradient waits only for the small bias sum."""
    import tensorflow.compat.v1 as tf
    from tensorflow.python.framework import ops

    try:
        ops.gradient_registry.lookup(GATED_BIAS_ADD_GRADIENT)
    except LookupError:
        @tf.RegisterGradient(GATED_BIAS_ADD_GRADIENT)
        def _gradient(op, received):
            bias = tf.raw_ops.BiasAddGrad(out_backprop=received, data_format=op.get_attr("data_format").decode())
            return tuple(tf.tuple([received, bias]))
    return GATED_BIAS_ADD_GRADIENT


def mean_entries(tower_entries):
    """Tower 0's LossEntry list with each loss replaced by its mean over the towers
    (what the trainer reports)."""
    import tensorflow.compat.v1 as tf

    if len(tower_entries) == 1:
        return tower_entries[0]
    return [replace(entry, loss=tf.add_n([entries[i].loss for entries in tower_entries]) / float(len(tower_entries)))
            for i, entry in enumerate(tower_entries[0])]


def _op_name(name):
    return "".join(char if char.isalnum() or char in "_-." else "_" for char in name)


def inference_outputs(output, facts):
    """{name: tensor} of a model's inference op with 'images' the N,H,W,C image output
    when it has one. A dict is taken as is. A 2-D tensor is DIGITS' flat encoder
    output [z | pixels]: split into 'z' (the first width - H*W*C columns) and 'images'
    (reshaped to the training images' H,W,C, pixel values kept as they are, never cast
    with z). Any other 2-D width, or another rank, is a ModelDefinitionError."""
    import tensorflow.compat.v1 as tf

    if isinstance(output, dict):
        return dict(output)
    if not isinstance(output, tf.Tensor):
        raise ModelDefinitionError(f"{facts.network}: UserModel.inference must return a tensor or a dict of tensors, "
                                   f"got {type(output).__name__}")
    if output.shape.ndims == 4:
        return {"images": output}
    height, width, channels = facts.input_shape
    pixels = height * width * channels
    columns = output.shape[-1] if output.shape.ndims == 2 else None
    columns = getattr(columns, "value", columns)
    expected = f"N x H x W x C images, a dict, or DIGITS' flat N x (z_dim + {height}*{width}*{channels}) [z | pixels]"
    if columns is None or columns <= pixels or (facts.z_dim and columns != facts.z_dim + pixels):
        raise ModelDefinitionError(f"{facts.network}: UserModel.inference returned a {output.shape.ndims}-D tensor "
                                   f"of shape {output.shape.as_list() if output.shape.ndims else '?'}; expected "
                                   f"{expected}")
    return {"z": tf.cast(output[:, :columns - pixels], tf.float32),
            "images": tf.reshape(output[:, columns - pixels:], [-1, height, width, channels])}
