"""What the web UI refuses: paths outside the allowed roots and oversized images.

Every check runs before anything is written, so a refused request leaves no trace.
"""
import io
import os
from pathlib import Path

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class PathGuard:
    """Accepts paths inside one of `roots` (symlinks resolved, no '..' components)."""

    def __init__(self, roots):
        self.roots = [Path(root).resolve() for root in roots]

    def check(self, value, field="path"):
        """The resolved Path of `value`; DataError naming `field` when it escapes the roots."""
        path = Path(os.path.expanduser(str(value)))
        if ".." in path.parts:
            raise DataError(f"{field}: {value}: '..' is not allowed in paths")
        resolved = path.resolve()
        if not any(resolved == root or root in resolved.parents for root in self.roots):
            allowed = ", ".join(map(str, self.roots))
            raise DataError(f"{field}: {value} is outside the allowed folders ({allowed}); "
                            f"start the server with --allow-root DIR to allow another folder")
        return resolved


def check_image_upload(storage, max_pixels):
    """The bytes of an uploaded image (werkzeug FileStorage); DataError when it is not
    an image or has more than `max_pixels` pixels (read from the header, not decoded)."""
    from PIL import Image, UnidentifiedImageError

    name = os.path.basename(storage.filename or "")
    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"upload {name or '(unnamed)'}: expected an image file ({', '.join(IMAGE_SUFFIXES)})")
    data = storage.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise DataError(f"upload {name}: not a readable image") from None
    if width * height > max_pixels:
        raise DataError(f"upload {name}: {width} x {height} pixels is more than the limit of {max_pixels} pixels")
    return data
