"""Pages and actions for any job: the home page (datasets and models, grouped by
dataset), a job's page, status, files, Stop, Resume, Rename, Delete and Download."""
import os
import tempfile
import zipfile

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for

from .. import jobdir
from ..errors import DataError
from ..data_plugins import available_plugins
from .common import dataset_summary, job_or_404, manager
from .jobs import RUNNING, cli_command
from .safety import file_inside

blueprint = Blueprint("manage", __name__)


@blueprint.route("/")
def home():
    jobs = manager().all()
    datasets = [job for job in jobs if job.kind == "dataset"]
    models = [job for job in jobs if job.kind == "model"]
    names = {job.id: job.name for job in datasets}
    groups = {}  # dataset name -> its models, newest group first
    for model in models:
        groups.setdefault(names.get(model.dataset_id) or model.dataset_name or "another dataset", []).append(model)
    return render_template("home.html", datasets=datasets, model_groups=list(groups.items()), plugins=_plugin_groups(),
                           dataset_info={job.id: dataset_summary(job) for job in datasets},
                           unreadable=manager().problems())


def _plugin_groups():
    """{category: [plugin class]} of the data plugins, for the New dataset menu."""
    groups = {}
    for plugin_id, plugin in sorted(available_plugins().items()):
        groups.setdefault(plugin.get_category(), []).append(plugin)
    return groups


@blueprint.route("/jobs/<job_id>")
def show_job(job_id):
    from . import datasets, models, results

    job = job_or_404(job_id)
    if job.kind == "dataset":
        return datasets.dataset_page(job)
    if job.kind in ("model", "evaluation"):
        return models.model_page(job_or_404(job.model_id) if job.kind == "evaluation" else job)
    return results.inference_page(job)


@blueprint.route("/jobs/<job_id>/status.json")
def job_status(job_id):
    job = job_or_404(job_id)
    return jsonify(status=job.status, ended=job.ended, exit_code=job.exit_code, error=job.error,
                   progress=job.progress(), log=job.log_tail())


@blueprint.route("/jobs/<job_id>/files/<path:name>")
def job_file(job_id, name):
    """A file of the job's output (symlinks resolved: nothing outside the job's folder)."""
    job = job_or_404(job_id)
    path = file_inside(job.target, name)
    if path is None:
        abort(404)
    return send_file(path, max_age=0)


@blueprint.post("/jobs/<job_id>/stop")
def stop_job(job_id):
    job = job_or_404(job_id)
    if manager().stop(job):
        flash("Stop requested: the job writes a checkpoint and stops.", "info")
    return redirect(url_for("manage.show_job", job_id=job.id))


def resume_commands(job):
    """What Resume runs: a training job with a config continues (`train --resume`, which
    also recovers a job stopped during start-up); anything else runs its commands again
    (a dataset is only renamed into place when complete)."""
    if job.kind == "model" and jobdir.is_job(job.target):
        return [cli_command("train", "--out", job.target, "--resume")]
    if not job.commands:
        raise DataError(f"{job.target}: nothing to run again (made outside the web UI)")
    return job.commands


@blueprint.post("/jobs/<job_id>/resume")
def resume_job(job_id):
    job = job_or_404(job_id)
    if job.status == RUNNING or manager().start(job, resume_commands(job)) is None:
        flash("The job is running already.", "warning")
    return redirect(url_for("manage.show_job", job_id=job.id))


@blueprint.post("/jobs/<job_id>/rename")
def rename_job(job_id):
    job = job_or_404(job_id)
    manager().rename(job, request.form.get("name", ""))
    return redirect(url_for("manage.show_job", job_id=job.id))


@blueprint.post("/jobs/<job_id>/delete")
def delete_job(job_id):
    job = job_or_404(job_id)
    if request.form.get("confirm") != job.name:
        raise DataError(f"delete: type the job's name ({job.name}) to confirm")
    manager().delete(job)
    flash(f"Deleted {job.name}.", "info")
    parent = job.model_id if job.kind == "inference" else None
    return redirect(url_for("manage.show_job", job_id=parent) if parent else url_for("manage.home"))


@blueprint.route("/jobs/<job_id>/download.zip")
def download_job(job_id):
    """The job's output folder as a zip (files only; links are not followed)."""
    job = job_or_404(job_id)
    if not job.target.is_dir():
        abort(404)
    spool = tempfile.TemporaryFile()
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, subfolders, files in os.walk(job.target):
            subfolders[:] = [name for name in subfolders if not os.path.islink(os.path.join(folder, name))]
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    archive.write(path, os.path.relpath(path, job.target.parent))
    spool.seek(0)
    safe_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in job.name) or job.id
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name=f"{safe_name}.zip")
