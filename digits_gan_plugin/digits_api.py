"""The DIGITS plugin contract, with bundled stand-ins when DIGITS is not installed.

Inside a DIGITS install our plugins subclass DIGITS' own interfaces so DIGITS accepts
them; everywhere else they subclass the bundled classes below, which have the same
methods and semantics as DIGITS' (digits/extensions/{data,view}/interface.py): the data
base drops `is_inference_db`, the view base takes keyword arguments only.
tests/digits_host/ runs the plugins against its own copy of DIGITS' classes.
"""

try:  # pragma: no cover - exercised only inside a DIGITS install
    from digits.extensions.data.interface import DataIngestionInterface
except ImportError:

    class DataIngestionInterface:
        """A data plugin: turns source files into (feature, label) entries."""

        def __init__(self, is_inference_db=False, **kwargs):
            # userdata is the only state DIGITS persists with the dataset job; the
            # inference flag is not part of it (a plugin that needs it keeps it).
            self.userdata = kwargs
            for key, value in kwargs.items():
                setattr(self, key, value)

        def encode_entry(self, entry):
            """Return a (feature, label) pair of numpy arrays, or a list of pairs.
            Features are C,H,W; labels a size-1 array or a 3-D array."""
            raise NotImplementedError

        @staticmethod
        def get_category():
            raise NotImplementedError

        @staticmethod
        def get_id():
            raise NotImplementedError

        @staticmethod
        def get_dataset_form():
            raise NotImplementedError

        @staticmethod
        def get_dataset_template(form):
            """Return (jinja_template_text, context_dict) rendering the dataset form."""
            raise NotImplementedError

        def get_inference_form(self):
            return None

        @staticmethod
        def get_inference_template(form):
            return None, None

        @staticmethod
        def get_title():
            raise NotImplementedError

        @staticmethod
        def get_default_visibility():
            return True

        def get_user_data(self):
            return self.userdata

        def itemize_entries(self, stage):
            """Return the list of entry ids of `stage` (called once, main thread)."""
            raise NotImplementedError


try:  # pragma: no cover
    from digits.extensions.view.interface import VisualizationInterface
except ImportError:

    class VisualizationInterface:
        """A view plugin: renders one network output per inference input."""

        def __init__(self, **kwargs):
            pass

        @staticmethod
        def get_config_form():
            raise NotImplementedError

        @staticmethod
        def get_config_template(form):
            raise NotImplementedError

        @staticmethod
        def get_default_visibility():
            return True

        @staticmethod
        def get_dirname():
            raise NotImplementedError

        def get_header_template(self):
            """(template, context) drawn once above the items, or (None, None)."""
            return None, None

        def get_ng_templates(self):
            """(app_begin, app_end) AngularJS templates around the page, or (None, None)."""
            return None, None

        @staticmethod
        def get_id():
            raise NotImplementedError

        def get_summary_template(self):
            # In DIGITS' interface but never called by its views: draw nothing only here.
            return None, None

        @staticmethod
        def get_title():
            raise NotImplementedError

        def get_view_template(self, data):
            raise NotImplementedError

        def process_data(self, input_id, input_data, output_data):
            raise NotImplementedError


try:  # pragma: no cover
    from digits.constants import TEST_DB, TRAIN_DB, VAL_DB
except ImportError:
    TRAIN_DB, VAL_DB, TEST_DB = "train_db", "val_db", "test_db"

STAGES = (TRAIN_DB, VAL_DB, TEST_DB)
