"""Image helpers shared by datasets, training samples and views (Pillow + numpy only).

Images are numpy arrays in H,W,C layout (C is 1 or 3, RGB), uint8 0..255, unless a
docstring says otherwise.
"""
import os
import tempfile

import numpy as np

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_uint8(images):
    """Clip and round float pixel values 0..255 to uint8 (any shape)."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float64)), 0, 255).astype(np.uint8)


def make_grid(images, rows=None, cols=None, pad=2, pad_value=0):
    """Tile images into one mosaic, row-major.

    images: uint8 N,H,W,C (C 1 or 3); also accepted: N,H,W (treated as C=1).
    rows/cols: grid size; by default a near-square grid (cols = ceil(sqrt(N))).
    pad: pixels between tiles and around the border, filled with pad_value.
    Returns uint8 rows*(H+pad)+pad, cols*(W+pad)+pad, C. Unused cells are pad_value.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"make_grid expects N,H,W,C images with C 1 or 3, got shape {images.shape}")
    count, height, width, channels = images.shape
    if count == 0:
        raise ValueError("make_grid needs at least one image")
    if cols is None:
        cols = int(np.ceil(np.sqrt(count))) if rows is None else int(np.ceil(count / rows))
    if rows is None:
        rows = int(np.ceil(count / cols))
    if rows * cols < count:
        raise ValueError(f"a {rows}x{cols} grid cannot hold {count} images")
    grid = np.full(
        (rows * (height + pad) + pad, cols * (width + pad) + pad, channels), pad_value, dtype=np.uint8
    )
    for index in range(count):
        row, col = divmod(index, cols)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        grid[top:top + height, left:left + width] = images[index]
    return grid


def _atomic_save(path, write):
    """Call write(tmp_path) on a temporary file next to `path`, then rename it into place."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=directory)
    os.close(handle)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _pil_image(array):
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.ndim == 3 and array.shape[-1] == 3:
        return Image.fromarray(np.ascontiguousarray(array))
    raise ValueError(f"expected H,W or H,W,1 or H,W,3 pixels, got shape {array.shape}")


def save_png(array, path):
    """Write uint8 H,W / H,W,1 / H,W,3 pixels to a PNG file, atomically."""
    image = _pil_image(array)
    _atomic_save(path, lambda tmp: image.save(tmp, format="PNG"))


def save_gif(frames, path, duration_ms=100, loop=0):
    """Write an animated GIF of uint8 H,W,C frames (list or N,H,W,C array), atomically.

    loop=0 repeats forever; duration_ms is the display time of each frame.
    """
    images = [_pil_image(frame) for frame in frames]
    if not images:
        raise ValueError("save_gif needs at least one frame")
    _atomic_save(
        path,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
        ),
    )


def load_square_image(path, size, mode="RGB", crop=None):
    """Load an image file as a square: center crop, then resize.

    crop: side of the centered square crop in source pixels (default: the shorter side).
    mode: 'RGB' or 'L'. Returns uint8 size,size,C (C 3 for RGB, 1 for L).
    For JPEGs only as many pixels are decoded as the output needs: Pillow's draft mode
    takes the largest DCT reduction (1/2, 1/4, 1/8) at which the crop still covers
    `size` pixels (luma only for mode 'L'); other conversions happen after the resize,
    on the small image. Shrinking averages areas (like OpenCV's INTER_AREA), enlarging
    is bilinear. Raises DataError naming the file when it is not a readable
    image or is smaller than the crop.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            side = min(width, height) if crop is None else crop
            if side > min(width, height):
                raise DataError(f"{path}: image is {width}x{height}, smaller than the {side}px crop")
            scale = 1.0  # of the decoded pixels relative to the file's: 1, 1/2, 1/4 or 1/8
            if image.format == "JPEG":
                drafted = image.draft(mode, (-(-width * size // side), -(-height * size // side)))
                if drafted is not None:
                    scale = drafted[1][2] / width
            if image.mode not in ("L", "RGB"):  # palette, alpha, 16-bit...: resize needs plain pixels
                image = image.convert(mode)
            left, top = (width - side) * scale / 2, (height - side) * scale / 2
            box = (left, top, left + side * scale, top + side * scale)
            # area averaging when shrinking (alias-free, and cheaper than bilinear),
            # bilinear when enlarging (where area averaging would be nearest-neighbour)
            shrinking = side * scale >= size
            resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
            image = image.resize((size, size), resample, box=box)
            pixels = np.asarray(image if image.mode == mode else image.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def list_image_files(folder):
    """Sorted paths of the image files (by suffix, case-insensitive) directly in folder."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, name))]
