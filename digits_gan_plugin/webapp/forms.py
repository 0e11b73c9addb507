"""The web UI's own forms (plugins bring theirs): job name, new model. The training
options of the new-model form come from the one declaration, TRAIN_OPTIONS."""
import wtforms
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import validators

from .. import options
from ..runtime.train_options import TRAIN_OPTIONS
from .jobs import MAX_NAME_CHARS
from .safety import MAX_SOURCE_CHARS

CUSTOM = "custom"
# Options the form shows in its own way (dataset and network pickers, the weights list).
PICKED = ("dataset", "network", "weights")
# Shown under "Solver options"; the others under "Advanced".
MAIN_TRAIN_OPTIONS = ("epochs", "batch_size", "max_steps", "solver", "lr", "seed", "keep")
FORM_TRAIN_OPTIONS = [option for option in TRAIN_OPTIONS if option.name not in PICKED]


class JobNameForm(FlaskForm):
    job_name = wtforms.StringField("Dataset name", validators=[validators.DataRequired(),
                                                               validators.Length(max=MAX_NAME_CHARS)])


class NewModelForm(FlaskForm):
    """Choices (datasets, networks, weights) are filled in per request."""

    job_name = wtforms.StringField("Model name", validators=[validators.DataRequired(),
                                                             validators.Length(max=MAX_NAME_CHARS)])
    dataset = wtforms.SelectField("Dataset", validators=[validators.DataRequired()])
    network = wtforms.SelectField("Model definition", validators=[validators.DataRequired()])
    custom_network = wtforms.TextAreaField("Custom network (Python: class UserModel(Tower))",
                                           validators=[validators.Optional(), validators.Length(max=MAX_SOURCE_CHARS)])
    custom_file = FileField("... or upload a network-*.py file")
    weights = wtforms.SelectField("Pretrained weights (optional)", default="")


def train_options_form():
    """The training options' form (one field per option, bounds from the declaration)."""
    return options.make_wtform(FORM_TRAIN_OPTIONS)(meta={"csrf": False})


def train_values(form):
    """{option name: value} of the filled-in training fields (empty ones left out)."""
    return {option.name: form[option.name].data for option in FORM_TRAIN_OPTIONS
            if form[option.name].data not in (None, "")}
