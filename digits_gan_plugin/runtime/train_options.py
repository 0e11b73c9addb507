"""The options of ``digits-gan train``, declared once, and the shipped training recipes.

``TRAIN_OPTIONS`` is the single declaration. From it come: ``TrainOptions`` (a frozen
dataclass whose fields and defaults are the options', saved as config.json's top-level
keys) and its ``check()``, the ``train`` command's flags (``options.add_to_argparse``),
the web UI's new-model fields (``options.make_wtform``) and the argv of a recipe
(``recipe_args``). No training default is written anywhere else.

Plain Python (3.8 syntax), no TensorFlow: the CLI's ``--help`` and the web form import it.
"""
import dataclasses

from ..errors import DataError, TrainingError
from ..options import MAX_SEED, Option, to_cli_args
from .schedules import LR_POLICIES, SOLVERS, LearningRatePolicy

TRAIN_OPTIONS = [
    Option("dataset", str, required=True, help="dataset directory (DIGITS layout)"),
    Option("network", str, required=True, help="model file path or shipped name (see 'digits-gan models')"),
    Option("epochs", int, 10, "epochs to train in total", min=1),
    Option("batch_size", int, 64, "images per step", min=1),
    Option("solver", str, "adam", "default optimizer of every loss entry", choices=SOLVERS),
    Option("lr", float, 2e-4, "base learning rate", above=0),
    Option("lr_policy", str, "fixed", "learning-rate policy", choices=LR_POLICIES),
    Option("gamma", float, None, "lr policy gamma (step, multistep, exp, inv, sigmoid)"),
    Option("power", float, None, "lr policy power (inv, poly)"),
    Option("step_size", int, None, "lr policy step size in steps (step, sigmoid)", min=1),
    Option("step_values", int, (), "comma-separated steps (multistep)", min=1, is_list=True),
    Option("keep", int, 2, "checkpoints to keep (each holds the model and its optimizer slots)", min=1),
    Option("best_metric", str, None, "metrics.csv column whose best value is kept in checkpoints/best/"),
    Option("best_mode", str, "min", "best = lowest (min) or highest (max) value", choices=("min", "max")),
    Option("snapshot_interval", float, 1.0, "checkpoint every this many epochs", above=0),
    Option("summary_interval", int, 50, "write TensorBoard scalars every this many steps (at least once per epoch)",
           min=1),
    Option("seed", int, None, "random seed (default: random, saved in config.json)", min=0, max=MAX_SEED),
    Option("devices", str, "1", "N (first N GPUs; without GPUs N logical CPU devices, for testing) or "
           "comma-separated device names: one tower per device, the batch split evenly"),
    Option("max_steps", int, None, "stop after this many steps in total", min=1),
    Option("threads", int, None, "TensorFlow threads (default: all usable cores)", min=1, max=1024),
    Option("xla", str, "auto", "XLA auto-clustering of the training step: on, off, or auto (see docs/scaling.md)",
           choices=("auto", "on", "off")),
    Option("weights", str, None, "initialize the variables matching by name and shape from another job "
           "(JOBDIR) or checkpoint (CKPT)"),
    Option("ema_decay", float, None, "keep an exponential moving average of the generator's weights with this "
           "decay, e.g. 0.999 (default: the model file's ema_decay, else none); sample grids, infer, evaluate and "
           "export then use it", above=0, below=1),
    Option("digits_semantics", bool, False, "build the towers as NVIDIA DIGITS does (x without static shape, "
           "inference on every tower, nclasses 0 without labels, one shared optimizer; see docs/model_files.md)"),
]
OPTIONS_BY_NAME = {option.name: option for option in TRAIN_OPTIONS}

# Shipped recipes ({option name: value}); the walkthrough and the benchmarks train with them.
# network-mnist.py on the embedded 5k MNIST sample (benchmarks/mnist_quality.py, examples/run_local.py).
# 12 epochs with an EMA of G (decay 0.995: a ~3-epoch horizon) judge as well as 30 without one
# (BENCHMARKS.md, MNIST sample quality).
MNIST_RECIPE = {"network": "network-mnist", "epochs": 12, "batch_size": 64, "solver": "adam", "lr": 2e-4,
                "ema_decay": 0.995, "seed": 0}
# The encoder trained from a MNIST_RECIPE job's weights (benchmarks/encoder_quality.py).
# Its Adam lr (2e-3, the model file's) decays linearly to 0 (poly, power 1) over the 9 epochs.
MNIST_ENCODER_RECIPE = {"network": "network-mnist-encoder", "epochs": 9, "batch_size": 64, "lr_policy": "poly",
                        "power": 1.0, "seed": 0}
# network-celebA.py's recommended recipe (examples/run_local.py --celeba).
CELEBA_RECIPE = {"network": "network-celebA", "epochs": 20, "batch_size": 64, "solver": "adam", "lr": 2e-4, "seed": 0}
CELEBA_ENCODER_RECIPE = {"network": "network-celebA-encoder", "epochs": 5, "batch_size": 64, "seed": 0}


def recipe_args(recipe):
    """The `digits-gan train` flags (list of str) of a recipe dict."""
    unknown = sorted(set(recipe) - set(OPTIONS_BY_NAME))
    if unknown:
        raise TrainingError(f"recipe: unknown training option(s) {', '.join(unknown)}")
    return to_cli_args(TRAIN_OPTIONS, recipe)


def _check(self):
    """Raise TrainingError naming the first invalid option ('--flag: ...')."""
    for option in TRAIN_OPTIONS:
        value = getattr(self, option.name)
        try:
            converted = option.convert(value)
        except DataError as error:
            raise TrainingError(f"{option.flag}: {str(error).split(': ', 1)[1]}") from None
        if converted != value and not (option.is_list and tuple(value) == converted):
            raise TrainingError(f"{option.flag}: expected a {option.type.__name__}, got {value!r}")
    if not _device_spec_ok(self.devices):
        raise TrainingError(f"--devices: expected an integer >= 1 or device names, got {self.devices}")
    self.lr_policy_for(self.max_steps or 1)


def _device_spec_ok(spec):
    spec = spec.strip()
    return bool(spec) and (not spec.isdigit() or int(spec) >= 1)


def _lr_policy_for(self, total_steps):
    """The LearningRatePolicy; poly decays to 0 at max_steps or the last step."""
    return LearningRatePolicy(self.lr_policy, self.lr, gamma=self.gamma, power=self.power,
                              step_size=self.step_size, step_values=list(self.step_values),
                              max_steps=self.max_steps or total_steps)


def _device_spec(self):
    """--devices as cluster.local_devices takes it: an int N or a list of names."""
    spec = self.devices.strip()
    return int(spec) if spec.isdigit() else [name.strip() for name in spec.split(",") if name.strip()]


def _post_init(self):
    # Python callers may give --devices as an int or a list, lists as lists
    if isinstance(self.devices, (int, list, tuple)) and not isinstance(self.devices, bool):
        spec = ",".join(map(str, self.devices)) if isinstance(self.devices, (list, tuple)) else str(self.devices)
        object.__setattr__(self, "devices", spec)
    if isinstance(self.step_values, list):
        object.__setattr__(self, "step_values", tuple(self.step_values))


def _to_config(self):
    """The options as config.json stores them (lists as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()}


TrainOptions = dataclasses.make_dataclass(
    "TrainOptions",
    [(option.name, object) if option.required else (option.name, object, dataclasses.field(default=option.default))
     for option in TRAIN_OPTIONS],
    namespace={"__post_init__": _post_init, "check": _check, "lr_policy_for": _lr_policy_for, "device_spec": _device_spec,
               "to_config": _to_config, "__module__": __name__,
               "__doc__": "Resolved training options (config.json); fields and defaults: TRAIN_OPTIONS. "
                          "Steps count batches."},
    frozen=True,
)


def make_options(values):
    """TrainOptions from {name: value} (e.g. parsed flags; None = not given), each value
    converted by its Option (so '3' and 3 alike); TrainingError names the flag."""
    known = {}
    for name, value in values.items():
        option = OPTIONS_BY_NAME.get(name)
        if option is None:
            raise TrainingError(f"unknown training option {name!r}")
        if value is None:
            continue
        if name == "devices" and isinstance(value, (int, list)):  # config.json holds resolved device lists
            value = ",".join(value) if isinstance(value, list) else str(value)
        try:
            known[name] = option.convert(value)
        except DataError as error:
            raise TrainingError(f"{option.flag}: {str(error).split(': ', 1)[1]}") from None
    missing = [OPTIONS_BY_NAME[name].flag for name in ("dataset", "network") if name not in known]
    if missing:
        raise TrainingError(f"{' and '.join(missing)} required (unless --resume)")
    return TrainOptions(**known)


def options_from_config(config, **overrides):
    """TrainOptions from a job's config.json, with the non-None `overrides` applied."""
    values = {key: value for key, value in config.items() if key in OPTIONS_BY_NAME}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return make_options(values)
