"""`digits-gan gallery JOBDIR`: one static, offline page of everything a job made.

Sections in pipeline order: training (reals, every epoch's fixed-seed grid, a timelapse
GIF of them, the loss curve), evaluation (eval.json), then each inference result
(jobdir.InferenceResult) drawn with the DIGITS view plugin's templates and picture math
(pictures.py): a labelled grid of its images, its animation (ping-pong, frames at the
grid's size), encoder rows. Pictures are files beside index.html, linked relatively; the
folder is built aside and renamed into place, so a second run replaces it whole.
"""
import datetime
import json
import os
import re
import shutil

import jinja2
import numpy as np
from PIL import Image

from . import pictures
from .errors import DataError
from .files import staged_folder
from .jobdir import InferenceResult, JobPaths
from .jobdir import find_results as _result_paths
from .latent import TASKS, format_vector
from .pictures import GIF_FRAME_MS

TIMELAPSE_FRAME_MS = 400
TIMELAPSE_MAX_FRAMES = 120
UI_STYLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webapp", "static", "style.css")
_EPOCH_GRID = re.compile(r"^fakes_epoch(\d+)\.png$")


def find_results(job_dir):
    """The job's inference results (jobdir.InferenceResult), sorted by name."""
    return [InferenceResult(path) for path in _result_paths(job_dir)]


def epoch_grids(job_dir):
    """[(epoch, path)] of the job's fixed-seed sample grids, in epoch order."""
    folder = JobPaths(job_dir).samples
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / m.group(0)) for m in map(_EPOCH_GRID.match, os.listdir(folder)) if m]
    return sorted(found)


def default_title(job_dir):
    """The job's name: its folder's, or the parent's for a web UI job (<id>/model)."""
    path = os.path.abspath(job_dir)
    name = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) if name == "model" else name


class _Page:
    """The gallery folder being written: pictures go in, relative names come out."""

    def __init__(self, folder):
        self.folder = folder
        self.env = jinja2.Environment(autoescape=True)

    def png(self, name, image):
        with open(os.path.join(self.folder, name), "wb") as handle:
            handle.write(pictures.png_bytes(image))
        return name

    def gif(self, name, frames, duration_ms):
        with open(os.path.join(self.folder, name), "wb") as handle:
            handle.write(pictures.gif_bytes(frames, duration_ms))
        return name

    def copy(self, name, path):
        shutil.copyfile(path, os.path.join(self.folder, name))
        return name

    def render(self, template, context):
        return self.env.from_string(pictures.template_text(template)).render(**context)


def write_gallery(job_dir, progress=True, title=None):
    """Render `job_dir`'s pictures, evaluation and inference results into
    `job_dir/gallery/` and return the path of its index.html."""
    from tqdm import tqdm

    if not os.path.isdir(job_dir):
        raise DataError(f"{job_dir}: job directory not found")
    results = find_results(job_dir)
    paths = JobPaths(job_dir)
    if not results and not epoch_grids(job_dir) and not (paths.samples / "reals.png").is_file():
        raise DataError(f"{job_dir}: no inference results (inference/*/result.npz) or sample grids to show")
    target = os.path.join(job_dir, "gallery")
    with staged_folder(target, "gallery") as staging:
        page = _Page(staging)
        sections = [_training_section(paths, page), _evaluation_section(paths, page)]
        for result in tqdm(results, desc="gallery", unit="result", disable=not progress or None):
            sections.append(_result_section(result, page))
        sections = [section for section in sections if section]
        ui_style = open(UI_STYLE, encoding="utf-8").read() if os.path.isfile(UI_STYLE) else ""
        html = page.render("gallery.html", {
            "title": title or default_title(job_dir), "subtitle": f"{len(results)} inference result(s)",
            "sections": sections, "ui_style": ui_style, "style": pictures.template_text("style.css"),
            "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")})
        (staging / "index.html").write_text(html, encoding="utf-8")
    return os.path.join(target, "index.html")


def _training_section(paths, page):
    """Reals, every epoch's fixed-seed grid, their timelapse GIF and the loss curve."""
    figures, grids = [], []
    reals = paths.samples / "reals.png"
    if reals.is_file():
        figures.append(_picture_figure(page, "training-reals.png", reals, "real images"))
    for epoch, path in epoch_grids(paths.root):
        figure = _picture_figure(page, f"training-epoch{epoch:04d}.png", path, f"epoch {epoch}")
        figures.append(figure)
        grids.append(np.asarray(Image.open(path).convert("RGB")))
    if len(grids) > 1:
        same = [grid for grid in grids if grid.shape == grids[-1].shape]
        step = max(1, -(-len(same) // TIMELAPSE_MAX_FRAMES))
        frames = same[::-1][::step][::-1]  # keeps the last epoch
        name = page.gif("training-timelapse.gif", frames, TIMELAPSE_FRAME_MS)
        figures.append({"src": name, "caption": f"timelapse of {len(frames)} epochs",
                        "width": figures[-1]["width"]})
    if paths.loss_curve.is_file():
        figures.append(_picture_figure(page, "training-loss.png", paths.loss_curve, "loss curve", zoom=1))
    if not figures:
        return None
    return {"id": "training", "title": "Training", "subtitle": f"{len(grids)} epoch grid(s), fixed seed",
            "figures": figures}


def _picture_figure(page, name, path, caption, zoom=None):
    page.copy(name, path)
    with Image.open(path) as picture:
        width, height = picture.size
    scale = zoom or max(1, min(3, 360 // max(width, 1)))
    return {"src": name, "caption": caption, "width": width * scale}


def _evaluation_section(paths, page):
    """eval.json's figures (templates/results/metrics.html), generated vs real, and its summary."""
    from .evaluation import metrics_context

    if not paths.eval_json.is_file():
        return None
    try:
        result = json.loads(paths.eval_json.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{paths.eval_json}: not valid JSON ({error})") from None
    context = metrics_context(result, paths.eval_json)
    return {"id": "evaluation", "title": "Evaluation", "subtitle": "a judge trained on the dataset's labels",
            "html": [page.render("metrics.html", context)], "text": result.get("summary", "")}


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _result_section(result, page):
    """One inference result: the view plugin's header (grid + animation) and, for
    encoders, its item rows, with every picture a file of the gallery."""
    slug, latent = _slug(result.name), result.latent
    name = result.meta.get("task") or latent.get("task") or "result"
    if name == "classes" and result.meta.get("classes"):  # `infer --classes`: one row per class
        latent = dict(latent, row_labels=[f"class {c}" for c in result.meta["classes"]])
    section = {"id": "result-" + slug, "title": result.name,
               "subtitle": TASKS[name].title if name in TASKS else name, "html": [], "files": []}
    details = _details(result)
    if result.is_encoder:
        section["html"].append(page.render("header.html", {"details": details}))
        section["html"] += [page.render("item.html", row) for row in _encoder_rows(result, page, slug)]
        return section
    images = result.images
    rows, cols = pictures.grid_shape(len(images), latent)
    tile = images.shape[1]
    os.makedirs(os.path.join(page.folder, slug), exist_ok=True)
    cells = [page.png(f"{slug}/cell-{index:04d}.png", image) for index, image in enumerate(images)]
    grid_name = page.png(f"{slug}-grid.png", pictures.grid_image(images, latent))
    context = {"details": details, "animation": None,
               "grid": pictures.grid_context(cells, rows, cols, tile, latent, f"grid {rows} x {cols}", grid_name)}
    frames = pictures.animation_frames(images, latent)
    if frames and len(frames) > 1:
        frames = pictures.gif_frames(frames, cols * tile * pictures.display_scale(tile, cols * tile))
        gif_name = page.gif(f"{slug}.gif", frames, GIF_FRAME_MS)
        context["animation"] = {"src": gif_name, "caption": f"animation, {len(frames)} frames (ping-pong)",
                                "width": frames[0].shape[1], "link": gif_name}
    section["html"].append(page.render("header.html", context))
    section["files"] = [(name, name) for name in (grid_name, context["animation"] and gif_name) if name]
    return section


def _encoder_rows(result, page, slug):
    inputs = result.inputs if result.inputs is not None and result.inputs.ndim == 4 else None
    names = result.arrays.get("names")
    rows = []
    for index, (recon, z) in enumerate(zip(result.reconstructions, result.z)):
        row = {"kind": "encoder", "key": str(index), "z_text": format_vector(z),
               "reconstruction": page.png(f"{slug}-recon-{index}.png", recon), "input": None,
               "name": str(names[index]) if names is not None and index < len(names) else f"#{index}",
               "predicted": None, "class_label": int(result.labels[index]) if result.labels is not None
               and np.ndim(result.labels[index]) == 0 else None}
        if inputs is not None:
            row["input"] = page.png(f"{slug}-input-{index}.png", pictures.displayable(inputs[index]))
        rows.append(row)
    return rows


def _details(result):
    latent = result.latent
    count = len(result.images if result.images is not None else result.z)
    items = [("images", count)]
    if latent.get("grid"):
        items.append(("grid", " x ".join(str(n) for n in latent["grid"])))
    if latent.get("seed") is not None:
        items.append(("seed", latent["seed"]))
    for key in ("created", "checkpoint"):
        if result.meta.get(key):
            value = result.meta[key]
            items.append((key, os.path.basename(str(value)) if key == "checkpoint" else value))
    return items
