"""New dataset (each data plugin's own form) and the dataset page: entries per stage,
samples, the class histogram and the mean image."""
import functools
import io

import numpy as np
from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for

from ..data_plugins import available_plugins
from ..errors import DataError
from . import forms
from .jobs import cli_command
from .common import bare_form, check_paths, dataset_summary, job_or_404, manager, option_args, refuse, \
    render_plugin_form

blueprint = Blueprint("datasets", __name__)
HISTOGRAM_SAMPLE = 20000  # labels read for the class histogram (a sample of larger stages)
MEAN_IMAGE_SIDE = 160  # the mean image is drawn this many pixels wide, at least


@blueprint.route("/datasets/new/<plugin_id>", methods=["GET", "POST"])
def new_dataset(plugin_id):
    plugin = available_plugins().get(plugin_id)
    if plugin is None or plugin_id == "gan-inference":
        abort(404)
    name_form = forms.JobNameForm(meta={"csrf": False})
    form = bare_form(plugin.get_dataset_form())
    options = getattr(plugin, "OPTIONS", [])
    context = dict(plugin=plugin, name_form=name_form)
    if request.method == "POST":
        valid = name_form.validate() & form.validate()
        try:
            if not valid:
                raise DataError("please correct the fields marked in red")
            check_paths(options, form)
        except DataError as error:
            context["form_html"] = render_plugin_form(plugin.get_dataset_template(form))
            return refuse(str(error), "new_dataset.html", **context)
        with manager().new_job_folder() as folder:
            target = folder / "dataset"
            command = ["dataset", "create", plugin_id, *option_args(options, form), "--out", target]
            describe_dataset = ["dataset", "info", target]  # also writes samples.png
            job = manager().create(folder, "dataset", name_form.job_name.data, [cli_command(*command),
                                                                                cli_command(*describe_dataset)],
                                   plugin=plugin_id, plugin_title=plugin.get_title(), target=target)
        return redirect(url_for("manage.show_job", job_id=job.id))
    context["form_html"] = render_plugin_form(plugin.get_dataset_template(form))
    return render_template("new_dataset.html", **context)


def dataset_page(job):
    from .models import warm_fit_checks

    summary = dataset_summary(job)
    if summary:
        warm_fit_checks(job)  # the new-model page then lists the fitting networks at once
    histogram = None
    if summary and summary["classes"]:
        try:
            histogram = class_histogram(str(job.target), job.target.stat().st_mtime)
        except (DataError, OSError, ValueError) as error:
            histogram = {"error": str(error)}
    return render_template("dataset.html", job=job, summary=summary, histogram=histogram,
                           has_samples=(job.target / "samples.png").is_file())


@functools.lru_cache(maxsize=32)
def class_histogram(path, mtime):
    """{stage: {'counts': [n per class], 'names': [...], 'sampled': n read}} of a
    dataset with class labels (`mtime` only keys the cache)."""
    from ..dataset_io import DatasetReader

    reader = DatasetReader(path)
    names = list(reader.label_names or range(reader.num_classes or 0))
    stages = {}
    for stage in reader.stages:
        count = reader.count(stage)
        indices = np.arange(count)
        if count > HISTOGRAM_SAMPLE:
            indices = np.sort(np.random.default_rng(0).choice(count, HISTOGRAM_SAMPLE, replace=False))
        _, labels = reader.read_items(stage, indices)
        if labels is None or np.asarray(labels).ndim != 1:
            return None  # attribute vectors, not classes
        counts = np.bincount(np.asarray(labels, np.int64), minlength=len(names))
        stages[stage] = {"counts": counts.tolist(), "names": [str(n) for n in names], "sampled": len(indices),
                         "max": int(counts.max()) if counts.size else 0}
    return stages


@blueprint.route("/jobs/<job_id>/mean.png")
def mean_image(job_id):
    """The first stage's mean image (mean.binaryproto), scaled up without smoothing."""
    from PIL import Image

    from ..dataset_io import DatasetReader

    job = job_or_404(job_id, "dataset")
    try:
        reader = DatasetReader(str(job.target))
        mean = np.asarray(reader.mean(reader.stages[0]), np.float64)
    except (DataError, OSError, ValueError, IndexError) as error:
        raise DataError(f"{job.target}: no mean image ({error})") from None
    if mean.ndim == 3 and mean.shape[-1] == 1:
        mean = mean[..., 0]
    image = Image.fromarray(np.clip(np.rint(mean), 0, 255).astype(np.uint8))
    scale = max(1, MEAN_IMAGE_SIDE // max(image.size))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return send_file(buffer, mimetype="image/png", max_age=0)
