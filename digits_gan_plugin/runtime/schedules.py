"""Solvers and learning-rate policies of DIGITS' model form.

Policies are evaluated in Python (one home for each formula) and fed to the graph as
a scalar each step; ``step`` is the number of batches already trained.
"""
import math

from ..errors import TrainingError

SOLVERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "adadelta", "ftrl")
LR_POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")

# Which options each policy reads (DIGITS / Caffe semantics).
_POLICY_OPTIONS = {
    "fixed": (),
    "step": ("gamma", "step_size"),
    "multistep": ("gamma", "step_values"),
    "exp": ("gamma",),
    "inv": ("gamma", "power"),
    "poly": ("power", "max_steps"),
    "sigmoid": ("gamma", "step_size"),
}


class LearningRatePolicy:
    """lr(step) = base_lr * factor(step) with the DIGITS formulas:

    fixed     1
    step      gamma ** floor(step / step_size)
    multistep gamma ** (number of step_values <= step)
    exp       gamma ** step
    inv       (1 + gamma * step) ** -power
    poly      (1 - step / max_steps) ** power        (0 from max_steps on)
    sigmoid   1 / (1 + exp(-gamma * (step - step_size)))
    """

    def __init__(self, policy, base_lr, gamma=None, power=None, step_size=None, step_values=None, max_steps=None):
        if policy not in LR_POLICIES:
            raise TrainingError(f"--lr-policy: unknown policy {policy!r} (expected one of {', '.join(LR_POLICIES)})")
        _positive("--lr", base_lr)
        self.policy, self.base_lr = policy, float(base_lr)
        self.gamma, self.power, self.step_size, self.max_steps = gamma, power, step_size, max_steps
        self.step_values = sorted(step_values or [])
        for option in _POLICY_OPTIONS[policy]:
            value = getattr(self, option)
            if value is None or value == []:
                flag = "--" + option.replace("_", "-")
                raise TrainingError(f"{flag}: required by --lr-policy {policy}")
        if policy in ("step", "sigmoid"):
            _positive("--step-size", step_size)
        if policy == "poly":
            _positive("--max-steps", max_steps)
        if policy in ("step", "multistep", "exp", "inv") and gamma <= 0:
            raise TrainingError(f"--gamma: must be > 0 for --lr-policy {policy}, got {gamma}")
        if any(value <= 0 for value in self.step_values):
            raise TrainingError(f"--step-values: must be positive step numbers, got {self.step_values}")

    def factor(self, step):
        """The multiplier of every base learning rate at global step `step` (>= 0)."""
        policy = self.policy
        if policy == "fixed":
            return 1.0
        if policy == "step":
            return self.gamma ** (step // self.step_size)
        if policy == "multistep":
            return self.gamma ** sum(1 for value in self.step_values if value <= step)
        if policy == "exp":
            return self.gamma ** step
        if policy == "inv":
            return (1.0 + self.gamma * step) ** -self.power
        if policy == "poly":
            return max(0.0, 1.0 - step / self.max_steps) ** self.power
        return 1.0 / (1.0 + math.exp(-self.gamma * (step - self.step_size)))

    def __call__(self, step):
        """The job's learning rate at global step `step`."""
        return self.base_lr * self.factor(step)


def _positive(flag, value):
    if value is None or not value > 0:
        raise TrainingError(f"{flag}: must be > 0, got {value}")


def check_solver(solver, where="--solver"):
    if solver not in SOLVERS:
        raise TrainingError(f"{where}: unknown solver {solver!r} (expected one of {', '.join(SOLVERS)})")
    return solver


_OPTIMIZERS = {
    # solver: (tf.compat.v1.train class name, default keyword arguments)
    "sgd": ("GradientDescentOptimizer", {}),
    "momentum": ("MomentumOptimizer", {"momentum": 0.9}),
    "nesterov": ("MomentumOptimizer", {"momentum": 0.9, "use_nesterov": True}),
    "adam": ("AdamOptimizer", {}),
    "rmsprop": ("RMSPropOptimizer", {}),
    "adagrad": ("AdagradOptimizer", {}),
    "adadelta": ("AdadeltaOptimizer", {}),
    "ftrl": ("FtrlOptimizer", {}),
}


def make_optimizer(solver, learning_rate, name, solver_args=None):
    """A tf.compat.v1.train optimizer for `solver` with the given lr tensor or float.

    solver_args: extra keyword arguments of that optimizer (e.g. {'beta1': 0.5} for
    adam), overriding the defaults above.
    """
    import tensorflow.compat.v1 as tf

    class_name, defaults = _OPTIMIZERS[check_solver(solver)]
    kwargs = {**defaults, **(solver_args or {})}
    try:
        return getattr(tf.train, class_name)(learning_rate, name=name, **kwargs)
    except TypeError as error:
        raise TrainingError(f"solver_args {solver_args}: not accepted by the {solver} solver: {error}") from error
