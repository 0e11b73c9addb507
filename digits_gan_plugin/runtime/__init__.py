"""Training and inference runtime for DIGITS-style model-definition files.

Importing this package does not import TensorFlow; ``trainer`` and ``inference`` do,
inside the functions that need it.

Modules: ``model_files`` (find / execute ``network-*.py``), ``tower`` (``Tower``,
``model_property``), ``digits_helpers`` (the ``digits`` module model files see),
``schedules`` (solvers and learning-rate policies), ``graph`` (towers and update ops),
``trainer`` (the training loop), ``jobdir`` (the job directory layout, checkpoints,
metrics.csv), ``vectors`` (z sampling, one-hot labels, sample-grid vectors), ``charts``
(the loss-curve PNG), ``inference`` (``load_generator``, ``generate_classes``,
``digits-gan infer``), ``cli`` (``digits-gan train / infer / models``).

Model contract beyond DIGITS' (full text: docs/model_files.md)
----------------------------------------------------------------
Class attributes a ``UserModel`` may set:

- ``z_dim`` (int): size of the noise vector; marks the model as a generator. The
  inference tower then gets ``x`` float32 N,1,1,(z_dim + y_dim), N dynamic.
- ``conditional`` (bool): whether the generator takes a label part ``y``. Default:
  True when the dataset has scalar class labels (``num_classes`` > 0), else False.
  ``y_dim`` is ``nclasses`` for a conditional model and 0 otherwise.
- ``z_distribution``: ``'uniform'`` (default, U(-1, 1), as DIGITS' GAN) or ``'normal'``;
  how the runtime draws z for sample grids and ``generate_classes``.
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
import os

# TensorFlow turns its oneDNN CPU kernels on by default only on AVX-512 machines; on AVX2
# ones its plain MatMul / Conv2DBackprop* kernels make a training step about 2x slower
# (network-mnist: ~580 -> ~290 CPU ms per batch of 64). TensorFlow reads the variable once,
# when it is imported, so it is set here, before any runtime module imports TensorFlow
# (training and inference alike); an explicit TF_ENABLE_ONEDNN_OPTS=0 from the user wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
