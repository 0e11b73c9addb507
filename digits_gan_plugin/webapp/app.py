"""The Flask app of ``digits-gan serve``: DIGITS' flow (home, new dataset, new model,
model page with inference) over jobs kept in a jobs directory.

Plugins are found through their entry points and render their own forms; every job
runs in the background as ``digits-gan`` commands (see jobs.py). No TensorFlow here.
"""
import ast
import json
import os
import secrets
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
from flask import (Flask, abort, flash, jsonify, redirect, render_template, render_template_string, request,
                   send_from_directory, url_for)
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import latent
from ..data_plugins import available_plugins
from ..errors import DataError
from ..options import PATH_KINDS, to_cli_args
from ..jobdir import JobPaths, read_metrics
from ..runtime.model_files import describe, list_model_definitions
from . import forms
from .jobs import DONE, RUNNING, JobManager, cli_command
from .safety import PathGuard, check_image_upload

VIEW_ENTRY_POINT_GROUP = "digits.plugins.view"
INFERENCE_PLUGIN = "gan-inference"
MAX_UPLOAD_MB = 16
MAX_PIXELS = 4096 * 4096
# metrics.csv columns that are not losses (the chart draws the others)
NOT_LOSSES = ("epoch", "step", "images_per_sec", "lr")


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


def option_args(options, form):
    """CLI flags for `options` from a plugin form's data ('' / None: not given)."""
    return to_cli_args(options, {option.name: form[option.name].data for option in options if option.name in form})


def syntax_report(source):
    """None when `source` is a model file that compiles and defines UserModel; else
    {message, lineno, lines: [(number, text)]} for the page that shows the error."""
    try:
        tree = ast.parse(source, filename="network.py")
    except SyntaxError as error:
        return {"message": f"line {error.lineno}: syntax error: {error.msg}", "lineno": error.lineno,
                "offset": error.offset, "lines": list(enumerate(source.splitlines(), start=1))}
    if not any(isinstance(node, ast.ClassDef) and node.name == "UserModel" for node in tree.body):
        return {"message": "defines no UserModel class (expected 'class UserModel(Tower)')", "lineno": None,
                "offset": None, "lines": list(enumerate(source.splitlines(), start=1))}
    return None


def create_app(jobs_dir="digits-gan-jobs", allow_roots=(), max_upload_mb=MAX_UPLOAD_MB, max_pixels=MAX_PIXELS):
    """The web app over `jobs_dir` (created if missing); paths typed into forms must lie
    in `jobs_dir` or one of `allow_roots`."""
    manager = JobManager(jobs_dir)
    guard = PathGuard([manager.jobs_dir, *allow_roots])
    app = Flask(__name__)
    app.config.update(SECRET_KEY=_secret_key(manager.jobs_dir), MAX_CONTENT_LENGTH=max_upload_mb * 1024 * 1024,
                      WTF_CSRF_TIME_LIMIT=None)
    app.extensions["digits_gan_jobs"] = manager
    app.add_template_filter(_when, "when")
    CSRFProtect(app)

    def refuse(message, template, status=400, **context):
        flash(message, "danger")
        return render_template(template, **context), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("message.html", title="Form refused",
                               message=f"The form was sent without a valid security token ({error.description}). "
                                       "Reload the page and submit it again."), 400

    @app.errorhandler(413)
    def too_large(error):
        return render_template("message.html", title="Upload refused",
                               message=f"The upload is larger than the limit of {max_upload_mb} MB; nothing was "
                                       "saved."), 413

    @app.errorhandler(404)
    def not_found(error):
        return render_template("message.html", title="Not found", message="No such page or job."), 404

    def check_paths(options, form):
        """DataError unless every path option filled in `form` lies in the allowed roots."""
        for option in options:
            field = form._fields.get(option.name)
            if option.kind in PATH_KINDS and field is not None and field.data:
                guard.check(field.data, option.name)

    def job_or_404(job_id, kind=None):
        job = manager.get(job_id)
        if job is None or (kind and job.kind != kind):
            abort(404)
        return job

    # ------------------------------------------------------------------ home
    @app.route("/")
    def home():
        datasets = manager.all("dataset")
        models = manager.all("model")
        return render_template("home.html", datasets=datasets, models=models, plugins=_plugin_groups(),
                               dataset_info={job.id: _dataset_summary(job) for job in datasets})

    # ------------------------------------------------------------------ datasets
    @app.route("/datasets/new/<plugin_id>", methods=["GET", "POST"])
    def new_dataset(plugin_id):
        plugin = available_plugins().get(plugin_id)
        if plugin is None:
            abort(404)
        name_form = forms.JobNameForm(meta={"csrf": False})
        form = bare_form(plugin.get_dataset_form())
        context = dict(plugin=plugin, name_form=name_form)
        if request.method == "POST":
            valid = name_form.validate() & form.validate()
            try:
                if not valid:
                    raise DataError("please correct the fields marked in red")
                check_paths(getattr(plugin, "OPTIONS", []), form)
            except DataError as error:
                context["form_html"] = render_plugin_form(plugin.get_dataset_template(form))
                return refuse(str(error), "new_dataset.html", **context)
            folder = manager.new_folder()
            command = cli_command("dataset", "create", plugin_id, *option_args(getattr(plugin, "OPTIONS", []), form),
                                  "--out", folder / "dataset")
            describe_dataset = cli_command("dataset", "info", folder / "dataset")  # also writes samples.png
            job = manager.create(folder, "dataset", name_form.job_name.data.strip(), [command, describe_dataset],
                                 plugin=plugin_id, plugin_title=plugin.get_title())
            return redirect(url_for("show_job", job_id=job.id))
        context["form_html"] = render_plugin_form(plugin.get_dataset_template(form))
        return render_template("new_dataset.html", **context)

    # ------------------------------------------------------------------ models
    @app.route("/models/new", methods=["GET", "POST"])
    def new_model():
        form = forms.NewModelForm(meta={"csrf": False})
        datasets = [job for job in manager.all("dataset") if job.status == DONE]
        definitions = list_model_definitions()
        form.dataset.choices = [(job.id, f"{job.name} ({job.id})") for job in datasets]
        form.network.choices = [(name, name) for name in definitions] + [(forms.CUSTOM, "Custom network")]
        trained = [job for job in manager.all("model") if (JobPaths(job.path("model")).checkpoints / "checkpoint").is_file()]
        form.weights.choices = [("", "none")] + [(job.id, f"{job.name} ({job.id})") for job in trained]
        if request.method == "GET" and request.args.get("dataset"):
            form.dataset.data = request.args["dataset"]
        context = dict(form=form, definitions={name: describe(path) for name, path in definitions.items()},
                       report=None)
        if request.method != "POST":
            return render_template("new_model.html", **context)
        if not form.validate():
            return refuse("please correct the fields marked in red", "new_model.html", **context)
        source = None
        if form.network.data == forms.CUSTOM:
            upload = form.custom_file.data
            source = upload.read().decode("utf-8", "replace") if upload and upload.filename else form.custom_network.data
            if not (source or "").strip():
                return refuse("custom network: paste the model file or upload it", "new_model.html", **context)
            context["report"] = syntax_report(source)
            if context["report"]:
                return refuse(f"custom network: {context['report']['message']}; nothing was saved",
                              "new_model.html", **context)
        folder = manager.new_folder()
        network = definitions.get(form.network.data)
        if source is not None:
            network = folder / "network.py"
            network.write_text(source, encoding="utf-8")
        dataset = manager.get(form.dataset.data)
        args = ["train", "--dataset", dataset.path("dataset"), "--network", network, "--out", folder / "model",
                "--solver", form.solver.data, "--lr", form.lr.data, "--epochs", form.epochs.data,
                "--batch-size", form.batch_size.data]
        for flag, value in (("--max-steps", form.max_steps.data), ("--seed", form.seed.data)):
            if value is not None:
                args += [flag, value]
        if form.weights.data:
            args += ["--weights", manager.get(form.weights.data).path("model")]
        job = manager.create(folder, "model", form.job_name.data.strip(), [cli_command(*args)],
                             dataset=dataset.id, dataset_name=dataset.name, network=form.network.data)
        return redirect(url_for("show_job", job_id=job.id))

    # ------------------------------------------------------------------ any job
    @app.route("/jobs/<job_id>")
    def show_job(job_id):
        job = job_or_404(job_id)
        if job.kind == "dataset":
            return render_template("dataset.html", job=job, summary=_dataset_summary(job))
        if job.kind == "model":
            return _model_page(job)
        return _inference_page(job)

    @app.route("/jobs/<job_id>/status.json")
    def job_status(job_id):
        job = job_or_404(job_id)
        return jsonify(status=job.status, ended=job.ended, exit_code=job.data.get("exit_code"),
                       progress=job.progress(), log=job.log_tail())

    @app.route("/jobs/<job_id>/metrics.json")
    def job_metrics(job_id):
        job = job_or_404(job_id, "model")
        paths = JobPaths(job.path("model"))
        rows = read_metrics(paths.metrics)
        columns = [c for c in (rows[0] if rows else {}) if c not in NOT_LOSSES]
        samples = sorted(paths.samples.glob("fakes_epoch*.png")) if paths.samples.is_dir() else []
        sample = None
        if samples:
            sample = url_for("job_file", job_id=job.id, name=f"model/samples/{samples[-1].name}",
                             v=int(samples[-1].stat().st_mtime))
        return jsonify(status=job.status, losses=columns, sample=sample, sample_name=samples[-1].name if samples else None,
                       rows=[{k: _number(v) for k, v in row.items()} for row in rows], progress=job.progress())

    @app.route("/jobs/<job_id>/files/<path:name>")
    def job_file(job_id, name):
        job = job_or_404(job_id)
        return send_from_directory(job.folder, name)  # refuses names that leave the folder

    @app.post("/jobs/<job_id>/stop")
    def stop_job(job_id):
        job = job_or_404(job_id)
        if manager.stop(job):
            flash("Stop requested: the job writes a checkpoint and stops.", "info")
        return redirect(url_for("show_job", job_id=job.id))

    @app.post("/jobs/<job_id>/resume")
    def resume_job(job_id):
        job = job_or_404(job_id)
        if job.status == RUNNING:
            flash("The job is running already.", "warning")
        elif job.kind == "model" and (JobPaths(job.path("model")).checkpoints / "checkpoint").is_file():
            manager.start(job, [cli_command("train", "--out", job.path("model"), "--resume")])
        else:  # nothing to continue from: run it again (a dataset is only renamed into place when complete)
            manager.start(job, job.commands)
        return redirect(url_for("show_job", job_id=job.id))

    @app.post("/jobs/<job_id>/gallery")
    def write_job_gallery(job_id):
        from ..gallery import write_gallery

        job = job_or_404(job_id, "model")
        try:
            write_gallery(str(job.path("model")), progress=False)
        except DataError as error:
            flash(f"gallery: {error}", "danger")
            return redirect(url_for("show_job", job_id=job.id))
        return redirect(url_for("job_file", job_id=job.id, name="model/gallery/index.html"))

    @app.post("/jobs/<job_id>/infer")
    def infer(job_id):
        job = job_or_404(job_id, "model")
        inference_form, view_form, view_id = _inference_forms(job)
        plugin = available_plugins()[INFERENCE_PLUGIN]
        try:
            if not (inference_form.validate() & view_form.validate()):
                raise DataError("please correct the fields marked in red")
            task = latent.get_task(inference_form.task.data)
            options = plugin.task_command_options(task.name)
            check_paths(plugin.OPTIONS, inference_form)
            check_paths(getattr(view_plugins()[view_id], "OPTIONS", []), view_form)
            uploads = [f for f in request.files.getlist("images") if f and f.filename]
            if uploads and task.name != "encode-list":
                raise DataError("images: uploads are used by the encode-list task only")
            images = [(os.path.basename(f.filename), check_image_upload(f, max_pixels)) for f in uploads]
        except DataError as error:
            flash(str(error), "danger")
            return _model_page(job, inference_form, view_form, view_id), 400
        folder = manager.new_folder()
        if images:
            upload_dir = folder / "uploads"
            upload_dir.mkdir()
            for index, (name, data) in enumerate(images):
                (upload_dir / f"{index:04d}-{name}").write_bytes(data)
            options = [o for o in options if o.name != "folder"]
        args = option_args(options, inference_form) + (["--folder", upload_dir] if images else [])
        latent_dir, result_dir = folder / "latent", job.path("model", "inference", folder.name)
        commands = [cli_command("latent", task.name, *args, "--out", latent_dir, "--quiet"),
                    cli_command("infer", "--job", job.path("model"), "--dataset", latent_dir, "--out", result_dir)]
        view_options = {name: field.data for name, field in view_form._fields.items()}
        run = manager.create(folder, "inference", f"{task.title} of {job.name}", commands, model=job.id,
                             task=task.name, view_plugin=view_id, view_options=view_options,
                             result=str(result_dir))
        return redirect(url_for("show_job", job_id=run.id))

    def _inference_forms(job):
        plugin = available_plugins()[INFERENCE_PLUGIN]
        inference_form = bare_form(plugin.get_inference_form())
        if request.method == "GET":
            inference_form.job.data = str(job.path("model"))
        views = view_plugins()
        view_id = request.values.get("view_plugin", next(iter(views)))
        if view_id not in views:
            view_id = next(iter(views))
        return inference_form, bare_form(views[view_id].get_config_form(), prefix="view"), view_id

    def _model_page(job, inference_form=None, view_form=None, view_id=None):
        if inference_form is None:
            inference_form, view_form, view_id = _inference_forms(job)
        paths = JobPaths(job.path("model"))
        config = json.loads(paths.config.read_text(encoding="utf-8")) if paths.config.is_file() else {}
        plugin = available_plugins()[INFERENCE_PLUGIN]
        views = view_plugins()
        runs = [run for run in manager.all("inference") if run.model == job.id]
        return render_template(
            "model.html", job=job, config=config, events=paths.events.resolve(),
            has_checkpoint=(paths.checkpoints / "checkpoint").is_file(),
            has_gallery=(paths.root / "gallery" / "index.html").is_file(), runs=runs,
            inference_html=render_plugin_form(plugin.get_inference_template(inference_form)),
            view_html=render_plugin_form(views[view_id].get_config_template(view_form)),
            views=views, view_id=view_id, task_fields=_task_fields(plugin))

    def _inference_page(job):
        model = manager.get(job.model)
        rendered, error = None, None
        if job.status == DONE:
            try:
                rendered = _render_result(job)
            except (DataError, OSError, KeyError, ValueError) as failure:
                error = str(failure)
        return render_template("inference.html", job=job, model=model, rendered=rendered, error=error,
                               views=view_plugins())

    def _render_result(job):
        """HTML of the inference result through the job's view plugin (DIGITS' order:
        header, one view per item, summary)."""
        views = view_plugins()
        view_id = request.args.get("view_plugin", job.view_plugin)
        options = dict(job.view_options)
        if request.args.get("view_task"):
            options["task"] = request.args["view_task"]
        visualization = views[view_id](str(job.path("latent")), **options)
        with np.load(Path(job.result) / "result.npz", allow_pickle=False) as result:
            arrays = {key: result[key] for key in result.files}
        outputs = {key: value for key, value in arrays.items() if key != "inputs"}
        items = []
        for index in range(len(arrays["inputs"])):
            data = visualization.process_data(str(index), arrays["inputs"][index],
                                              {key: value[index] for key, value in outputs.items()})
            items.append(render_plugin_form(visualization.get_view_template(data)))
        header = render_plugin_form(visualization.get_header_template())
        summary = render_plugin_form(visualization.get_summary_template())
        tasks = next((o.choices for o in getattr(views[view_id], "OPTIONS", []) if o.name == "task" and o.choices), ())
        return {"header": header, "items": [item for item in items if item.strip()], "summary": summary,
                "view_id": view_id, "options": options, "tasks": tasks}

    return app


def _task_fields(plugin):
    """{task: [form field names it uses]} so the page can hide the other tasks' fields."""
    return {name: ["task"] + [option.name for option in plugin.task_command_options(name)]
            + (["images"] if name == "encode-list" else []) for name in latent.TASKS}


def _when(stamp):
    """'2026-11-22T09:49:58+00:00' -> '2026-11-22 09:49:58 UTC' for the pages."""
    return (stamp or "").replace("T", " ").replace("+00:00", " UTC")


def _secret_key(jobs_dir):
    """A key kept in the jobs dir, so sessions and form tokens survive a restart."""
    path = Path(jobs_dir) / ".secret_key"
    if not path.is_file():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _plugin_groups():
    """{category: [plugin class]} of the data plugins, for the New dataset menu."""
    groups = {}
    for plugin_id, plugin in sorted(available_plugins().items()):
        groups.setdefault(plugin.get_category(), []).append(plugin)
    return groups


def _dataset_summary(job):
    """{stage: count}, shape and classes of a built dataset, from its dataset.json."""
    path = job.path("dataset", "dataset.json")
    if not path.is_file():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    stages = meta.get("stages", {})
    first = next(iter(stages.values()), {})
    return {"counts": {stage: info.get("count") for stage, info in stages.items()},
            "shape": "x".join(map(str, first.get("feature_shape") or [])), "classes": meta.get("num_classes"),
            "plugin": meta.get("plugin_id")}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
