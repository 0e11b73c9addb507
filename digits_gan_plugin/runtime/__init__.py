"""Training and inference runtime for DIGITS-style model-definition files.

Importing this package does not import TensorFlow; ``trainer`` and ``inference`` do,
inside the functions that need it.

Modules: ``model_files`` (find / execute ``network-*.py``; run-time errors as FILE:LINE),
``tf1_compat`` (the ``tf`` model files see: v1 API + ``contrib``), ``tower`` (``Tower``,
``model_property``), ``digits_helpers`` (the ``digits`` module model files see),
``schedules`` (solvers and learning-rate policies), ``graph`` (towers and update ops),
``train_options`` (the training options, declared once, and the shipped recipes),
``trainer`` (graph build -> one frozen value -> the loop), ``report`` (epoch-end work:
validation, metrics row, loss curve, TensorBoard, grids, best checkpoint), ``joblock``
(one writer per job folder), ``cluster`` (devices, multi-worker sessions), ``charts``
(the loss-curve PNG),
``ema`` (the EMA of a generator's weights: shadows while training, restored by every
later use), ``inference`` (``load_generator``, ``generate_classes``, ``digits-gan infer``).

Model contract beyond DIGITS' (full text: docs/model_files.md)
----------------------------------------------------------------
Class attributes a ``UserModel`` may set:

- ``z_dim`` (int): size of the noise vector; marks the model as a generator. The
  inference tower then gets ``x`` float32 N,1,1,(z_dim + y_dim), N dynamic.
- ``conditional`` (bool): whether the generator takes a label part ``y``. Default:
  True when the dataset has scalar class labels (``num_classes`` > 0), else False.
  ``y_dim`` is ``nclasses`` for a conditional model and 0 otherwise.
- ``z_distribution``: ``'normal'`` (default, N(0, 1), what DIGITS' GAN plugin draws) or
  ``'uniform'`` (U(-1, 1)); how the runtime draws z for sample grids, ``generate_classes``
  and the latent tasks. Declare it when the model samples z itself.
- ``inference_input``: ``'z'`` (default when ``z_dim`` is set) or ``'image'`` (default
  otherwise, e.g. encoders: inference ``x`` is float32 N,H,W,C images 0..255).

``nclasses`` passed to towers is the dataset's ``num_classes`` for scalar labels, or K
for attribute labels of shape 1,1,K, else None.

``loss`` is one scalar tensor (all trainable variables are optimized) or a list of
entries ``{'loss': tensor, 'vars': [variables], ...}`` with these optional keys:

- ``name``: shown in the progress bar, metrics.csv and TensorBoard (default: the loss
  tensor's op name without scopes).
- ``solver`` / ``learning_rate``: override the job's solver and base learning rate for
  this entry; the job's learning-rate policy still scales it.
- ``solver_args``: keyword arguments of this entry's tf.compat.v1.train optimizer,
  e.g. ``{'beta1': 0.5}`` for adam (defaults: TF's, momentum 0.9 for momentum/nesterov).
- ``start_step``: the entry runs only from that global step on (e.g. D pre-training:
  give the G entry ``'start_step': 300``).
- ``every``: the entry runs only on global steps where ``step % every == 0``.

Each entry has its own optimizer that updates only its ``vars`` (after the model's
``gradientUpdate`` hook). One training step is one batch and one session call: the
gradients of every active entry are computed from the same forward pass (all of them
before any update is applied), then the updates are applied one after another in list
order, then the batch-norm style ``UPDATE_OPS`` run and the global step advances by one.
Steps are counted from 0: ``start_step`` and ``every`` compare against the number of
batches already trained.
"""
import importlib.abc
import importlib.machinery
import os
import sys
from contextlib import contextmanager

VERBOSE_ENV = "DIGITS_GAN_VERBOSE"  # "1": let TensorFlow's C++ / absl start-up lines through

# TensorFlow turns its oneDNN CPU kernels on by default only on AVX-512 machines; on AVX2
# ones its plain MatMul / Conv2DBackprop* kernels make a training step about 2x slower
# (network-mnist: ~580 -> ~290 CPU ms per batch of 64). TensorFlow reads the variable once,
# when it is imported, so it is set here, before any runtime module imports TensorFlow
# (training and inference alike); an explicit TF_ENABLE_ONEDNN_OPTS=0 from the user wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# XLA auto-clusters CPU ops only with this flag, read once per process; a session still
# clusters only when its config asks (`digits-gan train --xla`), so it changes nothing else.
if "--tf_xla_cpu_global_jit" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()


def verbose():
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextmanager
def _stderr_silenced():
    """Point file descriptor 2 at /dev/null (C++ writes bypass sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _stderr_silenced():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports the `tensorflow` package with stderr silenced: its shared libraries log
    'WARNING: All log messages before absl::InitializeLog()...' and 'Could not find cuda
    drivers' before any log-level setting is read."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow" or verbose():
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow():
    """Silence TensorFlow's C++ / absl start-up lines (E0000 cuInit, CPU feature notes,
    tf.compat.v1 deprecation warnings) in this process and the processes it starts,
    unless DIGITS_GAN_VERBOSE=1 (`digits-gan --verbose`). Real failures still arrive
    as Python exceptions. Idempotent; must run before TensorFlow is imported."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


quiet_tensorflow()
