"""One definition of a plugin's options, rendered both as CLI flags and as a WTForms form.

A plugin lists `OPTIONS = [Option(...), ...]`; `add_to_argparse` turns them into
`--flags`, `make_wtform` into the form DIGITS shows (WTForms is imported only there, so
the core and the CLI need no web stack), and `resolve` validates keyword arguments
(from either source, or from Python) into a complete dict of values.
"""
import argparse
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import DataError

PATH_KINDS = ("path", "dir", "file")


@dataclass(frozen=True)
class Option:
    """One plugin option.

    type: int, float, str or bool. kind: None, or 'path' (file or folder), 'dir' or
    'file' for str options naming something on disk (checked to exist when given).
    An empty string or None means "not given" for non-required options.
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

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def convert(self, value):
        """Validate and convert one value; raises DataError naming the option."""
        if value is None or (value == "" and self.type is not str) or (value == "" and self.kind):
            if self.required:
                raise DataError(f"option {self.name}: a value is required ({self.help})")
            return self.default
        if self.type is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "y", "n", "on", "off"):
                    raise DataError(f"option {self.name}: {value!r} is not a yes/no value")
                value = value.lower() in ("1", "true", "yes", "y", "on")
            return bool(value)
        try:
            value = self.type(value)
        except (TypeError, ValueError):
            raise DataError(f"option {self.name}: {value!r} is not a valid {self.type.__name__}") from None
        if self.choices is not None and value not in self.choices:
            raise DataError(f"option {self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min:
            raise DataError(f"option {self.name}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise DataError(f"option {self.name}: {value} is above the maximum {self.max}")
        if self.kind in PATH_KINDS:
            value = os.path.expanduser(value)
            exists = {"path": os.path.exists, "dir": os.path.isdir, "file": os.path.isfile}[self.kind]
            if not exists(value):
                noun = {"path": "file or folder", "dir": "folder", "file": "file"}[self.kind]
                raise DataError(f"option {self.name}: {value}: no such {noun}")
        return value


def int_list(text):
    """argparse type: comma-separated integers."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None



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


def add_to_argparse(parser, options):
    """Add one `--flag` per option (`--flag/--no-flag` for booleans)."""
    for option in options:
        help_text = option.help
        if option.type is bool:
            parser.add_argument(option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
                                default=option.default, help=help_text)
            continue
        if option.default not in (None, ""):
            help_text += f" (default: {option.default})"
        parser.add_argument(
            option.flag, dest=option.name, type=_argparse_type(option), default=option.default,
            required=option.required, choices=option.choices,
            metavar=option.kind.upper() if option.kind else None, help=help_text,
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
        elif value not in (None, ""):
            args += [option.flag, str(value)]
    return args


def _form_base():
    """Flask-WTF's FlaskForm inside a Flask request (DIGITS calls validate_on_submit and
    checks CSRF), plain wtforms.Form elsewhere."""
    try:
        import flask
        import flask_wtf
    except ImportError:
        flask = None
    if flask is not None and flask.has_request_context():
        return flask_wtf.FlaskForm
    import wtforms

    return wtforms.Form


def make_wtform(options):
    """A WTForms Form class with one field per option: validators for required/min/max/
    choices/paths, the option's help as the field description and as a `tooltip`."""
    import wtforms
    from wtforms import validators

    def path_validator(option):
        def check(form, field):
            if field.data not in (None, ""):
                try:
                    option.convert(field.data)
                except DataError as error:
                    raise validators.ValidationError(str(error)) from None

        return check

    fields = {}
    for option in options:
        checks = [validators.DataRequired() if option.required else validators.Optional()]
        if option.min is not None or option.max is not None:
            checks.append(validators.NumberRange(min=option.min, max=option.max))
        if option.kind in PATH_KINDS:
            checks.append(path_validator(option))
        label = option.name.replace("_", " ").capitalize()
        common = dict(label=label, description=option.help, render_kw={"title": option.help})
        if option.type is bool:
            field = wtforms.BooleanField(default=option.default, **common)
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
