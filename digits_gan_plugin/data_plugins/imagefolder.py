"""Image-folder data plugin: any folder of images (e.g. SVHN exported to PNG).

Either images directly in `source` (no labels), or class sub-folders of images: the
sub-folder names, sorted, are the classes (label = index in that order). Each image is
center cropped to a square and resized to size x size, grey (1 channel) or RGB (3).
The images are shuffled with `seed` and split by `val_fraction`.
"""
import os

import numpy as np

from ..errors import DataError
from ..imaging import list_image_files, load_square_image
from ..options import Option
from . import OptionsPlugin

MODES = {"grey": "L", "rgb": "RGB"}


class DataIngestion(OptionsPlugin):
    """Feature uint8 C,size,size (C 1 for grey, 3 for rgb); label: class index or none."""

    OPTIONS = [
        Option("source", str, required=True, kind="dir",
               help="folder of images, or of class sub-folders of images (names sorted = class order)"),
        Option("size", int, 64, min=1, max=1024, help="side of the square output images, in pixels"),
        Option("channels", str, "rgb", choices=tuple(MODES), help="grey: 1 channel, rgb: 3 channels"),
        Option("val_fraction", float, 0.1, min=0.0, max=0.9, help="share of the images put in val_db"),
        Option("seed", int, 0, help="seed of the shuffle before the train/val split"),
    ]

    @staticmethod
    def get_id():
        return "imagefolder"

    @staticmethod
    def get_title():
        return "Folder of images (GAN)"

    def _load(self):
        class_dirs = sorted(name for name in os.listdir(self.source)
                            if os.path.isdir(os.path.join(self.source, name))
                            and list_image_files(os.path.join(self.source, name)))
        if class_dirs:
            self.label_names = class_dirs
            entries = [(path, label) for label, name in enumerate(class_dirs)
                       for path in list_image_files(os.path.join(self.source, name))]
        else:
            self.label_names = None
            entries = [(path, None) for path in list_image_files(self.source)]
        if not entries:
            raise DataError(f"{self.source}: no images (directly or in class sub-folders)")
        self.stage_entries = self.split_train_val(entries)

    def encode_entry(self, entry):
        path, label = entry
        pixels = load_square_image(path, self.size, mode=MODES[self.channels])
        return pixels.transpose(2, 0, 1), (None if label is None else np.int64(label))
