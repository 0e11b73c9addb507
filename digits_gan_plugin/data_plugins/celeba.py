"""CelebA data plugin: aligned face crops with their 40 binary attributes.

Source folder: `img_align_celeba/` (the JPEGs), `list_attr_celeba.txt` (line 1: the
image count; line 2: the attribute names; then one line per image: file name and one
value of 1 or -1 per attribute, separated by runs of spaces) and optionally
`list_eval_partition.txt` (file name and 0 train / 1 val / 2 test); without it the
images are shuffled with `seed` and split by `val_fraction`.

Feature: uint8 3,size,size RGB, the centered crop x crop square resized to size x size.
Label: float32 1,1,40 holding the raw attribute values +1 / -1 (as DIGITS' CelebA GAN
example did); `label_names` are the attribute names of the header.
An unreadable image is skipped (listed in the dataset's skipped.txt) unless `strict`.
"""
import os

import numpy as np

from ..digits_api import TEST_DB, TRAIN_DB, VAL_DB
from ..errors import DataError
from ..imaging import load_square_image
from ..options import MAX_SEED, Option
from . import GanInferenceForms, OptionsPlugin

IMAGE_DIR = "img_align_celeba"
ATTRIBUTES_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
PARTITION_STAGES = {"0": TRAIN_DB, "1": VAL_DB, "2": TEST_DB}


def read_attributes(path):
    """Parse list_attr_celeba.txt -> (names list of str, file names list, int8 N,K of ±1).

    DataError naming the line when the count line, a row's column count or a value
    disagrees with the header."""
    lines = read_text_lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path}: line 1 must be the number of images, found {lines[0].strip()[:40]!r}"
                        if lines else f"{path}: empty attribute list")
    count, names = int(lines[0]), lines[1].split()
    numbered = [(number, line) for number, line in enumerate(lines[2:], start=3) if line.strip()]
    parsed = _parse_rows_in_bulk([line for _, line in numbered], len(names))
    files, values = parsed if parsed is not None else _parse_rows_by_line(path, numbered, len(names))
    if len(files) != count:
        raise DataError(f"{path}: line 1 says {count} images, the file lists {len(files)}")
    return names, files, values


def _parse_rows_in_bulk(lines, columns):
    """(file names, int8 N,columns) of well-formed rows in one numpy text parse; None
    when anything is off (then _parse_rows_by_line finds and names the bad line).

    Every value that parses as 1 or -1 holds exactly one '1', so `columns` '1's after
    each file name and len(lines) * columns parsed values, all ±1, mean that every row
    has exactly `columns` values."""
    rows = [line.split(None, 1) for line in lines]
    if any(len(row) != 2 or row[1].count("1") != columns for row in rows):
        return None
    try:
        values = np.fromstring("\n".join(row[1] for row in rows), dtype=np.int8, sep=" ")
    except ValueError:  # a field that is not an integer
        return None
    if values.size != len(rows) * columns or not np.isin(values, (1, -1)).all():
        return None
    return [row[0] for row in rows], values.reshape(len(rows), columns)


def _parse_rows_by_line(path, numbered_lines, columns):
    """(file names, int8 N,columns) of (line number, line) rows, checked one by one:
    DataError naming the first line with a wrong column count or value."""
    files, values = [], np.empty((len(numbered_lines), columns), dtype=np.int8)
    for index, (number, line) in enumerate(numbered_lines):
        fields = line.split()
        if len(fields) != columns + 1:
            raise DataError(f"{path}: line {number} has {len(fields) - 1} attribute values, "
                            f"the header (line 2) names {columns}")
        try:
            row = [int(field) for field in fields[1:]]
        except ValueError:
            raise DataError(f"{path}: line {number}: attribute values must be 1 or -1") from None
        if any(value not in (1, -1) for value in row):
            raise DataError(f"{path}: line {number}: attribute values must be 1 or -1")
        files.append(fields[0])
        values[index] = row
    return files, values


def read_partition(path):
    """Parse list_eval_partition.txt -> {file name: stage}."""
    stages = {}
    for number, line in enumerate(read_text_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in PARTITION_STAGES:
            raise DataError(f"{path}: line {number} must be a file name and 0, 1 or 2")
        stages[fields[0]] = PARTITION_STAGES[fields[1]]
    return stages


def read_text_lines(path):
    """The lines of a UTF-8 (or ASCII) text file; DataError naming the file and the first
    line that is not UTF-8 (e.g. a Latin-1 export) or why the file cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[error.start]:02x}); "
                        f"save the list as UTF-8") from None


class DataIngestion(GanInferenceForms, OptionsPlugin):
    """CelebA faces: feature uint8 3,size,size, label float32 1,1,40 of ±1."""

    OPTIONS = [
        Option("source", str, required=True, kind="dir",
               help=f"CelebA folder holding {IMAGE_DIR}/, {ATTRIBUTES_FILE} and optionally {PARTITION_FILE}"),
        Option("crop", int, 108, min=1, help="side of the centered square crop, in source pixels"),
        Option("size", int, 64, min=1, max=1024, help="side of the output images, in pixels"),
        Option("max_images", int, 0, min=0, help="use only the first N images of the attribute list (0: all)"),
        Option("val_fraction", float, 0.1, min=0.0, max=0.9,
               help=f"share of the images put in val_db when there is no {PARTITION_FILE}"),
        Option("seed", int, 0, min=0, max=MAX_SEED, help="seed of the shuffle before the train/val split"),
        Option("strict", bool, False, help="stop at the first unreadable image instead of skipping it"),
        Option("fast_decode", bool, False,
               help="faster JPEG decoding (integer IDCT, plain chroma upsampling): 1-1.5 grey levels off on average"),
    ]
    label_names = image_dir = labels = None  # filled by _load() from the attribute list

    @staticmethod
    def get_id():
        return "celeba"

    @staticmethod
    def get_title():
        return "CelebA faces + 40 attributes (GAN)"

    def _load(self):
        attributes_path = os.path.join(self.source, ATTRIBUTES_FILE)
        image_dir = os.path.join(self.source, IMAGE_DIR)
        for path in (attributes_path, image_dir):
            if not os.path.exists(path):
                raise DataError(f"{path}: not found (expected a CelebA folder)")
        names, files, values = read_attributes(attributes_path)
        if self.max_images:
            files, values = files[:self.max_images], values[:self.max_images]
        self.label_names = names
        self.image_dir = image_dir
        self.labels = dict(zip(files, values.astype(np.float32)[:, None, None, :]))  # 1,1,K views
        partition_path = os.path.join(self.source, PARTITION_FILE)
        if os.path.isfile(partition_path):
            partition = read_partition(partition_path)
            missing = [name for name in files if name not in partition]
            if missing:
                raise DataError(f"{partition_path}: no partition for {missing[0]} ({len(missing)} images missing)")
            self.stage_entries = {stage: [name for name in files if partition[name] == stage]
                                  for stage in PARTITION_STAGES.values()}
        else:
            self.stage_entries = self.split_train_val(files)

    def encode_entry(self, entry):
        try:
            pixels = load_square_image(os.path.join(self.image_dir, entry), self.size, crop=self.crop,
                                       fast_decode=self.fast_decode)
        except DataError:
            if self.strict:
                raise
            return []
        return pixels.transpose(2, 0, 1), self.labels[entry]

    def training_shape(self):
        return self.size, 3, 0  # the attributes are labels, not a conditioning one-hot
