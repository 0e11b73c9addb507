"""The web UI's own forms (plugins bring theirs): job name, new model."""
import wtforms
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import validators

from ..runtime.schedules import SOLVERS

CUSTOM = "custom"


class JobNameForm(FlaskForm):
    job_name = wtforms.StringField("Dataset name", validators=[validators.DataRequired(), validators.Length(max=80)])


class NewModelForm(FlaskForm):
    """Choices (datasets, networks, weights) are filled in per request."""

    job_name = wtforms.StringField("Model name", validators=[validators.DataRequired(), validators.Length(max=80)])
    dataset = wtforms.SelectField("Dataset", validators=[validators.DataRequired()])
    network = wtforms.SelectField("Model definition", validators=[validators.DataRequired()])
    custom_network = wtforms.TextAreaField("Custom network (Python: class UserModel(Tower))",
                                           validators=[validators.Optional()])
    custom_file = FileField("... or upload a network-*.py file")
    solver = wtforms.SelectField("Solver", choices=[(s, s) for s in SOLVERS], default="adam")
    lr = wtforms.FloatField("Base learning rate", default=2e-4,
                            validators=[validators.InputRequired(), validators.NumberRange(min=0, max=10)])
    epochs = wtforms.IntegerField("Training epochs", default=10,
                                  validators=[validators.InputRequired(), validators.NumberRange(min=1, max=100000)])
    batch_size = wtforms.IntegerField("Batch size", default=64,
                                      validators=[validators.InputRequired(), validators.NumberRange(min=1, max=4096)])
    max_steps = wtforms.IntegerField("Max steps (optional)",
                                     validators=[validators.Optional(), validators.NumberRange(min=1)])
    seed = wtforms.IntegerField("Random seed (optional)", validators=[validators.Optional(), validators.NumberRange(min=0)])
    weights = wtforms.SelectField("Pretrained weights (optional)", default="")
