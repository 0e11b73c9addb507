"""The ``digits`` module that model files see: DIGITS' ``digits.tools.tf.utils``.

Stage names and small helpers. TensorFlow is imported inside the helpers, so importing
this module stays cheap. When a real DIGITS install is importable, model files get
DIGITS' own module instead (see ``model_files.digits_module``).
"""
STAGE_TRAIN = "train"
STAGE_VAL = "val"
STAGE_INF = "inf"


def _tf():
    import tensorflow.compat.v1 as tf

    return tf


def classification_loss(pred, y):
    """Mean softmax cross-entropy. pred: float N,K logits; y: int N class ids."""
    tf = _tf()
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(logits=pred, labels=y))


def mse_loss(lhs, rhs):
    """Mean squared difference of two same-shape tensors."""
    tf = _tf()
    return tf.reduce_mean(tf.square(lhs - rhs))


def constrain(x, mini=-1.0, maxi=1.0):
    """Clip x element-wise to [mini, maxi]."""
    return _tf().clip_by_value(x, mini, maxi)


def classification_accuracy_top_n(pred, y, top_n):
    """Fraction of rows whose label y (int N) is among the top_n logits of pred (N,K)."""
    tf = _tf()
    return tf.reduce_mean(tf.cast(tf.nn.in_top_k(pred, y, top_n), tf.float32))


def classification_accuracy(pred, y):
    """Fraction of rows whose argmax of pred (N,K) equals y (int N)."""
    return classification_accuracy_top_n(pred, y, 1)


def nhwc_to_nchw(x):
    """N,H,W,C -> N,C,H,W."""
    return _tf().transpose(x, [0, 3, 1, 2])


def nchw_to_nhwc(x):
    """N,C,H,W -> N,H,W,C."""
    return _tf().transpose(x, [0, 2, 3, 1])


def hwc_to_chw(x):
    """H,W,C -> C,H,W."""
    return _tf().transpose(x, [2, 0, 1])


def chw_to_hwc(x):
    """C,H,W -> H,W,C."""
    return _tf().transpose(x, [1, 2, 0])


def bgr_to_rgb(x):
    """Reverse the last (channel) axis: BGR <-> RGB, any rank."""
    return _tf().reverse(x, axis=[-1])


def rgb_to_bgr(x):
    """Reverse the last (channel) axis: RGB <-> BGR, any rank."""
    return _tf().reverse(x, axis=[-1])


def batch_norm(x, is_training, scope, decay=0.9, epsilon=1e-5):
    """Batch normalization over all axes but the last, with learned scale and offset.

    x: float N,...,C. While training, normalizes with the batch statistics and adds the
    moving-average updates to ``tf.GraphKeys.UPDATE_OPS`` (the trainer runs them with
    every step); otherwise normalizes with the moving averages. Variables live in
    ``scope``: beta, gamma (trainable), moving_mean, moving_variance. The same code as
    ``tf.contrib.layers.batch_norm`` here (``tf1_compat.batch_norm``).
    """
    from .tf1_compat import batch_norm as contrib_batch_norm

    return contrib_batch_norm(x, decay=decay, scale=True, epsilon=epsilon, is_training=is_training, scope=scope)
