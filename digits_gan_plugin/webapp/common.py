"""Helpers shared by the web UI's blueprints: the job manager and path guard of the
running app, plugin forms, and what a page needs to know about a dataset or a model."""
from importlib.metadata import entry_points

from flask import abort, current_app, flash, render_template, render_template_string

from .. import jobdir, latent
from ..errors import DigitsGanError
from ..options import PATH_KINDS, to_cli_args
from .store import dataset_meta

VIEW_ENTRY_POINT_GROUP = "digits.plugins.view"
INFERENCE_PLUGIN = "gan-inference"


def manager():
    """The JobManager of the running app."""
    return current_app.extensions["digits_gan_jobs"]


def guard():
    """The PathGuard of the running app (folders that forms may name)."""
    return current_app.extensions["digits_gan_guard"]


def job_or_404(job_id, *kinds):
    job = manager().get(job_id)
    if job is None or (kinds and job.kind not in kinds):
        abort(404)
    return job


def refuse(message, template, status=400, **context):
    """`template` again with `message` flashed, answered with HTTP `status`."""
    flash(message, "danger")
    return render_template(template, **context), status


def view_plugins():
    """{id: class} of the view plugins (`digits.plugins.view` entry points, plus the
    bundled GAN view when the package metadata is not installed)."""
    found = {}
    for entry_point in entry_points(group=VIEW_ENTRY_POINT_GROUP):
        plugin = entry_point.load()
        found[plugin.get_id()] = plugin
    if not found:
        from view_plugins.gan import Visualization

        found[Visualization.get_id()] = Visualization
    return found


def bare_form(form, prefix=""):
    """A plugin's form rebuilt without its own CSRF field (CSRFProtect checks every POST
    once, from the page's token) and with an optional field-name prefix."""
    return type(form)(prefix=prefix, meta={"csrf": False})


def render_plugin_form(template_and_context):
    template, context = template_and_context
    return render_template_string(template, **context) if template else ""


def option_values(options, form):
    """{name: value} of `options` from a plugin form ('' / None: not given)."""
    return {option.name: form[option.name].data for option in options if option.name in form}


def option_args(options, form):
    """CLI flags for `options` from a plugin form."""
    return to_cli_args(options, option_values(options, form))


def check_paths(options, form):
    """DataError unless every path option filled in `form` lies in the allowed roots."""
    for option in options:
        field = form._fields.get(option.name)
        if option.kind in PATH_KINDS and field is not None and field.data:
            guard().check(field.data, option.name)


def dataset_summary(job):
    """{counts: {stage: n}, shape, classes, label_names, plugin} of a built dataset, or None."""
    meta = dataset_meta(job.target)
    if meta is None:
        return None
    stages = meta["stages"]
    first = next(iter(stages.values()), {})
    return {"counts": {stage: info.get("count") for stage, info in stages.items()},
            "shape": "x".join(map(str, first.get("feature_shape") or [])), "classes": meta.get("num_classes"),
            "label_names": meta.get("label_names") or [], "plugin": meta.get("plugin_id")}


def model_facts(job):
    """latent.ModelFacts of a training job, or None before its config is written."""
    if not jobdir.is_job(job.target):
        return None
    try:
        return jobdir.read_model_facts(job.target)
    except DigitsGanError:
        return None


def fitting_tasks(facts):
    """The latent tasks a model can run: encoders encode images; generators walk z
    (the class sweep needs a conditional model)."""
    if facts is None:
        return []
    if facts.inference_input == "image":
        return ["encode-list"]
    return [name for name in latent.TASKS if name != "encode-list" and (name != "class-sweep" or facts.conditional)]


# The view task each latent task is best shown as; the others a model can use.
VIEW_FOR_TASK = {"animation": "gif", "encode-list": "encoder"}


def fitting_view_tasks(facts):
    if facts is not None and facts.inference_input == "image":
        return ["encoder"]
    return ["grid", "gif"]


def when(stamp):
    """'2026-11-22T09:49:58+00:00' -> '2026-11-22 09:49:58 UTC' for the pages."""
    return (stamp or "").replace("T", " ").replace("+00:00", " UTC")
