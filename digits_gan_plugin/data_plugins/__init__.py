"""Data plugins (DIGITS `digits.plugins.data`) and the registry the CLI finds them in.

Every module of this package defines one plugin class named `DataIngestion`; the same
classes are registered as setuptools entry points in setup.py. Third-party plugins
installed under the `digits.plugins.data` entry-point group are found as well.
No module here may import TensorFlow at module level.
"""
import functools
import importlib
import pkgutil

import numpy as np

from ..digits_api import TRAIN_DB, VAL_DB, DataIngestionInterface
from ..errors import DataError
from .. import options as _options

ENTRY_POINT_GROUP = "digits.plugins.data"


def class_label(class_id):
    """The label of an entry of class `class_id`, as DIGITS' writer takes it: a size-1
    1-D array (its one value becomes the Datum's label)."""
    return np.array([int(class_id)], dtype=np.int64)


def no_label():
    """The label of an entry without one: `np.array([0])`, as DIGITS' own GAN plugin
    returns (DIGITS' writer needs an array). A plugin whose entries carry none says so
    with `has_labels = False`, so dataset.json records no labels rather than class 0."""
    return np.array([0], dtype=np.int64)


class OptionsPlugin(DataIngestionInterface):
    """A data plugin whose options are declared once in `OPTIONS` (a list of
    options.Option): they are validated in __init__ (kept in `userdata` and as
    attributes, per the DIGITS contract), offered as CLI flags, and rendered as the
    DIGITS dataset form with the shared template.

    `is_inference_db` is kept in `userdata` (and as an attribute): DIGITS' base class
    drops it, and DIGITS builds the inference dataset from the class and the userdata
    alone. An inference instance skips the checks of the training options (their
    sources need not exist any more)."""

    OPTIONS = []
    has_labels = True
    stage_entries = None  # {stage: entries}, filled once by _load() (lazily: see itemize_entries)

    def __init__(self, is_inference_db=False, **kwargs):
        if is_inference_db:
            values = {option.name: option.default for option in self.OPTIONS}
            values.update(kwargs)
        else:
            values = _options.resolve(self.OPTIONS, kwargs)
        super().__init__(**values)
        self.is_inference_db = bool(is_inference_db)
        self.userdata["is_inference_db"] = self.is_inference_db

    @classmethod
    def get_dataset_form(cls):
        return _options.make_wtform(cls.OPTIONS)()

    @staticmethod
    def get_dataset_template(form):
        return _options.template_text(), {"form": form}

    def get_inference_form(self):
        """None: no inference form (DIGITS' own base raises NotImplementedError here,
        which would break the model page of a model trained on this dataset)."""
        return None

    @staticmethod
    def get_inference_template(form):
        return None, None

    @staticmethod
    def get_category():
        return "Images"

    def itemize_entries(self, stage):
        """The entries of `stage`. Plugins that read their sources first define `_load()`,
        which sets `self.stage_entries` {stage: list}; it runs once, on the main thread."""
        if self.stage_entries is None:
            self._load()
        return self.stage_entries.get(stage, [])

    def split_train_val(self, items):
        """{train_db, val_db}: `items` shuffled with `self.seed`; round(val_fraction x N)
        of them go to val_db."""
        order = np.random.default_rng(self.seed).permutation(len(items))
        val_count = int(round(len(items) * self.val_fraction))
        return {TRAIN_DB: [items[i] for i in order[val_count:]], VAL_DB: [items[i] for i in order[:val_count]]}


class GanInferenceForms:
    """Mixin for the data plugins of GAN training sets (list it before OptionsPlugin):
    offers the GAN inference form on the pages of models trained on their datasets.

    DIGITS builds the model's dataset plugin with the dataset's userdata plus
    ``is_inference_db=True``, renders its `get_inference_form` / `get_inference_template`,
    adds the submitted fields to its userdata and builds the inference dataset (test_db)
    with that same class. Each of those steps is handed to the gan-inference plugin: the
    subclass's own `itemize_entries` / `encode_entry` are wrapped to delegate when
    `is_inference_db` is set. The form comes filled with what the training set tells
    (classes, image size; z size as in DIGITS' examples), for models trained in DIGITS
    whose job folders hold no digits-gan config.json.

    Subclasses define `training_shape()` -> (image side, channels, classes) of their set."""

    DELEGATED = ("itemize_entries", "encode_entry")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls.DELEGATED:
            method = getattr(cls, name)
            if not getattr(method, "delegates_to_gan_inference", False):
                setattr(cls, name, _delegating(method))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gan_inference = None
        self._has_labels = True  # subclasses set has_labels = False for sets without labels

    @property
    def has_labels(self):
        """Whether the entries carry labels: the inference plugin's answer when delegating."""
        return self.inference_plugin().has_labels if self.is_inference_db else self._has_labels

    @has_labels.setter
    def has_labels(self, value):
        self._has_labels = bool(value)

    def inference_defaults(self):
        """The gan-inference fields this training set fills in."""
        from .gan_inference import DIGITS_Z_DIM

        size, channels, classes = self.training_shape()
        return {"z_dim": DIGITS_Z_DIM, "model_classes": classes, "image_size": size, "image_channels": channels}

    def get_inference_form(self):
        from .gan_inference import DataIngestion as GanInference

        form = GanInference.get_dataset_form()
        for name, value in self.inference_defaults().items():
            field = getattr(form, name)
            if not field.raw_data:  # not submitted: show the training set's value
                field.data = value
        return form

    @staticmethod
    def get_inference_template(form):
        from .gan_inference import DataIngestion as GanInference

        return GanInference.get_inference_template(form)

    def inference_plugin(self):
        """The gan-inference plugin built from the inference form's fields in userdata
        (the training set's defaults where a field is absent)."""
        if self.gan_inference is None:
            from .gan_inference import DataIngestion as GanInference

            names = {option.name for option in GanInference.OPTIONS}
            fields = self.inference_defaults()
            fields.update((k, v) for k, v in self.userdata.items() if k in names)
            self.gan_inference = GanInference(**fields)
        return self.gan_inference


def _delegating(method):
    """`method` of a GanInferenceForms plugin, run by its inference plugin when the
    instance was built with is_inference_db."""
    @functools.wraps(method)
    def delegate(self, *args):
        if self.is_inference_db:
            return getattr(self.inference_plugin(), method.__name__)(*args)
        return method(self, *args)

    delegate.delegates_to_gan_inference = True
    return delegate


def _package_plugins():
    found = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        plugin = getattr(module, "DataIngestion", None)
        if plugin is not None:
            found.append(plugin)
    return found


def _entry_point_plugins():
    from importlib.metadata import entry_points

    found = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.value.startswith(__name__ + "."):
            continue  # already found in this package
        found.append(entry_point.load())
    return found


def available_plugins():
    """{plugin id: plugin class} of this package's plugins and installed ones."""
    return {plugin.get_id(): plugin for plugin in _package_plugins() + _entry_point_plugins()}


def get_plugin(plugin_id):
    """The plugin class with this id; DataError listing the known ids otherwise."""
    plugins = available_plugins()
    if plugin_id not in plugins:
        raise DataError(f"unknown data plugin {plugin_id!r}: expected one of {', '.join(sorted(plugins))}")
    return plugins[plugin_id]
