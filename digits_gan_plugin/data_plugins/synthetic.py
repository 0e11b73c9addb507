"""Synthetic data plugin: small deterministic image sets for smoke runs, tests and
benchmarks (``digits-gan dataset create synthetic --out DIR``).

Entry i of a stage is drawn from a generator seeded with (seed, stage, i), so a set
is the same on every machine and with any number of workers. Patterns:
- noise: uniform random pixels 0..255;
- ramp: a flat image of grey (i * step) mod 256 (easy to check by eye and in tests);
- classes: noise 0..59 plus a brightness that grows with the class (classes that a
  tiny model can tell apart).
Labels: with `classes` the class i mod classes; with `attributes` K random values of
+-1 (1,1,K, named attr0, attr1, ...); otherwise none.
"""
import numpy as np

from ..digits_api import STAGES, TEST_DB, TRAIN_DB, VAL_DB
from ..errors import DataError
from ..options import MAX_SEED, Option
from . import GanInferenceForms, OptionsPlugin, class_label, no_label

PATTERNS = ("noise", "ramp", "classes")
MAX_COUNT = 10_000_000  # images per stage (a synthetic set is for tests and benchmarks)


class DataIngestion(GanInferenceForms, OptionsPlugin):
    """Feature uint8 channels,size,size; label int64 [class], float32 1,1,K of +-1,
    or np.array([0]) (no label)."""

    OPTIONS = [
        Option("size", int, 8, min=1, max=1024, help="side of the square images, in pixels"),
        Option("channels", int, 1, choices=(1, 3), help="1: grey, 3: RGB"),
        Option("classes", int, 0, min=0, max=1000, help="number of classes (label: entry index mod classes); "
                                                         "0: no class labels"),
        Option("attributes", int, 0, min=0, max=1000, help="number of +-1 attributes per image (1,1,K labels), "
                                                            "instead of classes; 0: none"),
        Option("train_count", int, 64, min=1, max=MAX_COUNT, help="number of images in train_db"),
        Option("val_count", int, 16, min=0, max=MAX_COUNT, help="number of images in val_db"),
        Option("test_count", int, 0, min=0, max=MAX_COUNT, help="number of images in test_db"),
        Option("pattern", str, "noise", choices=PATTERNS,
               help="noise: random pixels; ramp: flat grey (index x step) mod 256; classes: brighter per class"),
        Option("step", int, 1, min=0, max=255, help="ramp: grey step from one image to the next"),
        Option("seed", int, 0, min=0, max=MAX_SEED, help="seed of the random pixels and attributes"),
        Option("names", str, "", help="comma-separated names of the classes or attributes "
                                      "(default: 0, 1, ... or attr0, attr1, ...)"),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.classes and self.attributes:
            raise DataError("options classes and attributes: give one of them (or neither)")
        self.has_labels = bool(self.classes or self.attributes)
        self.num_classes = self.classes or None
        names = [name.strip() for name in self.names.split(",") if name.strip()]
        if names and len(names) != (self.classes or self.attributes):
            raise DataError(f"option names: {len(names)} names for {self.classes or self.attributes} "
                            f"{'classes' if self.classes else 'attributes'}")
        if self.attributes:
            self.label_names = names or [f"attr{index}" for index in range(self.attributes)]
        else:
            self.label_names = (names or [str(index) for index in range(self.classes)]) if self.classes else None

    @staticmethod
    def get_id():
        return "synthetic"

    @staticmethod
    def get_title():
        return "Synthetic images (smoke runs and tests)"

    def itemize_entries(self, stage):
        count = {TRAIN_DB: self.train_count, VAL_DB: self.val_count, TEST_DB: self.test_count}[stage]
        return [(STAGES.index(stage), index) for index in range(count)]

    def encode_entry(self, entry):
        stage_index, index = entry
        rng = np.random.default_rng([self.seed, stage_index, index])
        shape = (self.channels, self.size, self.size)
        label = index % self.classes if self.classes else 0
        if self.pattern == "ramp":
            image = np.full(shape, (index * self.step) % 256, np.uint8)
        elif self.pattern == "classes":
            brightness = 195 * label // max(1, self.classes - 1)
            image = (rng.integers(0, 60, shape) + brightness).astype(np.uint8)
        else:
            image = rng.integers(0, 256, shape).astype(np.uint8)
        if self.attributes:
            return image, rng.choice([-1.0, 1.0], (1, 1, self.attributes)).astype(np.float32)
        return image, (class_label(label) if self.classes else no_label())

    def training_shape(self):
        return self.size, self.channels, self.classes
