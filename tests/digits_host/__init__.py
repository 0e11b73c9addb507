"""A DIGITS host for tests, written from ../shared/DIGITS_CONTRACT.md (and DIGITS' own
calling code, read, not copied): what an installed plugin meets inside NVIDIA DIGITS.

- `digits_installed()`: a `digits` package (extensions.data.interface,
  extensions.view.interface, constants) holding DIGITS' base classes below, in
  sys.modules, with this project's plugin modules imported afresh, so that they subclass
  DIGITS' classes as they do in a DIGITS install (digits_api's `try: from digits...`);
- `discover(group)`: plugins found the way DIGITS finds them: setuptools entry points of
  `digits.plugins.data` / `digits.plugins.view`, keyed by the class's static `get_id()`;
- `make_app()` / `render_form()` / `browser_values()` / `submit_form()`: DIGITS' Flask
  handling of plugin forms: `flask.render_template_string(template, **context)`, a
  browser's submission of the rendered fields, `validate_on_submit()`, CSRF off
  (DIGITS' webapp sets WTF_CSRF_ENABLED = False);
- `run_view()`: the model page's view call sequence
  (digits/model/images/generic/views.py): `extension_class(dataset, **form.data)`, per
  item `process_data` then `get_view_template` (always rendered), once
  `get_header_template` (rendered when it has a template) and `get_ng_templates`.
writer.py: DIGITS' dataset writer and the inference-dataset handoff.
"""
import contextlib
import sys
import types
from html.parser import HTMLParser

PLUGIN_MODULES = ("digits_gan_plugin.digits_api", "digits_gan_plugin.data_plugins", "view_plugins")
DATA_GROUP, VIEW_GROUP = "digits.plugins.data", "digits.plugins.view"


class DataIngestionInterface:
    """DIGITS' data-plugin base: `is_inference_db` is a named parameter and is not kept;
    every other keyword argument is userdata, and also an attribute. The methods a
    plugin must define raise NotImplementedError (here: only those DIGITS may call on a
    plugin that has no answer of its own)."""

    def __init__(self, is_inference_db=False, **kwargs):
        self.userdata = kwargs
        for key, value in self.userdata.items():
            setattr(self, key, value)

    @staticmethod
    def get_default_visibility():
        return True

    def get_inference_form(self):
        raise NotImplementedError

    @staticmethod
    def get_inference_template(form):
        raise NotImplementedError

    def get_user_data(self):
        return self.userdata


class VisualizationInterface:
    """DIGITS' view-plugin base: keyword arguments only (a plugin passing `dataset` on
    raises TypeError here, as in DIGITS); header and ng templates default to none."""

    def __init__(self, **kwargs):
        pass

    @staticmethod
    def get_default_visibility():
        return True

    def get_header_template(self):
        return None, None

    def get_ng_templates(self):
        return None, None


def _fake_digits():
    modules = {name: types.ModuleType(name) for name in (
        "digits", "digits.extensions", "digits.extensions.data", "digits.extensions.data.interface",
        "digits.extensions.view", "digits.extensions.view.interface", "digits.constants")}
    modules["digits.extensions.data.interface"].DataIngestionInterface = DataIngestionInterface
    modules["digits.extensions.view.interface"].VisualizationInterface = VisualizationInterface
    constants = modules["digits.constants"]
    constants.TRAIN_DB, constants.VAL_DB, constants.TEST_DB = "train_db", "val_db", "test_db"
    for name, module in modules.items():
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(modules[parent], child, module)
    return modules


def _ours(name):
    return any(name == prefix or name.startswith(prefix + ".") for prefix in PLUGIN_MODULES)


@contextlib.contextmanager
def digits_installed():
    """Inside: `import digits` finds DIGITS' interfaces, and this project's plugin modules
    are imported afresh against them. Afterwards sys.modules is as it was."""
    saved = {name: module for name, module in sys.modules.items() if _ours(name) or name.split(".")[0] == "digits"}
    for name in saved:
        del sys.modules[name]
    sys.modules.update(_fake_digits())
    try:
        yield
    finally:
        for name in [n for n in sys.modules if _ours(n) or n.split(".")[0] == "digits"]:
            del sys.modules[name]
        sys.modules.update(saved)


def entry_points(group):
    from importlib import metadata

    found = metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group))
    return list(found.get(group, []))  # Python 3.8/3.9


def discover(group):
    """{get_id(): class} of the installed plugins of an entry-point group."""
    plugins = {}
    for entry_point in entry_points(group):
        plugin = entry_point.load()
        plugins[plugin.get_id()] = plugin
    return plugins


def make_app():
    import flask

    app = flask.Flask("digits_host")
    app.config.update(SECRET_KEY="digits-host", WTF_CSRF_ENABLED=False, TESTING=True)
    return app


def render_form(app, make_form, get_template):
    """(form, html): the plugin's form made and rendered inside a request, as DIGITS does."""
    import flask

    with app.test_request_context("/"):
        form = make_form()
        template, context = get_template(form)
        return form, flask.render_template_string(template, **context)


class _Fields(HTMLParser):
    """What a browser submits from a rendered form: each input's value (checkboxes only
    when checked), each select's selected (else first) option, each textarea's text."""

    def __init__(self):
        super().__init__()
        self.values, self._select, self._textarea, self._first = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.values[name] = attrs.get("value", "y")
            else:
                self.values[name] = attrs.get("value", "")
        elif tag == "select":
            self._select, self._first = name, True
        elif tag == "option" and self._select:
            if self._first or "selected" in attrs:
                self.values[self._select] = attrs.get("value", "")
            self._first = False
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data.lstrip("\n") if not self.values[self._textarea] else data


def browser_values(html, **changes):
    """The form data a browser posts from `html`, with `changes` typed in (None: cleared
    checkbox / removed field)."""
    parser = _Fields()
    parser.feed(html)
    values = dict(parser.values)
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def submit_form(app, make_form, values):
    """(valid, form) after DIGITS' `form.validate_on_submit()` on a POST of `values`."""
    with app.test_request_context("/", method="POST", data=values):
        form = make_form()
        return form.validate_on_submit(), form


def run_view(app, extension_class, dataset, form_values, inputs, outputs):
    """DIGITS' inference visualization: (item HTML list, header HTML or None, ng templates).

    inputs: {'ids': [...], 'data': [...]}; outputs: {name: array with one row per item}.
    """
    import flask

    with app.test_request_context("/", method="POST", data=form_values):
        form = extension_class.get_config_form()
        if not form.validate_on_submit():
            raise ValueError("Extension form validation failed with %r" % (form.errors,))
        extension = extension_class(dataset, **form.data)
        items = []
        for index, input_id in enumerate(inputs["ids"]):
            output_data = {key: outputs[key][index] for key in outputs}
            data = extension.process_data(input_id, inputs["data"][index], output_data)
            template, context = extension.get_view_template(data)
            items.append(flask.render_template_string(template, **context))
        template, context = extension.get_header_template()
        header = flask.render_template_string(template, **context) if template else None
        return items, header, extension.get_ng_templates()


@contextlib.contextmanager
def old_flask_wtf():
    """Flask-WTF before 0.13, as DIGITS pins it: the module has `Form` (which reads the
    request's form data itself and has validate_on_submit) and no `FlaskForm`."""
    import flask
    import wtforms

    class Form(wtforms.Form):
        def __init__(self, formdata=None, **kwargs):
            if formdata is None and flask.request and flask.request.method in ("POST", "PUT", "PATCH"):
                formdata = flask.request.form
            super().__init__(formdata=formdata, **kwargs)

        def is_submitted(self):
            return flask.request.method in ("POST", "PUT", "PATCH")

        def validate_on_submit(self):
            return self.is_submitted() and self.validate()

    module = types.ModuleType("flask_wtf")
    module.Form = Form
    module.__version__ = "0.12"
    saved = sys.modules.get("flask_wtf")
    sys.modules["flask_wtf"] = module
    try:
        yield module
    finally:
        if saved is None:
            del sys.modules["flask_wtf"]
        else:
            sys.modules["flask_wtf"] = saved


# Field keywords WTForms 2.0 (DIGITS pins 2.0-2.1) does not know, by the class that
# takes them in WTForms 3: passing one raises TypeError there.
WTFORMS3_ONLY_KEYWORDS = {
    "Field": ("render_kw", "datalist"),
    "SelectField": ("validate_choice", "invalid_choice_message", "invalid_value_message"),
}


@contextlib.contextmanager
def wtforms2_fields():
    """WTForms' field constructors restricted to WTForms 2.0's keywords (no `render_kw`,
    `validate_choice`, ...): a form built with a WTForms-3-only keyword fails when it is
    instantiated, as it does in DIGITS."""
    import wtforms.fields

    originals = {}
    for class_name, keywords in WTFORMS3_ONLY_KEYWORDS.items():
        cls = getattr(wtforms.fields, class_name)
        originals[cls] = cls.__init__

        def restricted(self, *args, __init=cls.__init__, __keywords=keywords, __name=class_name, **kwargs):
            unknown = sorted(k for k in __keywords if kwargs.get(k) is not None)
            if unknown:
                raise TypeError(f"{__name}.__init__() got unexpected keyword argument(s) {unknown} "
                                f"(not in WTForms 2.0)")
            return __init(self, *args, **kwargs)

        cls.__init__ = restricted
    try:
        yield
    finally:
        for cls, init in originals.items():
            cls.__init__ = init
