"""Inference ("Test the model"): the form that follows the page's model (its job fixed,
only the tasks and views that fit it, z text checked before a job exists, a checkpoint
selector, a seed drawn and shown) and the result pages, drawn by the view plugin.

The projector (``digits-gan latent project``) has its own form on a generator's page
(images uploaded or a folder named, optionally started from an encoder trained from
this GAN) and refines an encoder's encode-list run on request; its run shows the
reconstructions, the optimisation GIF and the z file beside the usual result."""
import json
import secrets
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for

from .. import jobdir, latent
from ..data_plugins import available_plugins
from ..errors import DataError, DigitsGanError
from ..options import MAX_SEED, make_wtform, template_text, to_cli_args
from ..runtime import projector
from .common import (INFERENCE_PLUGIN, VIEW_FOR_TASK, bare_form, check_paths, fitting_tasks, fitting_view_tasks,
                     guard, job_or_404, manager, model_facts, option_values, render_plugin_form, view_plugins)
from .jobs import cli_command
from .safety import check_image_upload, file_inside, upload_name

blueprint = Blueprint("results", __name__)
MAX_UPLOADS = 100
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


def _rerun(job):
    """The run of `job` that "run again" names in the query string, or None."""
    rerun = manager().get(request.args.get("rerun", "")) if request.args.get("rerun") else None
    return rerun if rerun is not None and rerun.model_id == job.id else None


def inference_context(job, facts, checkpoints, state=None):
    """What model.html needs for its "Test the model" and projector panels. state: the
    forms of a refused POST (with its error), or None."""
    state = dict(state or {})
    if "inference_form" not in state:
        values = dict(request.args)
        rerun = _rerun(job)
        if rerun is not None:
            values = dict(rerun.data.get("params") or {}, **values)
        state.update(zip(("inference_form", "view_form", "view_id"), _forms(facts, values)))
        state.setdefault("checkpoint", values.get("checkpoint", "last"))
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
        inference_error=state.get("error"), refine_gan=gan_of(job) if "encode-list" in tasks else None,
        **_projector_context(job, facts, state))


def _uploads(task_name, field="images"):
    uploads = [f for f in request.files.getlist(field) if f and f.filename]
    if uploads and task_name not in ("encode-list", "project"):
        raise DataError(f"{field}: uploads are used by the encode-list task only")
    if len(uploads) > MAX_UPLOADS:
        raise DataError(f"{field}: at most {MAX_UPLOADS} files at once, got {len(uploads)}")
    limit = current_app.config["DIGITS_GAN_MAX_PIXELS"]
    return [(upload_name(f.filename), check_image_upload(f, limit)) for f in uploads]


def _save_uploads(folder, images):
    """The uploaded (name, bytes) written into folder/uploads -> that folder."""
    upload_dir = folder / "uploads"
    upload_dir.mkdir()
    for index, (name, data) in enumerate(images):
        (upload_dir / f"{index:04d}-{name}").write_bytes(data)
    return upload_dir


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
    if request.form.get("refine") and task.name == "encode-list":
        if gan_of(job) is None:
            raise DataError("refine with the projector: the GAN this encoder was trained from (its --weights job) "
                            "is not in the job store")
        if params.get("celeba_list") or not (images or params.get("folder")):
            raise DataError("refine with the projector: upload images or name a folder of images")
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
    with manager().new_job_folder() as folder:
        options = [o for o in _plugin().task_command_options(task.name) if o.name != "job"]
        args = to_cli_args(options, params)
        if images:
            args += ["--folder", _save_uploads(folder, images)]
        latent_dir, result_dir = folder / "latent", jobdir.JobPaths(job.target).result(folder.name)
        commands = [cli_command("latent", task.name, "--job", job.target, *args, "--out", latent_dir, "--quiet"),
                    cli_command("infer", "--job", job.target, "--dataset", latent_dir, "--checkpoint", checkpoint,
                                "--out", result_dir)]
        refine = {}
        if request.form.get("refine") and task.name == "encode-list":  # the encoder's z, refined on its GAN
            refine["projection"] = folder / "projection"
            images_in = folder / "uploads" if images else guard().check(params["folder"], "folder")
            commands.append(cli_command("latent", "project", images_in, "--job", gan_of(job).target, "--encoder",
                                        job.target, "--encoder-checkpoint", checkpoint, "--out", refine["projection"]))
        view_options = {name: field.data for name, field in view_form._fields.items()}
        run = manager().create(folder, "inference", f"{task.title}, seed {params['seed']}", commands, model=job.id,
                               task=task.name, seed=params["seed"], view_plugin=view_id, view_options=view_options,
                               target=result_dir, latent=latent_dir, checkpoint=request.form.get("checkpoint", "last"),
                               params={key: value for key, value in params.items() if value not in (None, "")},
                               **refine)
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
                           grid=(job.target / jobdir.RESULT_GRID).is_file(), projection=_projection(job)), status


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


def gan_of(model):
    """The store's model job that `model` (an encoder's) was trained from (its --weights
    job), or None."""
    config = jobdir.read_config(model.target) if model is not None and jobdir.is_job(model.target) else {}
    weights = config.get("weights")
    if not weights:
        return None
    return next((other for other in manager().all("model")
                 if other.target.resolve() == jobdir.JobPaths(weights).root.resolve()), None)


def encoders_of(model):
    """The store's encoder model jobs trained from `model` (their --weights job)."""
    found = []
    for other in manager().all("model"):
        facts = model_facts(other) if other.id != model.id else None
        if facts is not None and facts.inference_input == "image" and getattr(gan_of(other), "id", None) == model.id:
            found.append(other)
    return found


def _use_z_links(job, result):
    """[(label, url)]: each encoded image's z as a sweep form of the GAN the encoder
    was trained from (its --weights job), when the UI knows that job."""
    if not result.is_encoder:
        return []
    gan = gan_of(manager().get(job.model_id) if job.model_id else None)
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


# ------------------------------------------------------------------ the projector
PROJECTION_FILES = ("reconstruction.png", "optimisation.gif", "z.npz", "projection.json")


def _projector_form():
    """The projector's options (runtime.projector.OPTIONS) as a form, fields 'project-*'."""
    return make_wtform(projector.OPTIONS)(prefix="project", meta={"csrf": False})


def _projector_context(job, facts, state):
    """The projector panel of a generator's page: its options form (filled in from a
    refused POST or a "run again"), the encoders trained from it, the classes."""
    if facts is None or facts.inference_input != "z" or not facts.z_dim:
        return {"projector": None}
    form = state.get("projector_form")
    chosen = dict(state.get("projector_choices") or {})
    if form is None:
        form = _projector_form()
        rerun = _rerun(job)
        if rerun is not None and rerun.task == "project":
            values = dict(rerun.data.get("project_params") or {})
            for option in projector.OPTIONS:
                if values.get(option.name) not in (None, ""):
                    form[option.name].data = values[option.name]
            chosen = {key: values.get(key) for key in ("encoder", "label", "folder")}
    classes = facts.class_names or [str(k) for k in range(facts.num_classes or 0)]
    return {"projector": dict(
        options_html=render_plugin_form((template_text(), {"form": form})), error=state.get("projector_error"),
        encoders=encoders_of(job), classes=list(enumerate(classes)) if facts.conditional else [], chosen=chosen)}


def _checked_projection(job, facts, form):
    """(settings values, images, folder, encoder job or None, label or None, checkpoint)
    of a valid projector request; DataError otherwise."""
    from . import models

    if facts is None or facts.inference_input != "z" or not facts.z_dim:
        raise DataError("the projector fits the z of a generator; this model takes no z")
    if not form.validate():
        raise DataError("please correct the projector's fields marked in red")
    values = {option.name: form[option.name].data for option in projector.OPTIONS}
    projector.ProjectorSettings.from_options(values)  # the bounds, one line each
    images = _uploads("project", "project_images")
    folder = request.form.get("project_folder", "").strip()
    if not images and not folder:
        raise DataError("images: upload images or name a folder of images to project")
    if images and folder:
        raise DataError("images: upload images or name a folder, not both")
    if folder:
        folder = guard().check(folder, "folder")
        if not folder.exists():
            raise DataError(f"folder: {folder}: no such image file or folder")
    encoder_id = request.form.get("project_encoder", "")
    encoders = {encoder.id: encoder for encoder in encoders_of(job)}
    if encoder_id and encoder_id not in encoders:
        raise DataError(f"encoder {encoder_id!r}: not an encoder trained from this model")
    label = request.form.get("project_label", "")
    if label:
        facts.require_conditional("project --label")
        if not label.isdigit() or not 0 <= int(label) < facts.num_classes:
            raise DataError(f"class {label!r}: expected 0..{facts.num_classes - 1}")
    checkpoint = models.checkpoint_argument(job, request.form.get("checkpoint", "last"))
    return values, images, folder, encoders.get(encoder_id), label or None, checkpoint


@blueprint.post("/jobs/<job_id>/project")
def project(job_id):
    """Start a projection run: ``latent project`` then ``infer --z`` of its z file."""
    from . import models

    job = job_or_404(job_id, "model")
    facts = model_facts(job)
    form = _projector_form()
    try:
        values, images, folder, encoder, label, checkpoint = _checked_projection(job, facts, form)
    except DataError as error:
        choices = {key: request.form.get(f"project_{key}", "") for key in ("encoder", "label", "folder")}
        page, _ = models.model_page(job, dict(projector_form=form, projector_error=str(error),
                                              projector_choices=choices))
        return page, 400
    with manager().new_job_folder() as run_folder:
        source = _save_uploads(run_folder, images) if images else folder
        projection_dir, result_dir = run_folder / "projection", jobdir.JobPaths(job.target).result(run_folder.name)
        extra = (["--encoder", encoder.target] if encoder else []) + (["--label", label] if label else [])
        commands = [cli_command("latent", "project", source, "--job", job.target,
                                *to_cli_args(projector.OPTIONS, values), *extra, "--checkpoint", checkpoint,
                                "--out", projection_dir),
                    cli_command("infer", "--job", job.target, "--z", projection_dir / "z.npz",
                                "--checkpoint", checkpoint, "--out", result_dir)]
        count = f"{len(images)} image(s)" if images else Path(folder).name
        start = f", from {encoder.name}" if encoder else ""
        params = dict(values, encoder=encoder.id if encoder else "", label=label or "", folder=str(folder or ""))
        run = manager().create(run_folder, "inference", f"Projection of {count}{start}", commands, model=job.id,
                               task="project", seed=None, view_plugin="gan-view", view_options={"task": "grid"},
                               target=result_dir, latent=run_folder / "latent", projection=projection_dir,
                               checkpoint=request.form.get("checkpoint", "last"),
                               project_params={key: value for key, value in params.items() if value not in (None, "")})
    return redirect(url_for("manage.show_job", job_id=run.id))


def _projection(job):
    """What the run page shows of a run's projection (None without one, or before it is
    written): per-image MSE, seconds per image, the start, its files."""
    folder = job.data.get("projection")
    if not folder or not (Path(folder) / "projection.json").is_file():
        return None
    try:
        info = json.loads((Path(folder) / "projection.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return {"error": f"{folder}/projection.json: not readable ({error})"}
    return {"mean_mse": info.get("mean_mse"), "seconds_per_image": info.get("seconds_per_image"),
            "start": info.get("start"), "count": len(info.get("mse") or []), "settings": info.get("settings") or {},
            "files": [name for name in PROJECTION_FILES if (Path(folder) / name).is_file()]}


@blueprint.route("/jobs/<job_id>/projection/<name>")
def projection_file(job_id, name):
    """A file of a run's projection folder (nothing else: symlinks resolved)."""
    job = job_or_404(job_id, "inference")
    folder = job.data.get("projection")
    path = file_inside(Path(folder), name) if folder and name in PROJECTION_FILES else None
    if path is None:
        abort(404)
    return send_file(path, max_age=0, as_attachment=name.endswith(".npz"))
