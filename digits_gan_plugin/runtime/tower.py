"""``Tower`` and ``model_property``: the base class and decorator every model file uses.

Identical in behaviour to DIGITS' ``digits/tools/tf/model.py`` so model files paste
between the two. Plain Python: importing this module does not import TensorFlow.
"""
import functools


def model_property(function):
    """Turn a method into a lazily-built, cached property: its graph is built once,
    on first access, and the same tensors are returned afterwards."""
    attribute = "_cache_" + function.__name__

    @property
    @functools.wraps(function)
    def cached(self):
        if not hasattr(self, attribute):
            setattr(self, attribute, function(self))
        return getattr(self, attribute)

    return cached


class Tower:
    """One copy of the network, built on one input batch.

    x: float32 N,H,W,C images 0..255 when training/validating; float32 N,1,1,D vectors
       (D = z_dim + y_dim) at inference for generators.
    y: int64 (N,) class labels, float32 N,1,1,K attribute labels, or None.
    input_shape: [H, W, C] of the training images (also at inference, so a generator
       knows its output size).
    nclasses: number of classes / attributes of the dataset, or None.
    is_training / is_inference: Python bools saying which tower this is.
    """

    def __init__(self, x, y, input_shape, nclasses, is_training, is_inference):
        self.x = x
        self.y = y
        self.input_shape = input_shape
        self.nclasses = nclasses
        self.is_training = is_training
        self.is_inference = is_inference
        self.summaries = []
        self.train = None

    def gradientUpdate(self, grads_and_vars):  # noqa: N802 - DIGITS' name
        """Hook to modify each loss entry's (gradient, variable) list; identity here."""
        return grads_and_vars
