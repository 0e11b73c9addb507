"""Inference ("Test the model"): the form that follows the page's model (its job fixed,
only the tasks and views that fit it, z text checked before a job exists, a checkpoint
selector, a seed drawn and shown) and the result pages, drawn by the view plugin."""
import os
import secrets

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from .. import jobdir, latent
from ..data_plugins import available_plugins
from ..errors import DataError, DigitsGanError
from ..options import to_cli_args
from .common import (INFERENCE_PLUGIN, VIEW_FOR_TASK, bare_form, check_paths, fitting_tasks, fitting_view_tasks,
                     job_or_404, manager, model_facts, option_values, render_plugin_form, view_plugins)
from .jobs import cli_command
from .safety import check_image_upload

blueprint = Blueprint("results", __name__)
MAX_UPLOADS = 100
MAX_SEED = 2**31 - 1
# Fields of the inference plugin that describe a model trained elsewhere: the page's model says.
MODEL_FIELDS = ("job", "z_dim", "num_classes", "z_distribution", "image_size", "image_channels")


def _plugin():
    return available_plugins()[INFERENCE_PLUGIN]


def _forms(facts, values=None):
    """(inference form, view form, view id) restricted to what fits the model."""
    inference_form = bare_form(_plugin().get_dataset_form())  # the inference form is the same form
    tasks = fitting_tasks(facts)
    inference_form.task.choices = [(name, latent.TASKS[name].title) for name in tasks]
    views = view_plugins()
    view_id = request.values.get("view_plugin", next(iter(views)))
    view_id = view_id if view_id in views else next(iter(views))
    view_form = bare_form(views[view_id].get_config_form(), prefix="view")
    view_tasks = fitting_view_tasks(facts)
    if "task" in view_form:
        view_form.task.choices = [(name, name) for name in view_tasks]
    if request.method == "GET":
        for name, value in (values or {}).items():  # "Run again" / "use this z" / a query string
            if name in inference_form and name not in MODEL_FIELDS and value not in (None, ""):
                inference_form[name].data = value
        if inference_form.task.data not in tasks and tasks:
            inference_form.task.data = tasks[0]
        if "task" in view_form:
            view_form.task.data = VIEW_FOR_TASK.get(inference_form.task.data, view_tasks[0])
    return inference_form, view_form, view_id


def inference_context(job, facts, checkpoints, state=None):
    """What model.html needs for its "Test the model" panel."""
    if state is None:
        values = dict(request.args)
        rerun = manager().get(request.args.get("rerun", "")) if request.args.get("rerun") else None
        if rerun is not None and rerun.model_id == job.id:
            values = dict(rerun.data.get("params") or {}, **values)
        state = dict(zip(("inference_form", "view_form", "view_id"), _forms(facts, values)))
        state["checkpoint"] = values.get("checkpoint", "last")
    plugin, views = _plugin(), view_plugins()
    tasks = fitting_tasks(facts)
    task_fields = {name: ["task", "seed"] + [option.name for option in latent.get_task(name).options]
                   + (["crop", "images"] if name == "encode-list" else []) for name in tasks}
    if facts is not None and not facts.conditional:
        task_fields = {name: [field for field in fields if field != "label"] for name, fields in task_fields.items()}
    return dict(
        inference_html=render_plugin_form(plugin.get_inference_template(state["inference_form"])),
        view_html=render_plugin_form(views[state["view_id"]].get_config_template(state["view_form"])),
        views=views, view_id=state["view_id"], task_fields=task_fields, view_for_task=VIEW_FOR_TASK,
        has_checkpoint=bool(checkpoints), chosen_checkpoint=state.get("checkpoint", "last"),
        inference_error=state.get("error"))


def _uploads(task_name):
    uploads = [f for f in request.files.getlist("images") if f and f.filename]
    if uploads and task_name != "encode-list":
        raise DataError("images: uploads are used by the encode-list task only")
    if len(uploads) > MAX_UPLOADS:
        raise DataError(f"images: at most {MAX_UPLOADS} files at once, got {len(uploads)}")
    limit = current_app.config["DIGITS_GAN_MAX_PIXELS"]
    return [(os.path.basename(f.filename), check_image_upload(f, limit)) for f in uploads]


def _checked_request(job, facts, inference_form, view_form, view_id):
    """(task, params, images, checkpoint) of a valid inference request; DataError else."""
    from . import models

    if not (inference_form.validate() & view_form.validate()):
        raise DataError("please correct the fields marked in red")
    task_name = inference_form.task.data
    if task_name not in fitting_tasks(facts):
        raise DataError(f"task {task_name!r}: does not fit this model")
    task = latent.get_task(task_name)
    options = [o for o in _plugin().task_command_options(task.name) if o.name != "job"]
    check_paths(options, inference_form)
    check_paths(getattr(view_plugins()[view_id], "OPTIONS", []), view_form)
    images = _uploads(task.name)
    params = option_values(options, inference_form)
    if params.get("seed") in (None, ""):
        params["seed"] = secrets.randbelow(MAX_SEED)  # drawn here, so the run is named and rerun by it
    if images:
        params.pop("folder", None)
    elif task.name != "encode-list" or params.get("folder") or params.get("celeba_list"):
        # the task itself checks every value (z text, counts, classes, files): numpy only, quick
        _plugin()(job=str(job.target), task=task.name, **params).build()
    checkpoint = models.checkpoint_argument(job, request.form.get("checkpoint", "last"))
    return task, params, images, checkpoint


@blueprint.post("/jobs/<job_id>/infer")
def infer(job_id):
    from . import models

    job = job_or_404(job_id, "model")
    facts = model_facts(job)
    inference_form, view_form, view_id = _forms(facts)
    try:
        task, params, images, checkpoint = _checked_request(job, facts, inference_form, view_form, view_id)
    except DataError as error:
        state = dict(inference_form=inference_form, view_form=view_form, view_id=view_id, error=str(error),
                     checkpoint=request.form.get("checkpoint", "last"))
        return models.model_page(job, state)
    folder = manager().new_folder()
    options = [o for o in _plugin().task_command_options(task.name) if o.name != "job"]
    args = to_cli_args(options, params)
    if images:
        upload_dir = folder / "uploads"
        upload_dir.mkdir()
        for index, (name, data) in enumerate(images):
            (upload_dir / f"{index:04d}-{name}").write_bytes(data)
        args += ["--folder", upload_dir]
    latent_dir, result_dir = folder / "latent", jobdir.JobPaths(job.target).result(folder.name)
    commands = [cli_command("latent", task.name, "--job", job.target, *args, "--out", latent_dir, "--quiet"),
                cli_command("infer", "--job", job.target, "--dataset", latent_dir, "--checkpoint", checkpoint,
                            "--out", result_dir)]
    view_options = {name: field.data for name, field in view_form._fields.items()}
    run = manager().create(folder, "inference", f"{task.title}, seed {params['seed']}", commands, model=job.id,
                           task=task.name, seed=params["seed"], view_plugin=view_id, view_options=view_options,
                           target=result_dir, latent=latent_dir, checkpoint=request.form.get("checkpoint", "last"),
                           params={key: value for key, value in params.items() if value not in (None, "")})
    return redirect(url_for("manage.show_job", job_id=run.id))


def inference_page(job):
    model = manager().get(job.model_id) if job.model_id else None
    rendered, error, status = None, None, 200
    if job.status == "done":
        try:
            rendered = render_result(job, model_facts(model) if model else None)
        except (DigitsGanError, OSError, ValueError, KeyError, IndexError) as failure:
            error, status = f"{job.target}: {failure}" if not isinstance(failure, DigitsGanError) else str(failure), 422
    return render_template("inference.html", job=job, model=model, rendered=rendered, error=error,
                           grid=(job.target / jobdir.RESULT_GRID).is_file()), status


def render_result(job, facts):
    """HTML of the inference result through the job's view plugin (DIGITS' order:
    header, one view per item, summary), and the encoded z's for "use this z"."""
    result = jobdir.InferenceResult(job.target)  # DataError for empty or truncated files
    views = view_plugins()
    view_id = job.view_plugin if job.view_plugin in views else next(iter(views))
    view_tasks = ["encoder"] if result.is_encoder else ["grid", "gif"]
    options = job.view_options
    asked = request.args.get("view_task")
    if asked:
        if asked not in view_tasks:
            raise DataError(f"view {asked!r}: this result is shown as {' or '.join(view_tasks)}")
        options["task"] = asked
    elif options.get("task") not in view_tasks:
        options["task"] = view_tasks[0]
    # the inference dataset gives the view its grid and sweep; the result's own record of
    # them serves when that dataset is gone (the walkthrough rewrites its inputs)
    source = str(job.latent_dir) if job.latent_dir.is_dir() else {"latent": result.latent}
    visualization = views[view_id](source, **options)
    outputs = {key: value for key, value in result.arrays.items() if key != "inputs"}
    items = []
    for index in range(len(result.arrays["inputs"])):
        data = visualization.process_data(str(index), result.arrays["inputs"][index],
                                          {key: value[index] for key, value in outputs.items()})
        items.append(render_plugin_form(visualization.get_view_template(data)))
    return {"header": render_plugin_form(visualization.get_header_template()),
            "items": [item for item in items if item.strip()],
            "summary": render_plugin_form(visualization.get_summary_template()),
            "view_id": view_id, "options": options, "tasks": view_tasks, "use_z": _use_z_links(job, result)}


def _use_z_links(job, result):
    """[(label, url)]: each encoded image's z as a sweep form of the GAN the encoder
    was trained from (its --weights job), when the UI knows that job."""
    if not result.is_encoder:
        return []
    model = manager().get(job.model_id) if job.model_id else None
    config = jobdir.read_config(model.target) if model is not None and jobdir.is_job(model.target) else {}
    weights = config.get("weights")
    gan = next((other for other in manager().all("model") if weights and other.target.resolve() ==
                jobdir.JobPaths(weights).root.resolve()), None) if weights else None
    if gan is None:
        return []
    gan_facts = model_facts(gan)
    task = "class-sweep" if gan_facts is not None and gan_facts.conditional else "style-sweep"
    field = "z" if task == "class-sweep" else "z_start"
    links = []
    for index, z in enumerate(result.z):
        text = latent.format_vector(z)
        links.append((f"image {index + 1}", url_for("manage.show_job", job_id=gan.id, task=task, **{field: text},
                                                     _anchor="inference")))
    return links
