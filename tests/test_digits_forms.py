"""Plugin forms as DIGITS handles them (tests/digits_host): every data plugin's dataset
form, the training plugins' inference form and the view's config form rendered with
flask.render_template_string and submitted with validate_on_submit(), under new
(FlaskForm) and old (Form only, DIGITS' pin) Flask-WTF."""
import contextlib
import re

import numpy as np
import pytest

import digits_host
from digits_host import (DATA_GROUP, VIEW_GROUP, browser_values, digits_installed, discover, make_app,
                         old_flask_wtf, render_form, submit_form, wtforms2_fields)

# The form stack: today's, and the one DIGITS pins (Flask-WTF 0.11-0.12, WTForms 2.0-2.1).
FORM_STACKS = {"FlaskForm + WTForms 3": (), "Form + WTForms 2": (old_flask_wtf, wtforms2_fields)}


@pytest.fixture(params=sorted(FORM_STACKS))
def host(request):
    """(app, {id: data plugin}, {id: view plugin}) in a DIGITS with that form stack."""
    with contextlib.ExitStack() as stack:
        for emulation in FORM_STACKS[request.param]:
            stack.enter_context(emulation())
        stack.enter_context(digits_installed())
        yield make_app(), discover(DATA_GROUP), discover(VIEW_GROUP)


def test_the_old_stack_emulation_rejects_what_wtforms_2_lacks():
    import wtforms

    with old_flask_wtf() as flask_wtf, wtforms2_fields():
        assert not hasattr(flask_wtf, "FlaskForm")
        form_class = type("F", (wtforms.Form,), {"name": wtforms.StringField(render_kw={"title": "x"})})
        with pytest.raises(TypeError, match="render_kw"):
            form_class()


def field_names(html):
    return set(re.findall(r'name="([^"]+)"', html))


def test_entry_points_resolve_to_classes_matched_by_get_id(host):
    _, data, views = host
    assert {"gan-inference", "mnist", "celeba", "imagefolder", "gaussian"} <= set(data)
    for plugin_id, plugin in data.items():
        assert plugin.get_id() == plugin_id and issubclass(plugin, digits_host.DataIngestionInterface)
        assert plugin.get_title()
    assert set(views) == {"gan-view"}


def test_every_dataset_form_renders_and_validates_as_digits_submits_it(host):
    app, data, _ = host
    for plugin_id, plugin in data.items():
        form, html = render_form(app, plugin.get_dataset_form, plugin.get_dataset_template)
        names = field_names(html)
        assert names and names <= set(form._fields), plugin_id
        assert "csrf" not in html.lower().replace('name="csrf_token"', "").replace('id="csrf_token"', ""), \
            "a visible CSRF field"  # DIGITS runs with WTF_CSRF_ENABLED = False
        valid, submitted = submit_form(app, plugin.get_dataset_form, browser_values(html))
        assert valid or submitted.errors, plugin_id  # a verdict, never an exception
        assert set(submitted.data) >= names - {"csrf_token"}, plugin_id


def test_a_dataset_form_reports_a_bad_field_by_name(host):
    app, data, _ = host
    plugin = data["gaussian"]
    form, html = render_form(app, plugin.get_dataset_form, plugin.get_dataset_template)
    number_field = next(field.name for field in form if field.type == "IntegerField")
    valid, form = submit_form(app, plugin.get_dataset_form, browser_values(html, **{number_field: "-x"}))
    assert not valid and number_field in form.errors


def test_a_value_out_of_range_is_one_message_beside_its_field(host):
    app, data, _ = host
    plugin = data["gaussian"]
    form, html = render_form(app, plugin.get_dataset_form, plugin.get_dataset_template)
    valid, form = submit_form(app, plugin.get_dataset_form, browser_values(html, seed="-1", mean="nan"))
    assert not valid
    assert len(form.errors["seed"]) == 1 and "option seed" not in form.errors["seed"][0]  # NumberRange's only
    assert form.errors["mean"] == ["expected a finite number, got nan"]  # no "option mean: " beside the field


def test_the_gaussian_dataset_form_makes_the_plugin_digits_stores(host):
    """DIGITS: validate_on_submit, then extension_class(**form.data), get_user_data()."""
    app, data, _ = host
    plugin = data["gaussian"]
    _, html = render_form(app, plugin.get_dataset_form, plugin.get_dataset_template)
    valid, form = submit_form(app, plugin.get_dataset_form, browser_values(html))
    assert valid, form.errors
    userdata = plugin(**form.data).get_user_data()
    assert set(form.data) <= set(userdata)


def test_training_plugins_offer_the_inference_form_from_an_instance(host):
    """DIGITS' model page: the training dataset's class and userdata ({} when DIGITS
    made that dataset), is_inference_db=True, then the instance's get_inference_form()."""
    app, data, _ = host
    offered = []
    for plugin_id, plugin in data.items():
        if plugin_id == "gan-inference":
            continue
        instance = plugin(is_inference_db=True)
        form = instance.get_inference_form()
        if form is None:
            continue
        offered.append(plugin_id)
        _, html = render_form(app, instance.get_inference_form, plugin.get_inference_template)
        assert "task" in field_names(html), plugin_id
        valid, submitted = submit_form(app, instance.get_inference_form, browser_values(html))
        assert valid or submitted.errors, plugin_id
    assert "mnist" in offered


def test_view_config_form_defaults_validate_and_construct_the_view(host):
    app, _, views = host
    view = views["gan-view"]
    _, html = render_form(app, view.get_config_form, view.get_config_template)
    assert {"task", "normalize"} <= field_names(html)
    valid, form = submit_form(app, view.get_config_form, browser_values(html))
    assert valid, form.errors
    visualization = view({"id": "the training dataset job"}, **form.data)
    assert visualization.normalize is True and visualization.task == "grid"
    visualization.process_data("0", None, {"output": np.zeros((4, 4, 1), np.float32)})
    assert visualization.get_header_template()[0]
    valid, form = submit_form(app, view.get_config_form, browser_values(html, task="no-such-task"))
    assert not valid and "task" in form.errors
