"""The picture math of an inference result, shared by the DIGITS view plugin and the gallery.

Pixels to show (clip or normalize), the grid shape and its row/column labels, a network's
flat ``[z | pixels]`` output split in two, animation frames (sweeps, analogy rings,
plain animations, ping-pong), the display scale, and PNG/GIF data URIs. Both renderers
fill the same Jinja templates (``templates/results/``) from these values.

numpy + Pillow + Jinja only; Python 3.8 (it runs inside DIGITS).
"""
import base64
import io
import os

import numpy as np

from .errors import DataError
from .imaging import make_grid, to_uint8

GIF_FRAME_MS = 120
TILE_DISPLAY = 64  # images are shown enlarged by a whole factor to about this size
SINGLE_DISPLAY = 160  # ... and pictures of one or two images to about this size
GIF_MAX_SIDE = 640  # a GIF frame is enlarged towards the grid's display size, up to this
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "results")


def template_text(name):
    """The text of one shared result template (DIGITS renders it with its own Jinja)."""
    with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as handle:
        return handle.read()


def as_hwc(array):
    """One image's values as an H,W,C array (C 1 or 3) from H,W / H,W,C / 1,H,W,C;
    DataError for anything else."""
    image = np.asarray(array)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise DataError(f"expected an H,W,C image with 1 or 3 channels, got shape {image.shape}")
    return image


def displayable(array, normalize=False):
    """One image (see `as_hwc`) as uint8 H,W,C. normalize: stretch min..max to 0..255
    (DIGITS' GAN view; right for -1..1 or 0..1 network outputs); otherwise round and
    clip to 0..255."""
    image = as_hwc(array)
    return normalized(image) if normalize else to_uint8(image)


def normalized(values):
    """float values of any shape stretched from their min..max to uint8 0..255 (a
    constant array becomes 0)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return to_uint8((values - low) * (255.0 / (high - low)))


def split_flat_output(flat, image_shape):
    """DIGITS' encoder output, one flat ``[z | pixels]`` vector, -> (z float32 (D,),
    pixels H,W,C float32). The split is derived from the image shape (H, W, C)."""
    flat = np.asarray(flat, dtype=np.float32).reshape(-1)
    pixels = int(np.prod(image_shape))
    if flat.size <= pixels:
        raise DataError(f"encoder output has {flat.size} values, expected z followed by {pixels} pixels "
                        f"of a {'x'.join(map(str, image_shape))} image")
    return flat[:flat.size - pixels], flat[flat.size - pixels:].reshape(tuple(image_shape))


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


def axis_labels(latent, rows, cols):
    """(row labels, column labels) of a task's grid, each a list of str or None.

    Taken from the latent meta's ``row_labels`` / ``col_labels`` when it records them;
    otherwise derived: along a sweep axis the steps ('step 1'...), across it the
    classes ('class 0'...) for class and style sweeps.
    """
    latent = latent or {}
    rows_given, cols_given = latent.get("row_labels"), latent.get("col_labels")
    if rows_given or cols_given:
        fit = lambda labels, n: [str(v) for v in labels] if labels and len(labels) == n else None  # noqa: E731
        return fit(rows_given, rows), fit(cols_given, cols)
    axis = latent.get("sweep_axis")
    if axis not in (0, 1) or (rows, cols) != tuple(latent.get("grid") or ()):
        return None, None
    along, across = (rows, cols) if axis == 0 else (cols, rows)
    steps = [f"step {k + 1}" for k in range(along)]
    classes = None
    if latent.get("task") in ("class-sweep", "style-sweep") and latent.get("num_classes") == across:
        names = latent.get("class_names") or [str(c) for c in range(across)]
        classes = [f"class {name}" for name in names][:across]
    return (steps, classes) if axis == 0 else (classes, steps)


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
    order; a sweep grid animates every line of the sweep at once (frame k shows each
    line's k-th image, the lines laid out near-square); an analogy grid walks the ring
    around its border. Returns a list of uint8 H',W',C frames, in play order (no
    ping-pong: see `ping_pong`).
    """
    latent = latent or {}
    images = np.asarray(images)
    axis = latent.get("sweep_axis")
    if latent.get("grid") is None:
        return list(images) if latent.get("frames") else None
    rows, cols = grid_shape(len(images), latent)
    if (rows, cols) != tuple(latent["grid"]):
        return None
    if axis == "ring":
        return [images[index] for index in ring_order(rows, cols)]
    if axis not in (0, 1):
        return None
    cells = images.reshape((rows, cols) + images.shape[1:])
    lines = cells if axis == 1 else cells.transpose((1, 0) + tuple(range(2, cells.ndim)))
    # lines: one per animated cell, each holding that cell's frames in order.
    if len(lines) == 1:
        return list(lines[0])
    return [make_grid(lines[:, k]) for k in range(lines.shape[1])]


def ping_pong(frames):
    """frames played forwards then backwards (ends not repeated), for a seamless loop."""
    frames = list(frames)
    return frames + frames[-2:0:-1] if len(frames) > 2 else frames


def enlarge(image, scale):
    """uint8 H,W,C enlarged `scale` times by pixel repetition (sharp pixels in any viewer)."""
    return image if scale <= 1 else np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def gif_frames(frames, grid_width):
    """Animation frames ready to save: enlarged by a whole factor so that each frame is
    about as wide as the result's grid is shown (GIF_MAX_SIDE at most), then ping-ponged."""
    side = max(frames[0].shape[:2])
    scale = max(1, min(grid_width, GIF_MAX_SIDE) // side)
    return ping_pong([enlarge(frame, scale) for frame in frames])


def display_scale(tile, width):
    """The whole factor a `width`-pixel-wide picture of `tile`-pixel images is shown
    enlarged by: the same for every picture of a result, small ones a little more."""
    scale = max(1, round(TILE_DISPLAY / tile))
    if width < 3 * tile:
        scale = max(scale, round(SINGLE_DISPLAY / tile))
    return scale


def png_bytes(image):
    """uint8 H,W / H,W,1 / H,W,3 -> PNG file bytes."""
    from PIL import Image

    image = np.asarray(image)
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def gif_bytes(frames, duration_ms=GIF_FRAME_MS):
    """list of uint8 H,W,C frames -> looping animated GIF file bytes."""
    from PIL import Image

    pictures = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def data_uri(mime, data):
    """'data:<mime>;base64,...' of file bytes."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def grid_context(cells, rows, cols, tile, latent=None, caption="", link=None):
    """The context of templates/results/grid.html: `cells` (row-major list of image
    sources, None for an empty cell) shown as a rows x cols table with labels."""
    row_labels, col_labels = axis_labels(latent, rows, cols)
    scale = display_scale(tile, cols * tile)
    table = [[cells[r * cols + c] if r * cols + c < len(cells) else None for c in range(cols)]
             for r in range(rows)]
    return {"table": table, "row_labels": row_labels, "col_labels": col_labels,
            "cell_px": tile * scale, "caption": caption, "link": link}
