"""1-D Gaussian data plugin: the toy data set of John Glover's AYLIEN GAN tutorial
("An introduction to Generative Adversarial Networks (with code in TensorFlow)").

Each entry is one sample of N(mean, std) stored as a float32 1x1x1 feature (the Datum's
`float_data`) without a label; `network-gaussian-1d.py` learns to generate them.
The samples are drawn once per stage from a generator seeded with `seed` and the stage.
"""
import numpy as np

from ..digits_api import STAGES, TRAIN_DB, VAL_DB
from ..options import MAX_SEED, Option
from . import OptionsPlugin, no_label


class DataIngestion(OptionsPlugin):
    """Samples of N(mean, std): feature float32 1,1,1, no label (np.array([0]))."""

    OPTIONS = [
        Option("train_count", int, 10000, min=1, help="number of samples in train_db"),
        Option("val_count", int, 1000, min=0, help="number of samples in val_db"),
        Option("mean", float, 4.0, help="mean of the Gaussian"),
        Option("std", float, 0.5, min=0.0, help="standard deviation of the Gaussian"),
        Option("seed", int, 0, min=0, max=MAX_SEED, help="seed of the random samples"),
    ]
    label_names = None
    num_classes = None
    has_labels = False

    @staticmethod
    def get_id():
        return "gaussian"

    @staticmethod
    def get_title():
        return "1-D Gaussian samples (GAN toy)"

    @staticmethod
    def get_category():
        return "Generic"

    def itemize_entries(self, stage):
        """The stage's samples themselves (Python floats), so encoding needs no state."""
        count = {TRAIN_DB: self.train_count, VAL_DB: self.val_count}.get(stage, 0)
        rng = np.random.default_rng([self.seed, STAGES.index(stage)])
        return rng.normal(self.mean, self.std, count).tolist()

    def encode_entry(self, entry):
        return np.full((1, 1, 1), entry, dtype=np.float32), no_label()
