"""Inference results as pictures: grid mosaics, sweep animations, and the static gallery.

An inference result is what ``digits-gan infer`` writes to ``JOBDIR/inference/<name>/``:
``result.npz`` (``images`` uint8 N,H,W,C; ``inputs`` float32 N x D; for encoders also
``z`` float32 N x z_dim and ``reconstructions`` uint8 N,H,W,C) and ``result.json``
(``task``, ``grid``, ``dataset``, ``created``, ``checkpoint``, ``latent``: the inference
dataset's latent section, see ``latent.LatentBatch.meta``).

``digits-gan gallery JOBDIR`` renders all of them into ``JOBDIR/gallery/index.html`` with
the PNGs and GIFs beside it, linked relatively, so the folder opens offline.
"""
import datetime
import html
import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from .files import move_into_place
from .errors import DataError
from .imaging import make_grid, save_gif, save_png, to_uint8
from .latent import TASKS, format_vector

GIF_FRAME_MS = 120
TILE_DISPLAY = 64  # generated images are shown enlarged by a whole factor to about this size
SINGLE_DISPLAY = 160  # ... and pictures of one or two images to about this size


def display_size(width, height, tile):
    """(width, height) to show a width x height picture of `tile`-pixel images at: every
    picture of a result enlarged by the same whole factor, small ones a little more."""
    scale = max(1, round(TILE_DISPLAY / tile))
    if width < 3 * tile:
        scale = max(scale, round(SINGLE_DISPLAY / tile))
    return width * scale, height * scale


def grid_shape(count, latent=None):
    """(rows, cols) of the result grid: the latent task's grid when it holds `count`
    images, else near-square."""
    grid = (latent or {}).get("grid")
    if grid and grid[0] * grid[1] == count:
        return int(grid[0]), int(grid[1])
    cols = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / cols)), cols


def grid_image(images, latent=None):
    """uint8 N,H,W,C images -> one uint8 mosaic laid out as the task's grid."""
    rows, cols = grid_shape(len(images), latent)
    return make_grid(images, rows=rows, cols=cols)


def ring_order(rows, cols):
    """Cell indices (row-major) around a grid's border, clockwise from the top-left."""
    top = [(0, c) for c in range(cols)]
    right = [(r, cols - 1) for r in range(1, rows)]
    bottom = [(rows - 1, c) for c in range(cols - 2, -1, -1)] if rows > 1 else []
    left = [(r, 0) for r in range(rows - 2, 0, -1)] if cols > 1 else []
    return [r * cols + c for r, c in top + right + bottom + left]


def animation_frames(images, latent=None):
    """The frames of the task's animation, or None when the task has nothing to animate.

    images: uint8 N,H,W,C in the task's order. A plain animation plays the images in
    order; a sweep grid animates every cell along the sweep (frame k shows, side by side,
    each line's k-th image); an analogy grid walks the ring around its border.
    Returns a list of uint8 H',W',C frames.
    """
    latent = latent or {}
    images = np.asarray(images)
    axis = latent.get("sweep_axis")
    if latent.get("grid") is None:
        return list(images) if latent.get("frames") else None
    rows, cols = grid_shape(len(images), latent)
    if (rows, cols) != tuple(latent["grid"]):
        return None
    cells = images.reshape((rows, cols) + images.shape[1:])
    if axis == "ring":
        return [images[index] for index in ring_order(rows, cols)]
    if axis in (0, 1):
        lines = cells if axis == 1 else cells.transpose((1, 0) + tuple(range(2, cells.ndim)))
        # lines: one per animated cell, each holding that cell's frames in order.
        return [make_grid(lines[:, k], rows=1) for k in range(lines.shape[1])]
    return None


class InferenceResult:
    """One ``JOBDIR/inference/<name>`` folder: .name, .meta (result.json), .images,
    .inputs, .z and .reconstructions (None when absent)."""

    def __init__(self, folder):
        self.folder = folder
        self.name = os.path.basename(os.path.normpath(folder))
        npz_path, json_path = os.path.join(folder, "result.npz"), os.path.join(folder, "result.json")
        try:
            with open(json_path, encoding="utf-8") as handle:
                self.meta = json.load(handle)
        except FileNotFoundError:
            self.meta = {}
        except ValueError as error:
            raise DataError(f"{json_path}: not valid JSON ({error})") from None
        try:
            with np.load(npz_path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            raise DataError(f"{npz_path}: not a readable result archive ({error})") from None
        if "images" not in arrays and not {"z", "reconstructions"} <= set(arrays):
            raise DataError(f"{npz_path}: expected an 'images' array (uint8 N,H,W,C), or an encoder's "
                            f"'z' and 'reconstructions'")
        self.images = arrays.get("images")
        self.inputs = arrays.get("inputs")
        self.z = arrays.get("z")
        self.reconstructions = arrays.get("reconstructions")

    @property
    def latent(self):
        """The inference dataset's latent section; for results made without one (e.g.
        `infer --classes`), just the grid that result.json records."""
        return self.meta.get("latent") or {"grid": self.meta.get("grid")}

    @property
    def task(self):
        """The task's title ('Class sweep'), or its name when it is not a known task."""
        name = self.meta.get("task") or self.latent.get("task") or "result"
        return TASKS[name].title if name in TASKS else name

    @property
    def is_encoder(self):
        return self.z is not None and self.reconstructions is not None


def find_results(job_dir):
    """The job's inference results, sorted by name."""
    folder = os.path.join(job_dir, "inference")
    if not os.path.isdir(folder):
        return []
    return [InferenceResult(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name, "result.npz"))]


JOB_PICTURES = ("reals.png", "loss.png", "losses.png", "loss_curve.png")


def _job_samples(job_dir, limit=4):
    """The job's own pictures: the latest sample grids and any loss curve, as paths."""
    found = []
    for folder in (job_dir, os.path.join(job_dir, "samples")):
        if os.path.isdir(folder):
            found += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".png")]
    curves = [p for p in found if os.path.basename(p) in JOB_PICTURES]
    samples = [p for p in found if p not in curves]
    return curves + samples[-limit:]


def write_gallery(job_dir, progress=True):
    """Render every inference result of `job_dir` into `job_dir/gallery/` and return the
    path of its index.html. The folder is built aside and renamed into place."""
    from tqdm import tqdm

    if not os.path.isdir(job_dir):
        raise DataError(f"{job_dir}: job directory not found")
    results = find_results(job_dir)
    job_pictures = _job_samples(job_dir)
    if not results and not job_pictures:
        raise DataError(f"{job_dir}: no inference results (inference/*/result.npz) or sample grids to show")
    target = os.path.join(job_dir, "gallery")
    staging = tempfile.mkdtemp(prefix=".gallery.", dir=job_dir)
    try:
        sections = []
        for result in tqdm(results, desc="gallery", unit="result", disable=not progress or None):
            sections.append(_render_result(result, staging))
        job_figures = []
        for path in job_pictures:
            name = "job-" + os.path.basename(path)
            shutil.copyfile(path, os.path.join(staging, name))
            with Image.open(path) as picture:
                width, height = picture.size
            job_figures.append(_figure(name, os.path.basename(path), (height, width), height))
        page = _page(os.path.basename(os.path.abspath(job_dir)), sections, job_figures)
        with open(os.path.join(staging, "index.html"), "w", encoding="utf-8") as handle:
            handle.write(page)
        move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(target, "index.html")


def _render_result(result, folder):
    """Write `result`'s pictures into `folder`; return its section's data for the page."""
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in result.name)
    section = {"name": result.name, "task": result.task, "figures": [], "encoder_rows": [],
               "details": _details(result)}
    if result.is_encoder:
        for index, (recon, z) in enumerate(zip(result.reconstructions, result.z)):
            row = {"z": format_vector(z), "reconstruction": f"{slug}-recon-{index}.png"}
            save_png(recon, os.path.join(folder, row["reconstruction"]))
            if result.inputs is not None and result.inputs.ndim == 4:
                row["input"] = f"{slug}-input-{index}.png"
                save_png(to_uint8(result.inputs[index]), os.path.join(folder, row["input"]))
            section["encoder_rows"].append(row)
        return section
    grid_name = f"{slug}-grid.png"
    grid = grid_image(result.images, result.latent)
    save_png(grid, os.path.join(folder, grid_name))
    rows, cols = grid_shape(len(result.images), result.latent)
    tile = result.images.shape[1]
    section["figures"].append(_figure(grid_name, f"grid {rows} x {cols}", grid.shape, tile))
    frames = animation_frames(result.images, result.latent)
    if frames and len(frames) > 1:
        gif_name = f"{slug}.gif"
        save_gif(frames, os.path.join(folder, gif_name), duration_ms=GIF_FRAME_MS)
        section["figures"].append(_figure(gif_name, f"animation, {len(frames)} frames", frames[0].shape, tile))
    return section


def _figure(src, caption, shape, tile):
    """A picture on the page: file name, caption and display size for an H,W[,C] picture
    made of `tile`-pixel images."""
    width, height = display_size(shape[1], shape[0], tile)
    return {"src": src, "caption": caption, "width": width, "height": height}


def _details(result):
    latent = result.latent
    items = [("images", len(result.images if result.images is not None else result.reconstructions))]
    if latent.get("grid"):
        items.append(("grid", "x".join(str(n) for n in latent["grid"])))
    if latent.get("seed") is not None:
        items.append(("seed", latent["seed"]))
    for key in ("created", "checkpoint"):
        if result.meta.get(key):
            items.append((key, os.path.basename(str(result.meta[key])) if key == "checkpoint" else result.meta[key]))
    return items


_STYLE = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:#15171c;color:#e6e6e6}
header{padding:22px 32px;background:#1f232b;border-bottom:1px solid #2e333d}
header h1{margin:0;font-size:22px;font-weight:600}header p{margin:4px 0 0;color:#9aa3b2}
main{padding:8px 32px 40px}
section{margin:26px 0;padding:18px 20px;background:#1d2027;border:1px solid #2b3039;border-radius:10px}
h2{margin:0 0 4px;font-size:17px;font-weight:600}h2 .task{color:#7fb2ff;font-weight:500;margin-left:8px}
dl{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0 0 14px;color:#9aa3b2;font-size:13px}
dt{display:inline;color:#6f7888}dd{display:inline;margin:0 0 0 4px}
.figures{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
figure{margin:0}figure img{display:block;background:#000;border-radius:4px;image-rendering:pixelated;
  max-width:100%;height:auto}
figcaption{margin-top:6px;color:#9aa3b2;font-size:13px}
table{border-collapse:collapse}td,th{padding:6px 10px;border-bottom:1px solid #2b3039;vertical-align:middle}
th{text-align:left;color:#9aa3b2;font-weight:500}td img{width:84px;image-rendering:pixelated;border-radius:3px}
textarea{width:420px;height:58px;background:#12141a;color:#cfd6e4;border:1px solid #343a46;border-radius:4px;
  font:12px ui-monospace,monospace}
"""


def _figure_html(figure):
    esc = html.escape
    return (f"<figure><img src='{esc(figure['src'])}' alt='{esc(figure['caption'])}' width='{figure['width']}' "
            f"height='{figure['height']}'><figcaption>{esc(figure['caption'])}</figcaption></figure>")


def _page(job_name, sections, job_figures):
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{esc(job_name)} - digits-gan gallery</title><style>{_STYLE}</style></head><body>",
             f"<header><h1>{esc(job_name)}</h1><p>{len(sections)} inference result(s) &middot; generated "
             f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}</p></header><main>"]
    if job_figures:
        parts.append("<section><h2>Training</h2><div class='figures'>")
        parts += [_figure_html(f) for f in job_figures]
        parts.append("</div></section>")
    for section in sections:
        parts.append(f"<section><h2>{esc(section['name'])}<span class='task'>{esc(section['task'])}</span></h2><dl>")
        parts += [f"<div><dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd></div>" for k, v in section["details"]]
        parts.append("</dl><div class='figures'>")
        parts += [_figure_html(f) for f in section["figures"]]
        parts.append("</div>")
        if section["encoder_rows"]:
            parts.append("<table><tr><th>input</th><th>reconstruction</th><th>z</th></tr>")
            for row in section["encoder_rows"]:
                image = f"<img src='{esc(row['input'])}' alt='input'>" if "input" in row else ""
                parts.append(f"<tr><td>{image}</td><td><img src='{esc(row['reconstruction'])}' alt='reconstruction'>"
                             f"</td><td><textarea readonly>{esc(row['z'])}</textarea></td></tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
