"""One definition of a plugin's options, rendered both as CLI flags and as a WTForms form.

A plugin lists `OPTIONS = [Option(...), ...]`; `add_to_argparse` turns them into
`--flags`, `make_wtform` into the form DIGITS shows (WTForms is imported only there, so
the core and the CLI need no web stack), and `resolve` validates keyword arguments
(from either source, or from Python) into a complete dict of values.
"""
import argparse
import math
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import DataError

PATH_KINDS = ("path", "dir", "file")


@dataclass(frozen=True)
class Option:
    """One option.

    type: int, float, str or bool. kind: None, or 'path' (file or folder), 'dir' or
    'file' for str options naming something on disk (checked to exist when given).
    An empty string or None means "not given" for non-required options.
    is_list: the value is a tuple of `type` (comma-separated on the command line and in
    forms, e.g. "100,200"). min/max bound numbers (each list item); above / below: bounds the
    value must exceed / stay under (e.g. above 0 for a learning rate). Floats must be finite.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: Optional[Sequence[Any]] = None
    required: bool = False
    min: Optional[float] = None
    max: Optional[float] = None
    kind: Optional[str] = None
    is_list: bool = False
    above: Optional[float] = None
    below: Optional[float] = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def convert(self, value):
        """Validate and convert one value; raises DataError naming the option."""
        if value is None or (value == "" and (self.type is not str or self.kind or self.is_list)):
            if self.required:
                raise DataError(f"option {self.name}: a value is required ({self.help})")
            return self.default
        if self.is_list:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise DataError(f"option {self.name}: expected a comma-separated list, got {value!r}")
            return tuple(self._convert_one(item.strip() if isinstance(item, str) else item)
                         for item in items if not (isinstance(item, str) and not item.strip()))
        return self._convert_one(value)

    def _convert_one(self, value):
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "y", "n", "on", "off"):
                    raise DataError(f"option {self.name}: {value!r} is not a yes/no value")
                value = value.lower() in ("1", "true", "yes", "y", "on")
            return bool(value)
        value = self._typed(value)
        if self.choices is not None and value not in self.choices:
            raise DataError(f"option {self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min:
            raise DataError(f"option {self.name}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise DataError(f"option {self.name}: {value} is above the maximum {self.max}")
        if self.above is not None and not value > self.above:
            raise DataError(f"option {self.name}: expected a number > {self.above}, got {value}")
        if self.below is not None and not value < self.below:
            raise DataError(f"option {self.name}: expected a number < {self.below}, got {value}")
        if self.kind in PATH_KINDS:
            value = os.path.expanduser(value)
            exists = {"path": os.path.exists, "dir": os.path.isdir, "file": os.path.isfile}[self.kind]
            if not exists(value):
                noun = {"path": "file or folder", "dir": "folder", "file": "file"}[self.kind]
                raise DataError(f"option {self.name}: {value}: no such {noun}")
        return value

    def _typed(self, value):
        """`value` as self.type: ints refuse fractions and booleans, floats must be finite."""
        invalid = DataError(f"option {self.name}: {value!r} is not a valid {self.type.__name__}")
        if isinstance(value, bool) and self.type is not str:
            raise invalid
        try:
            if self.type is int and isinstance(value, float):
                if not value.is_integer():
                    raise invalid
                return int(value)
            value = self.type(value)
        except (TypeError, ValueError, OverflowError):
            raise invalid from None
        if self.type is float and not math.isfinite(value):
            raise DataError(f"option {self.name}: expected a finite number, got {value}")
        return value

    def describe_default(self):
        """The default as a user types it ('' when there is none)."""
        if self.default in (None, "", ()):
            return ""
        if self.is_list:
            return ",".join(map(str, self.default))
        return str(self.default)


def int_list(text):
    """argparse type: comma-separated integers."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None



# Form labels spelled out where the option's name is an abbreviation ("Lr", "Xla").
SPELLED_OUT_LABELS = {"lr": "Learning rate", "lr_policy": "Learning-rate policy", "keep": "Checkpoints to keep",
                      "xla": "XLA", "ema_decay": "EMA decay", "digits_semantics": "DIGITS semantics"}
MAX_SEED = 2**31 - 1  # TensorFlow's graph seeds are int32; numpy takes no negative seed


def _int_from(low, high, expected):
    """argparse type: an integer from `low` to `high` (None: no upper bound)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


seed_int = _int_from(0, MAX_SEED, f"a seed from 0 to {MAX_SEED}")
positive_int = _int_from(1, None, "an integer >= 1")


def resolve(options, values):
    """Validated values for every option: `values` (a dict, e.g. plugin kwargs) completed
    with defaults. Unknown keys are kept unchanged (DIGITS passes extra form fields)."""
    resolved = dict(values)
    for option in options:
        resolved[option.name] = option.convert(values.get(option.name))
    return resolved


def _argparse_type(option):
    def convert(text):
        try:
            return option.convert(text)
        except DataError as error:
            raise argparse.ArgumentTypeError(str(error).split(": ", 1)[1]) from None

    convert.__name__ = option.type.__name__
    return convert


class YesNoFlag(argparse.Action):
    """`--flag` / `--no-flag` for a boolean (argparse.BooleanOptionalAction is 3.9+, and
    this module runs inside DIGITS' Python 3.8)."""

    def __init__(self, option_strings, dest, **kwargs):
        negated = ["--no-" + flag[2:] for flag in option_strings if flag.startswith("--")]
        super().__init__(list(option_strings) + negated, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self):
        return " | ".join(self.option_strings)


def add_to_argparse(parser, options, not_given=False):
    """Add one `--flag` per option (`--flag/--no-flag` for booleans); the help states
    each default. not_given: every flag defaults to None and none is required, so a
    caller can tell the flags given from the rest (e.g. `train --resume`, where the
    job's saved values fill the others in)."""
    for option in options:
        help_text = option.help
        default = None if not_given else option.default
        if option.type is bool:
            parser.add_argument(option.flag, dest=option.name, action=YesNoFlag, default=default,
                                help=help_text + (" (default: yes)" if option.default else " (default: no)"))
            continue
        if option.describe_default():
            help_text += f" (default: {option.describe_default()})"
        metavar = option.kind.upper() if option.kind else None
        if option.choices is not None:
            metavar = "{" + ",".join(map(str, option.choices)) + "}"
        elif option.is_list:
            metavar = "A,B,..."
        parser.add_argument(
            option.flag, dest=option.name, type=_argparse_type(option), default=default,
            required=option.required and not not_given, metavar=metavar, help=help_text,
        )
    return parser


def to_cli_args(options, values):
    """The flags of add_to_argparse that give `values` ({name: value}; names missing,
    None or '' are left out: their defaults apply)."""
    args = []
    for option in options:
        if option.name not in values:
            continue
        value = values[option.name]
        if option.type is bool:
            args.append(option.flag if value else "--no-" + option.flag[2:])
        elif option.is_list and isinstance(value, (list, tuple)):
            if value:
                args += [option.flag, ",".join(map(str, value))]
        elif value not in (None, ""):
            args += [option.flag, str(value)]
    return args


def _form_base():
    """Flask-WTF's form inside a Flask request (DIGITS calls validate_on_submit and
    checks CSRF), plain wtforms.Form elsewhere. `FlaskForm` since Flask-WTF 0.13;
    `Form` in the older releases DIGITS pins."""
    try:
        import flask
        import flask_wtf
    except ImportError:
        flask = None
    if flask is not None and flask.has_request_context():
        return getattr(flask_wtf, "FlaskForm", None) or flask_wtf.Form
    import wtforms

    return wtforms.Form


def make_wtform(options):
    """A WTForms Form class with one field per option: validators for required/min/max/
    choices/paths (each value also goes through Option.convert, so the form accepts
    exactly what the command line accepts), the option's help as the field description.
    Works with WTForms 2.0+ (DIGITS pins 2.0-2.1) and 3.x."""
    import wtforms
    from wtforms import validators

    def convert_validator(option):
        def check(form, field):
            if field.data not in (None, "") and not field.errors:  # one message per mistake (NumberRange's)
                try:
                    option.convert(field.data)
                except DataError as error:  # shown beside the field: without the "option NAME: " prefix
                    message, prefix = str(error), f"option {option.name}: "
                    raise validators.ValidationError(message[len(prefix):] if message.startswith(prefix)
                                                     else message) from None

        return check

    fields = {}
    for option in options:
        checks = [validators.DataRequired() if option.required else validators.Optional()]
        if (option.min is not None or option.max is not None) and not option.is_list:
            checks.append(validators.NumberRange(min=option.min, max=option.max))
        checks.append(convert_validator(option))
        label = SPELLED_OUT_LABELS.get(option.name) or option.name.replace("_", " ").capitalize()
        # No render_kw (WTForms 2.1+); the templates pass the help as each field's title.
        common = dict(label=label, description=option.help)
        if option.type is bool:
            field = wtforms.BooleanField(default=option.default, **common)
        elif option.is_list:
            field = wtforms.StringField(default=option.describe_default(), validators=checks, **common)
        elif option.choices is not None:
            choices = [(choice, str(choice)) for choice in option.choices]
            field = wtforms.SelectField(choices=choices, coerce=option.type, default=option.default,
                                        validators=checks, **common)
        elif option.type is int:
            field = wtforms.IntegerField(default=option.default, validators=checks, **common)
        elif option.type is float:
            field = wtforms.FloatField(default=option.default, validators=checks, **common)
        else:
            field = wtforms.StringField(default=option.default, validators=checks, **common)
        fields[option.name] = field
    return type("PluginOptionsForm", (_form_base(),), fields)


def template_text():
    """The shared Jinja template that renders any `make_wtform` form."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "dataset_form.html")
    with open(path, encoding="utf-8") as handle:
        return handle.read()
