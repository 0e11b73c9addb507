"""New model (networks checked against the dataset first) and the model page: live
charts, snapshots, checkpoints, evaluation, TensorBoard, gallery and the inference form."""
import ast
import io
import json
import os
import tempfile
from pathlib import Path

from flask import (Blueprint, current_app, flash, jsonify, redirect, render_template, render_template_string,
                   request, send_file, url_for)

from .. import jobdir
from ..errors import DataError, DigitsGanError
from ..runtime.model_files import describe, list_model_definitions
from ..runtime.train_options import TRAIN_OPTIONS
from ..options import to_cli_args
from . import charts, forms, tensorboard
from .charts import finite_number
from .common import dataset_summary, job_or_404, manager, model_facts, refuse
from .fitcheck import FitChecker, rank
from .jobs import DONE, cli_command
from .safety import is_local_address
from .store import dataset_meta

blueprint = Blueprint("models", __name__)
EVALUATE_SAMPLES = 1000
TIMELAPSE_FRAME_MS = 400


def fit_checker():
    return current_app.extensions.setdefault("digits_gan_fit", FitChecker())


def syntax_report(source):
    """None when `source` is a model file that compiles and defines UserModel; else
    {message, lineno, lines: [(number, text)]} for the page that shows the error."""
    try:
        tree = ast.parse(source, filename="network.py")
    except SyntaxError as error:
        where = f"line {error.lineno}: " if error.lineno else ""
        return {"message": f"{where}syntax error: {error.msg}", "lineno": error.lineno,
                "offset": error.offset, "lines": list(enumerate(source.splitlines(), start=1))}
    except (ValueError, MemoryError, RecursionError) as error:  # a NUL byte; nesting the parser gives up on
        reason = str(error) or "too deeply nested for the Python parser"
        return {"message": f"not a Python file the parser can read ({reason})", "lineno": None, "offset": None,
                "lines": list(enumerate(source.splitlines(), start=1))}
    if not any(isinstance(node, ast.ClassDef) and node.name == "UserModel" for node in tree.body):
        return {"message": "defines no UserModel class (expected 'class UserModel(Tower)')", "lineno": None,
                "offset": None, "lines": list(enumerate(source.splitlines(), start=1))}
    return None


def _check_order(dataset, definitions):
    """Model file paths, those named after the dataset's plugin first (checked first)."""
    plugin = str((dataset_meta(dataset.target) or {}).get("plugin_id") or "").lower()
    names = sorted(definitions, key=lambda name: (not plugin or plugin not in name.lower(), name))
    return [str(definitions[name]) for name in names]


def warm_fit_checks(dataset):
    """Start checking the shipped definitions against `dataset` (no wait)."""
    fit_checker().results(dataset.target, _check_order(dataset, list_model_definitions()))


def _network_rows(dataset, definitions):
    """[(name, description, result or None)] best fit first, for the chosen dataset."""
    if dataset is None:
        return [(name, describe(path), None) for name, path in definitions.items()]
    results = fit_checker().results(dataset.target, _check_order(dataset, definitions))
    by_name = {name: results[str(path)] for name, path in definitions.items()}
    return [(name, describe(definitions[name]), by_name[name]) for name in rank(by_name, dataset_meta(dataset.target))]


def _new_model_context(form, train_form):
    datasets = [job for job in manager().all("dataset") if job.status == DONE and dataset_summary(job)]
    form.dataset.choices = [(job.id, job.name) for job in datasets]
    chosen = request.values.get("dataset") or form.dataset.data or (datasets[0].id if datasets else None)
    dataset = next((job for job in datasets if job.id == chosen), None)
    if dataset is not None:
        form.dataset.data = dataset.id
    definitions = list_model_definitions()
    rows = _network_rows(dataset, definitions)
    form.network.choices = [(name, name) for name, _, _ in rows] + [(forms.CUSTOM, "Custom network")]
    if request.method == "GET" and request.args.get("network"):
        form.network.data = request.args["network"]
    if not form.network.data:  # the best fit (a clone keeps its own network)
        form.network.data = next((name for name, _, result in rows if result and result["fits"]), None)
    trained = [job for job in manager().all("model") if jobdir.has_checkpoint(job.target)]
    form.weights.choices = [("", "none")] + [(job.id, job.name) for job in trained]
    checking = dataset is not None and any(result is None for _, _, result in rows)
    return dict(form=form, train_form=train_form, rows=rows, dataset=dataset, definitions=definitions,
                checking=checking, report=None, main_options=forms.MAIN_TRAIN_OPTIONS,
                local_user=is_local_address(request.remote_addr))


def _clone_into(form, train_form, job):
    """Fill the new-model form from an existing model's config (Clone)."""
    config = _config(job)
    form.job_name.data = f"{job.name} (copy)"
    form.dataset.data = job.dataset_id
    form.network.data = job.network if job.network in list_model_definitions() else None
    for option in forms.FORM_TRAIN_OPTIONS:
        if config.get(option.name) is not None:
            value = config[option.name]
            train_form[option.name].data = ",".join(map(str, value)) if option.is_list else value


def _keep_typed(form, train_form, args):
    """Refill the fields typed before the Dataset menu reloaded the page (?typed=1&...,
    sent by app.js reloadForDataset; an unchecked box is simply absent)."""
    for field in (form.job_name, form.network, form.weights, *train_form):
        if field.type == "BooleanField":
            field.data = field.name in args
        elif field.name in args:
            field.data = args[field.name]


@blueprint.route("/models/new", methods=["GET", "POST"])
def new_model():
    form = forms.NewModelForm(meta={"csrf": False})
    train_form = forms.train_options_form()
    if request.method == "GET" and request.args.get("clone"):
        _clone_into(form, train_form, job_or_404(request.args["clone"], "model"))
    elif request.method == "GET" and request.args.get("dataset"):
        form.dataset.data = request.args["dataset"]
        if request.args.get("typed"):
            _keep_typed(form, train_form, request.args)
    context = _new_model_context(form, train_form)
    if request.method != "POST":
        return render_template("new_model.html", **context)
    try:
        return _create_model(form, train_form, context)
    except DataError as error:
        return refuse(str(error), "new_model.html", **context)


def _custom_source(form, context):
    if not context["local_user"]:
        raise DataError("custom network: accepted only from this machine (the code runs as you)")
    upload = form.custom_file.data
    if upload and upload.filename:
        try:
            source = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"custom network {upload.filename}: not UTF-8 text") from None
    else:
        source = form.custom_network.data or ""
    if not source.strip():
        raise DataError("custom network: paste the model file or upload it")
    context["report"] = syntax_report(source)
    if context["report"]:
        raise DataError(f"custom network: {context['report']['message']}; nothing was saved")
    return source


def _check_fit(dataset, network_path, label):
    result = fit_checker().check_now(dataset.target, network_path)
    if not result["fits"]:
        raise DataError(f"{label} cannot train {dataset.name}: {result['reason']}; nothing was saved")


def _create_model(form, train_form, context):
    if not (form.validate() & train_form.validate()):
        raise DataError("please correct the fields marked in red")
    dataset = context["dataset"] if context["dataset"] and context["dataset"].id == form.dataset.data else None
    if dataset is None:
        raise DataError("dataset: choose a finished dataset")
    source = _custom_source(form, context) if form.network.data == forms.CUSTOM else None
    if source is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="network-custom-", delete=False,
                                         encoding="utf-8") as handle:
            handle.write(source)
        try:
            _check_fit(dataset, handle.name, "the custom network")
        finally:
            os.unlink(handle.name)
    else:
        network = context["definitions"].get(form.network.data)
        if network is None:
            raise DataError(f"network {form.network.data!r}: not a shipped model definition")
        _check_fit(dataset, network, form.network.data)
    values = dict(forms.train_values(train_form), dataset=dataset.target)
    if form.weights.data:
        values["weights"] = job_or_404(form.weights.data, "model").target
    with manager().new_job_folder() as folder:
        network = context["definitions"].get(form.network.data)
        if source is not None:
            network = folder / "network.py"
            network.write_text(source, encoding="utf-8")
        target = folder / "model"
        args = ["train", "--network", network, "--out", target, *to_cli_args(TRAIN_OPTIONS, values)]
        job = manager().create(folder, "model", form.job_name.data, [cli_command(*args)], dataset=dataset.id,
                               dataset_name=dataset.name, network=form.network.data, target=target)
    return redirect(url_for("manage.show_job", job_id=job.id))


@blueprint.route("/models/fit.json")
def network_fit():
    """The fit checks of a dataset (polled by the new-model page while they run)."""
    dataset = job_or_404(request.args.get("dataset", ""), "dataset")
    rows = _network_rows(dataset, list_model_definitions())
    return jsonify(pending=any(result is None for _, _, result in rows),
                   networks=[{"name": name, "result": result} for name, _, result in rows])


def _config(job):
    try:
        return jobdir.read_config(job.target) if jobdir.is_job(job.target) else {}
    except DigitsGanError:
        return {}


def checkpoints(job, config):
    """[{value, label, size}] of the job's checkpoints, newest first, 'best' first of all."""
    paths = jobdir.JobPaths(job.target)
    per_epoch = config.get("steps_per_epoch") or 0
    found = []
    for prefix in jobdir.checkpoint_candidates(paths.checkpoints):
        step = jobdir.checkpoint_step(prefix)
        epoch = f", epoch {step / per_epoch:.3g}" if per_epoch and step is not None else ""
        found.append({"value": Path(prefix).name, "label": f"step {step}{epoch}", "size": _size_of(prefix)})
    if jobdir.checkpoint_candidates(paths.best):
        best = jobdir.checkpoint_candidates(paths.best)[0]
        found.insert(0, {"value": "best", "label": f"best ({config.get('best_metric')}), step "
                                                   f"{jobdir.checkpoint_step(best)}", "size": _size_of(best)})
    return found


def _size_of(prefix):
    folder, name = os.path.split(prefix)
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.name.startswith(name + "."))
    except OSError:
        return 0


def checkpoint_argument(job, value):
    """The `--checkpoint` value for a choice of the selector; DataError otherwise."""
    if value in ("", "last", None):
        return "last"
    known = {entry["value"] for entry in checkpoints(job, _config(job))}
    if value not in known:
        raise DataError(f"checkpoint {value!r}: not a checkpoint of this job")
    if value == "best":
        return "best"
    return str(jobdir.JobPaths(job.target).checkpoints / value)


def snapshots(job):
    """[(epoch, file name)] of the job's fixed-seed sample grids, oldest first."""
    samples = jobdir.JobPaths(job.target).samples
    found = []
    for path in sorted(samples.glob("fakes_epoch*.png")) if samples.is_dir() else []:
        digits = path.stem[len("fakes_epoch"):]
        if digits.isdigit():
            found.append((int(digits), path.name))
    return found


def evaluation(job):
    """eval.json of the job, or None."""
    path = jobdir.JobPaths(job.target).eval_json
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def evaluation_html(result):
    """The figures of an eval.json dict as the gallery shows them (templates/results/metrics.html);
    a one-line notice for a file evaluate did not write."""
    from .. import pictures
    from ..evaluation import metrics_context

    try:
        context = metrics_context(result)
    except DataError as error:
        return render_template_string('<p class="text-danger">{{ error }}</p>', error=str(error))
    return render_template_string(pictures.template_text("metrics.html"), **context)


def evaluable(facts, config):
    """Whether `digits-gan evaluate` applies: a generator (z input) whose dataset has the
    class or attribute labels a judge trains on."""
    from ..dataset_io import DatasetReader
    from ..evaluation import dataset_labels

    if facts is None or facts.inference_input != "z" or not os.path.isdir(config.get("dataset") or ""):
        return False  # (a missing folder: no DatasetReader, which would try to recover a staged one)
    try:
        dataset_labels(DatasetReader(config["dataset"]))
    except DigitsGanError:
        return False
    return True


def model_page(job, inference=None):
    from . import results

    config, facts = _config(job), model_facts(job)
    found = checkpoints(job, config)
    result = evaluation(job)
    context = dict(job=job, config=config, facts=facts, checkpoints=found, snapshots=snapshots(job),
                   checkpoint_bytes=sum(entry["size"] for entry in found),
                   evaluation_html=evaluation_html(result) if result else None,
                   latest_checkpoint=next((entry for entry in found if entry["value"] != "best"), None),
                   evaluable=evaluable(facts, config), runs=manager().runs_of(job),
                   tensorboard=tensorboard.url_for_job(job), tensorboard_available=tensorboard.available(),
                   has_gallery=(job.target / "gallery" / "index.html").is_file(),
                   dataset=manager().get(job.dataset_id) if job.dataset_id else None)
    context.update(results.inference_context(job, facts, found, inference))
    return render_template("model.html", **context), 400 if inference and inference.get("error") else 200


@blueprint.route("/jobs/<job_id>/metrics.json")
def job_metrics(job_id):
    job = job_or_404(job_id, "model")
    rows = jobdir.read_metrics(job.target)
    step_rows = jobdir.read_step_metrics(job.target)
    latest = snapshots(job)[-1:] if jobdir.JobPaths(job.target).samples.is_dir() else []
    sample = None
    if latest:
        sample = url_for("manage.job_file", job_id=job.id, name=f"samples/{latest[0][1]}", v=latest[0][0])
    return jsonify(status=job.status, sample=sample, sample_name=latest[0][1] if latest else None,
                   panels=charts.panels(rows, step_rows), progress=job.progress(),
                   epochs=[{k: finite_number(v) for k, v in row.items()} for row in rows][-1:])


@blueprint.route("/jobs/<job_id>/timelapse.gif")
def timelapse(job_id):
    """Every epoch's fixed-seed grid as one GIF that plays forward and back (made on the
    fly: nothing is written into the job)."""
    from PIL import Image

    job = job_or_404(job_id, "model")
    samples = jobdir.JobPaths(job.target).samples
    frames = []
    for _, name in snapshots(job):
        with Image.open(samples / name) as image:
            frames.append(image.convert("RGB"))
    if not frames:
        raise DataError(f"{job.name}: no sample grids yet")
    frames += frames[-2:0:-1]  # ping-pong
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=TIMELAPSE_FRAME_MS, loop=0)
    buffer.seek(0)
    return send_file(buffer, mimetype="image/gif", max_age=0)


@blueprint.post("/jobs/<job_id>/evaluate")
def evaluate(job_id):
    job = job_or_404(job_id, "model")
    if not evaluable(model_facts(job), _config(job)):
        raise DataError("evaluate: only generators whose dataset has class or attribute labels (for the judge)")
    samples = request.form.get("samples", str(EVALUATE_SAMPLES))
    if not samples.isdigit() or not 20 <= int(samples) <= 100000:
        raise DataError(f"samples: expected a whole number from 20 to 100000, got {samples!r}")
    with manager().new_job_folder() as folder:
        manager().create(folder, "evaluation", f"Evaluation of {job.name}",
                         [cli_command("evaluate", job.target, "--samples", samples, "--no-progress")],
                         model=job.id, target=job.target)
    flash("Evaluation started: the figures appear here when it is done.", "info")
    return redirect(url_for("manage.show_job", job_id=job.id, _anchor="evaluation"))


@blueprint.post("/jobs/<job_id>/tensorboard")
def start_tensorboard(job_id):
    job = job_or_404(job_id, "model")
    url = tensorboard.start(job)
    return redirect(url)


@blueprint.post("/jobs/<job_id>/gallery")
def write_job_gallery(job_id):
    from ..gallery import write_gallery

    job = job_or_404(job_id, "model")
    write_gallery(str(job.target), progress=False, title=job.name)
    return redirect(url_for("manage.job_file", job_id=job.id, name="gallery/index.html"))
