"""Building towers and per-entry update ops from a UserModel class (graph mode).

Everything here runs inside a ``tf.Graph().as_default()`` block owned by the caller.
"""
import math
from dataclasses import asdict, dataclass, replace

from ..errors import ModelDefinitionError
from .model_files import model_code
from .schedules import check_solver, make_optimizer

# Keys a loss entry may have (see the package docstring).
ENTRY_KEYS = ("loss", "vars", "name", "solver", "learning_rate", "solver_args", "start_step", "every")


@dataclass
class ModelFacts:
    """What the runtime knows about a model + dataset pair; saved as config.json 'model'.

    input_shape: [H, W, C] of the training images. nclasses: classes / attributes of the
    dataset or None. y_dim: nclasses for conditional models, else 0.
    """

    network: str
    z_dim: int | None
    num_classes: int | None
    conditional: bool
    input_shape: list
    y_dim: int = 0
    inference_input: str = "image"
    z_distribution: str = "uniform"

    @property
    def vector_width(self):
        """Width D = z_dim + y_dim of a generator's inference input."""
        return (self.z_dim or 0) + self.y_dim

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


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
        raise ModelDefinitionError(f"{path}: UserModel is conditional but the dataset has no labels")
    z_dim = getattr(model_class, "z_dim", None)
    if z_dim is not None and (not isinstance(z_dim, int) or z_dim < 1):
        raise ModelDefinitionError(f"{path}: UserModel.z_dim must be a positive int, got {z_dim!r}")
    facts = ModelFacts(
        network=str(path),
        z_dim=z_dim,
        num_classes=nclasses,
        conditional=conditional,
        input_shape=[height, width, channels],
        y_dim=nclasses if conditional else 0,
        inference_input=getattr(model_class, "inference_input", "z" if z_dim else "image"),
        z_distribution=getattr(model_class, "z_distribution", "uniform"),
    )
    if facts.inference_input not in ("z", "image") or (facts.inference_input == "z" and not z_dim):
        raise ModelDefinitionError(
            f"{path}: UserModel.inference_input must be 'image', or 'z' with z_dim set; got {facts.inference_input!r}"
        )
    if facts.z_distribution not in ("uniform", "normal"):
        raise ModelDefinitionError(f"{path}: UserModel.z_distribution must be 'uniform' or 'normal'")
    return facts


def reuse_scope():
    """The root variable scope with AUTO_REUSE: every tower shares the same variables,
    named as the model file names them (e.g. 'generator/fc1/weights')."""
    import tensorflow.compat.v1 as tf

    return tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE)


def build_tower(model_class, facts, x, y, stage, properties):
    """Instantiate UserModel for one stage ('train', 'val' or 'inf') and build the
    given model properties inside name scope `stage`; returns the model."""
    import tensorflow.compat.v1 as tf

    with tf.name_scope(stage), model_code(facts.network, f"building the {stage} tower"):
        model = model_class(
            x, y, list(facts.input_shape), facts.num_classes,
            is_training=stage == "train", is_inference=stage == "inf",
        )
        for name in properties:
            getattr(model, name)
    return model


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
    updates one after another in list order, runs `extra_ops` (UPDATE_OPS) and adds 1
    to `global_step`.
    """

    def __init__(self, tower_entries, models, path, lr_scale, global_step, extra_ops, devices=(None,)):
        import tensorflow.compat.v1 as tf

        self.entries = tower_entries[0]
        optimizers, gradients = [], []
        for index, entry in enumerate(self.entries):
            optimizer = make_optimizer(
                entry.solver, entry.learning_rate * lr_scale, name=f"{_op_name(entry.name)}_{entry.solver}",
                solver_args=entry.solver_args,
            )
            per_tower = []
            for entries, model, device in zip(tower_entries, models, devices):
                with tf.device(device), model_code(path, f"computing the gradients of loss entry {entry.name!r}"):
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
            with tf.control_dependencies(previous):
                increment = global_step.assign_add(1)
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


def build_train_towers(model_class, facts, inputs, devices, path, solver, learning_rate):
    """One train tower per device: `inputs[t]` is the (x, y) batch slice of tower t,
    built under `tf.device(devices[t])` and name scope 'train' (tower 0, whose summaries
    and UPDATE_OPS the trainer uses) or 'train_t'. Variables are shared through the
    caller's reuse scope and so created on the first device. Returns (models,
    tower_entries); tower_entries[t] is tower t's LossEntry list."""
    import tensorflow.compat.v1 as tf

    models, tower_entries = [], []
    for index, ((x, y), device) in enumerate(zip(inputs, devices)):
        with tf.device(device):
            model = build_tower(model_class, facts, x, y, "train" if index == 0 else f"train_{index}", ["loss"])
        entries = loss_entries(model.loss, path, solver, learning_rate)
        if tower_entries and [e.name for e in entries] != [e.name for e in tower_entries[0]]:
            raise ModelDefinitionError(f"{path}: tower {index} returned loss entries {[e.name for e in entries]}, "
                                       f"tower 0 {[e.name for e in tower_entries[0]]}")
        models.append(model)
        tower_entries.append(entries)
    return models, tower_entries


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
