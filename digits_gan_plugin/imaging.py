"""Image helpers shared by datasets, training samples and views (Pillow + numpy only).

Images are numpy arrays in H,W,C layout (C is 1 or 3, RGB), uint8 0..255, unless a
docstring says otherwise.
"""
import functools
import math
import os

import numpy as np

from .errors import DataError
from .files import atomic_write

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
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_gif(frames, path, duration_ms=100, loop=0):
    """Write an animated GIF of uint8 H,W,C frames (list or N,H,W,C array), atomically.

    loop=0 repeats forever; duration_ms is the display time of each frame.
    """
    images = [_pil_image(frame) for frame in frames]
    if not images:
        raise ValueError("save_gif needs at least one frame")
    atomic_write(
        path,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
        ),
    )


def load_square_image(path, size, mode="RGB", crop=None, fast_decode=False):
    """Load an image file as a square: center crop, then resize.

    crop: side of the centered square crop in source pixels (default: the shorter side).
    mode: 'RGB' or 'L'. Returns uint8 size,size,C (C 3 for RGB, 1 for L).
    For JPEGs only as many pixels are decoded as the output needs: the largest DCT
    reduction (1/2, 1/4, 1/8) at which the crop still covers `size` pixels (Pillow's
    draft rule; luma only for mode 'L'). Shrinking averages the source pixels whose
    centres fall in each output pixel (Pillow's BOX filter), enlarging is bilinear.
    Baseline/progressive YCbCr and grey JPEGs are decoded with libjpeg-turbo through
    simplejpeg when it is installed and resized with two small matrix products, or
    integer sums where each output pixel takes 1 or 2 source pixels per axis
    (Pillow's filter weights, within +-1 grey level of Pillow's result); single-scan
    (baseline) files are decoded only down to the last row the resize uses (libjpeg
    stops there; the pixels are identical to a whole-file decode). Every other file
    goes through Pillow. fast_decode: on that libjpeg-turbo path, use its fast
    integer IDCT and plain (not smoothed) chroma upsampling: 10-15% less decode time
    for pixels 1-1.5 grey levels off on average once shrunk (more right at saturated
    colour edges). Raises DataError naming the file when it is not a readable image or
    is smaller than the crop.
    """
    if mode in _SIMPLEJPEG_COLORSPACES and _simplejpeg() is not None:
        try:
            with open(path, "rb", buffering=0) as handle:  # unbuffered: fewer system calls
                data = handle.readall()
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error})") from None
        pixels = _load_square_jpeg(data, path, size, mode, crop, fast_decode)
        if pixels is not None:
            return pixels
    return _load_square_pillow(path, size, mode, crop)


def _crop_side(path, width, height, crop):
    side = min(width, height) if crop is None else crop
    if side > min(width, height):
        raise DataError(f"{path}: image is {width}x{height}, smaller than the {side}px crop")
    return side


def _draft_request(width, height, size, side):
    """Smallest decoded width, height at which the crop still covers `size` pixels."""
    return -(-width * size // side), -(-height * size // side)


def _draft_reduction(width, height, size, side):
    """Pillow's JPEG draft rule: the largest of 8, 4, 2, 1 by which the file can be
    shrunk while decoding, given _draft_request."""
    wanted_width, wanted_height = _draft_request(width, height, size, side)
    most = min(width // wanted_width, height // wanted_height)
    return next((factor for factor in (8, 4, 2) if most >= factor), 1)


_SIMPLEJPEG_COLORSPACES = {"RGB": "RGB", "L": "GRAY"}
_JPEG_START = b"\xff\xd8\xff"


@functools.lru_cache(maxsize=1)
def _simplejpeg():
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _load_square_jpeg(data, path, size, mode, crop, fast_decode=False):
    """load_square_image of JPEG bytes via simplejpeg; None when the file is not a
    YCbCr or grey JPEG simplejpeg decodes cleanly (the caller then uses Pillow)."""
    simplejpeg = _simplejpeg()
    if not data.startswith(_JPEG_START):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace not in ("YCbCr", "Gray"):  # CMYK, YCCK, RGB: Pillow's colour handling
            return None
        side = _crop_side(path, width, height, crop)
        factor = _draft_reduction(width, height, size, side)
        scale = 1 / factor  # decoded pixels per file pixel (the last, partial block is padded)
        left, top = (width - side) * scale / 2, (height - side) * scale / 2
        box = (left, top, left + side * scale, top + side * scale)
        rows = _axis_weights(-(-height // factor), *np.float32(box[1::2]).tolist(), size)
        # one decoded row more than the resize uses keeps libjpeg's chroma upsampling of
        # the last row used away from the new bottom edge
        pixels = decode_jpeg_rows(data, (rows.first + rows.span + 1) * factor, mode, factor, fast_decode)
    except ValueError:
        return None
    if pixels is None:
        return None
    return _resize(pixels, box, size)


def decode_jpeg_rows(data, rows, mode="RGB", factor=1, fast_decode=False):
    """uint8 H,W,C pixels of the top `rows` file rows (all, if fewer) of a YCbCr or grey
    JPEG, decoded by simplejpeg at 1/factor (1, 2, 4 or 8), identical to those rows of
    a whole-file decode (see _without_rows_below); None when simplejpeg would decode at
    another scale. ValueError (simplejpeg's) when the file is not cleanly decodable."""
    simplejpeg = _simplejpeg()
    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    data, kept = _without_rows_below(data, height, rows)
    shape = (-(-kept // factor), -(-width // factor), 1 if mode == "L" else 3)
    scaling = {"min_factor": factor, "min_height": shape[0], "min_width": shape[1]}
    if simplejpeg.decode_jpeg_header(data, **scaling)[:2] != shape[:2]:
        return None
    pixels = np.empty(shape, np.uint8)
    try:
        simplejpeg.decode_jpeg(data, _SIMPLEJPEG_COLORSPACES[mode], fastdct=fast_decode, fastupsample=fast_decode,
                               buffer=pixels, **scaling)
    except ValueError as error:
        # A shortened frame leaves the entropy data of the rows below unread, which
        # libjpeg reports (strictly, as an error) only once every row is decoded.
        if kept == height or "extraneous bytes before marker" not in str(error):
            raise
    return pixels


_SEQUENTIAL_FRAMES = (0xC0, 0xC1)  # baseline and extended sequential, Huffman-coded
_UNSUPPORTED_FRAMES = (0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _without_rows_below(data, height, rows):
    """(JPEG bytes, frame height) of the file with its frame cut to the first `rows`
    rows, so that libjpeg stops decoding there: the rows kept decode exactly as in the
    whole file (each row of blocks depends only on those above it), except the
    last one, whose chroma upsampling looks at the row below. Only single-scan
    sequential files are cut (each scan of the others covers the whole height);
    others, and rows >= height, give (data, height) unchanged."""
    frame, position = None, 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        if data[position + 1] == 0xFF:  # fill byte before a marker
            position += 1
            continue
        marker, length = data[position + 1], (data[position + 2] << 8) | data[position + 3]
        if marker in _UNSUPPORTED_FRAMES:
            return data, height
        if marker in _SEQUENTIAL_FRAMES:
            frame = position + 4
        if marker == 0xDA:  # start of scan: it must hold every component of the frame
            break
        position += 2 + length
    else:
        return data, height
    if rows >= height or frame is None or position + 4 >= len(data) or frame + 6 > len(data):
        return data, height
    if data[position + 4] != data[frame + 5] or (data[frame + 1] << 8 | data[frame + 2]) != height:
        return data, height
    return b"".join((data[:frame + 1], rows.to_bytes(2, "big"), data[frame + 3:])), rows


def _load_square_pillow(path, size, mode, crop):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            side = _crop_side(path, width, height, crop)
            scale = 1.0  # of the decoded pixels relative to the file's: 1, 1/2, 1/4 or 1/8
            if image.format == "JPEG":
                drafted = image.draft(mode, _draft_request(width, height, size, side))
                if drafted is not None:
                    scale = drafted[1][2] / width
            if image.mode not in ("L", "RGB"):  # palette, alpha, 16-bit...: resize needs plain pixels
                image = _to_8bit(image, path, mode)
            left, top = (width - side) * scale / 2, (height - side) * scale / 2
            box = (left, top, left + side * scale, top + side * scale)
            shrinking = side * scale >= size
            resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
            image = image.resize((size, size), resample, box=box)
            pixels = np.asarray(image if image.mode == mode else image.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_8bit(image, path, mode):
    """`image` (any Pillow mode) as 8-bit `mode` pixels. 16-bit grey is scaled
    (65535 -> 255), not clipped as Pillow's convert would; float pixels and 32-bit
    integers beyond 16 bits have no agreed scale and are refused naming the file."""
    from PIL import Image

    if image.mode in _WIDE_GREY_MODES:
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataError(f"{path}: {image.mode} pixels span {values.min()}..{values.max()}, "
                            f"expected 8- or 16-bit values (0..65535)")
        grey = np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)
        return Image.fromarray(grey).convert(mode)
    if image.mode == "F":
        raise DataError(f"{path}: floating-point pixels have no 8-bit scale; save the image as 8- or 16-bit")
    try:
        return image.convert(mode)
    except ValueError as error:
        raise DataError(f"{path}: cannot convert {image.mode} pixels to {mode} ({error})") from None


def _resize(pixels, box, size):
    """Pillow's resize((size, size), BOX if shrinking else BILINEAR, box=box) of uint8
    H,W,C pixels (C 1 or 3; box = left, top, right, bottom, float) as float32 matrix
    products (or _two_tap_box's integer sums where that applies); returns uint8
    size,size,C (rounding once, so within +-1 of Pillow's two-pass 8-bit result), a
    view of channel-planar memory: .transpose(2, 0, 1) is a
    contiguous C,H,W array, as datasets store it."""
    height, width, channels = pixels.shape
    left, top, right, bottom = np.float32(box)  # Pillow keeps the box in C floats
    row_taps = _two_taps(height, float(top), float(bottom), size)
    col_taps = _two_taps(width, float(left), float(right), size)
    if row_taps is not None and col_taps is not None:
        return _two_tap_box(pixels, row_taps, col_taps)
    rows = _axis_weights(height, float(top), float(bottom), size)
    cols = _axis_weights(width, float(left), float(right), size)
    crop = pixels[rows.first:rows.first + rows.span, cols.first:cols.first + cols.span].astype(np.float32)
    # The weights are block-diagonal: out[block] = block_weights @ in[block]. Rows: one
    # product per block of rows (each row of the crop is a long W*C vector); columns:
    # in channel-planar rows every block of source pixels is one row of one product.
    # (CelebA's 108 -> 64: 4 blocks of 27 -> 16 pixels, a fifth of the dense work.)
    vertical = rows.block @ crop.reshape(rows.blocks, rows.block.shape[1], -1)
    planar = np.ascontiguousarray(vertical.reshape(size, cols.span, channels).transpose(0, 2, 1))
    out = planar.reshape(-1, cols.block.shape[1]) @ cols.block.T
    out += 0.5  # weights are >= 0 and sum to 1: values stay in 0..255.5
    chw = out.reshape(size, channels, size).transpose(1, 0, 2).astype(np.uint8, order="C")
    return chw.transpose(1, 2, 0)


def _two_tap_box(pixels, row_taps, col_taps):
    """_resize's box shrink where each output pixel averages 1 or 2 source pixels per
    axis (CelebA's 108 -> 64, and every shrink the JPEG draft reduction leaves within
    2x): sums of source pixels in uint16 (a lone pixel counted twice), so every
    output is an exact mean of 4 values, rounded half up."""
    (row_a, row_b), (col_a, col_b) = row_taps, col_taps
    first, end = col_a[0], col_b[-1] + 1
    rows = np.add(pixels[row_a, first:end], pixels[row_b, first:end], dtype=np.uint16)  # size, cols, C
    by_column = np.ascontiguousarray(rows.transpose(1, 2, 0))  # cols, C, size: a column per row
    out = by_column[col_a - first]
    out += by_column[col_b - first]
    out += 2
    out >>= 2
    return np.ascontiguousarray(out.astype(np.uint8).transpose(1, 2, 0)).transpose(1, 2, 0)


@functools.lru_cache(maxsize=64)
def _two_taps(in_size, in0, in1, out_size):
    """(first, last) source index per output pixel of Pillow's box shrink of in0..in1,
    when every output pixel takes 1 or 2 source pixels; else None."""
    if (in1 - in0) < out_size:
        return None
    used = _pillow_weights(in_size, in0, in1, out_size) > 0
    counts = used.sum(axis=1)
    if counts.min() < 1 or counts.max() > 2:
        return None
    first = used.argmax(axis=1)
    return first, first + counts - 1


class _AxisWeights:
    """Resampling weights of one axis, size x span = kron(eye(blocks), block).

    first/span: the source pixels that get any weight; block: float32
    (size / blocks) x (span / blocks)."""

    __slots__ = ("first", "span", "blocks", "block")


@functools.lru_cache(maxsize=64)
def _axis_weights(in_size, in0, in1, out_size):
    weights = _pillow_weights(in_size, in0, in1, out_size)
    used = np.flatnonzero(weights.any(axis=0))
    first, span = int(used[0]), int(used[-1]) + 1 - int(used[0])
    weights = weights[:, first:first + span]
    blocks = _block_count(weights)
    axis = _AxisWeights()
    axis.first, axis.span, axis.blocks = first, span, blocks
    axis.block = np.ascontiguousarray(weights[:out_size // blocks, :span // blocks], dtype=np.float32)
    return axis


def _block_count(weights):
    """Largest number of equal diagonal blocks `weights` consists of (1: dense), keeping
    blocks of >= 16 source pixels so that the matrix products stay few."""
    out_size, span = weights.shape
    common = math.gcd(out_size, span)
    for blocks in sorted((n for n in range(1, common + 1) if common % n == 0), reverse=True):
        if span // blocks < 16 and blocks > 1:
            continue
        block = weights[:out_size // blocks, :span // blocks]
        if np.array_equal(weights, np.kron(np.eye(blocks), block)):
            return blocks
    return 1


def _pillow_weights(in_size, in0, in1, out_size):
    """float64 out_size x in_size weights of Pillow's resampling of source range
    in0..in1 (ImagingResample's precompute_coeffs): BOX when shrinking, else BILINEAR."""
    scale = (in1 - in0) / out_size
    filter_scale = max(scale, 1.0)
    shrinking = scale >= 1.0
    support = (0.5 if shrinking else 1.0) * filter_scale
    weights = np.zeros((out_size, in_size))
    for out_index in range(out_size):
        center = in0 + (out_index + 0.5) * scale
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), in_size)
        offsets = (np.arange(low, high) - center + 0.5) / filter_scale
        if shrinking:
            row = ((offsets > -0.5) & (offsets <= 0.5)).astype(np.float64)
        else:
            row = np.maximum(1.0 - np.abs(offsets), 0.0)
        if row.sum():
            weights[out_index, low:high] = row / row.sum()
    return weights


def list_image_files(folder):
    """Sorted paths of the image files (by suffix, case-insensitive) directly in folder."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, name))]


def _class_order(name):
    """Sort key of class folder names: numbers by value (so 0, 1, ..., 10), then text."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def list_labelled_images(folder, class_names=None):
    """The images of `folder`, labelled by the class sub-folder they sit in.

    Returns (paths, labels, names). With class sub-folders (those holding images):
    names are the classes: `class_names` when given (e.g. a training set's label
    names), else the sub-folder names in sorted order, except that folders all named
    by numbers are those class ids (0..9 are the digits, even with one missing).
    labels: the int class id of each path (the index of its folder's name in `names`);
    images directly in `folder` come first with label -1. Without sub-folders: the
    folder's images, labels and names None. DataError when `folder` is missing or a
    sub-folder is not one of `class_names`.
    """
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: image folder not found")
    top = list_image_files(folder)
    found = sorted((name for name in os.listdir(folder)
                    if os.path.isdir(os.path.join(folder, name)) and list_image_files(os.path.join(folder, name))),
                   key=_class_order)
    if not found:
        return top, None, None
    if class_names is not None:
        names = [str(name) for name in class_names]
    elif all(name.isdigit() for name in found):
        names = [str(index) for index in range(max(int(name) for name in found) + 1)]
        for name in found:
            names[int(name)] = name
    else:
        names = found
    unknown = [name for name in found if name not in names]
    if unknown:
        raise DataError(f"{os.path.join(folder, unknown[0])}: sub-folder is not one of the classes "
                        f"{', '.join(map(str, names))}")
    paths, labels = list(top), [-1] * len(top)
    for name in found:
        inside = list_image_files(os.path.join(folder, name))
        paths += inside
        labels += [names.index(name)] * len(inside)
    return paths, labels, names
