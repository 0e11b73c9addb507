"""Image-folder data plugin: any folder of images (e.g. SVHN exported to PNG).

Either images directly in `source` (no labels), or class sub-folders of images: the
sub-folder names are the classes (label = index in imaging.list_labelled_images'
order: numbers by value, then names; images directly in `source` are then left out).
The class names go into dataset.json, so the set's classes can be named later (e.g. to
encode a folder of `cats/ dogs/` with their class ids). Each image is center cropped to
a square and resized to size x size, grey (1 channel) or RGB (3); 16-bit images are
scaled to 8 bits. The images are shuffled with `seed` and split by `val_fraction`.
"""
from ..errors import DataError
from ..imaging import list_labelled_images, load_square_image
from ..options import MAX_SEED, Option
from . import GanInferenceForms, OptionsPlugin, class_label, no_label

MODES = {"grey": "L", "rgb": "RGB"}


class DataIngestion(GanInferenceForms, OptionsPlugin):
    """Feature uint8 C,size,size (C 1 for grey, 3 for rgb); label: int64 [class], or
    np.array([0]) without classes (then has_labels is False)."""

    OPTIONS = [
        Option("source", str, required=True, kind="dir",
               help="folder of images, or of class sub-folders of images (the folder names are the classes)"),
        Option("size", int, 64, min=1, max=1024, help="side of the square output images, in pixels"),
        Option("channels", str, "rgb", choices=tuple(MODES), help="grey: 1 channel, rgb: 3 channels"),
        Option("val_fraction", float, 0.1, min=0.0, max=0.9, help="share of the images put in val_db"),
        Option("seed", int, 0, min=0, max=MAX_SEED, help="seed of the shuffle before the train/val split"),
    ]
    label_names = num_classes = None  # filled by _load() from the class sub-folders

    @staticmethod
    def get_id():
        return "imagefolder"

    @staticmethod
    def get_title():
        return "Folder of images (GAN)"

    def _load(self):
        paths, labels, names = list_labelled_images(self.source)
        self.label_names = names
        self.num_classes = len(names) if names else None
        self.has_labels = names is not None
        if names is None:
            entries = [(path, None) for path in paths]
        else:
            entries = [(path, label) for path, label in zip(paths, labels) if label >= 0]
        if not entries:
            raise DataError(f"{self.source}: no images (directly or in class sub-folders)")
        self.stage_entries = self.split_train_val(entries)

    def encode_entry(self, entry):
        path, label = entry
        pixels = load_square_image(path, self.size, mode=MODES[self.channels])
        return pixels.transpose(2, 0, 1), (no_label() if label is None else class_label(label))

    def training_shape(self):
        channels = 1 if self.channels == "grey" else 3
        try:
            _, _, names = list_labelled_images(self.source)
        except (DataError, OSError, TypeError):  # the source may be gone by inference time
            names = None
        return self.size, channels, len(names or ())
