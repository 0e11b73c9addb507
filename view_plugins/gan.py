"""The DIGITS "GAN" view plugin: a generator's outputs as a grid, an animated GIF, or
(for encoders) input | reconstruction | z rows. The task is chosen explicitly in the
config form; the grid shape and sweep come from the inference dataset's `latent` meta.
Images are embedded as data URIs, so the rendered HTML stands alone.
"""
import base64
import json
import os
import tempfile

import numpy as np

from digits_gan_plugin import options
from digits_gan_plugin.digits_api import VisualizationInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.gallery import GIF_FRAME_MS, animation_frames, grid_image, grid_shape
from digits_gan_plugin.imaging import save_gif, save_png, to_uint8
from digits_gan_plugin.latent import format_vector

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
VIEW_TASKS = ("grid", "gif", "encoder")
IMAGE_OUTPUT_NAMES = ("images", "image", "inference", "output", "reconstructions", "reconstruction")


def _template(name):
    with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as handle:
        return handle.read()


def _data_uri(mime, suffix, write):
    """'data:<mime>;base64,...' of the file `write(path)` creates."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "image" + suffix)
        write(path)
        with open(path, "rb") as handle:
            return f"data:{mime};base64," + base64.b64encode(handle.read()).decode("ascii")


def png_data_uri(image):
    """uint8 H,W / H,W,1 / H,W,3 -> PNG data URI."""
    return _data_uri("image/png", ".png", lambda path: save_png(image, path))


def gif_data_uri(frames, duration_ms=GIF_FRAME_MS):
    """list of uint8 H,W,C frames -> looping animated GIF data URI."""
    return _data_uri("image/gif", ".gif", lambda path: save_gif(frames, path, duration_ms=duration_ms))


def as_image(array):
    """A network's image output (H,W,C, 1,H,W,C or H,W; values 0..255) -> uint8 H,W,C."""
    image = np.asarray(array)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise DataError(f"GAN view: expected an H,W,C image output with 1 or 3 channels, got shape {image.shape}")
    return to_uint8(image)


def latent_meta(source):
    """The `latent` section of an inference dataset: from its directory, its dataset.json
    dict, a DatasetReader, or a DIGITS dataset job's plugin userdata. {} when absent."""
    if source is None or source == "":
        return {}
    if isinstance(source, (str, os.PathLike)):
        path = os.path.join(source, "dataset.json")
        try:
            with open(path, encoding="utf-8") as handle:
                source = json.load(handle)
        except FileNotFoundError:
            raise DataError(f"{path}: not found; expected an inference dataset directory") from None
        except ValueError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(source, dict):
        userdata = getattr(source, "extension_userdata", None)
        if userdata is None and hasattr(source, "get_user_data"):
            userdata = source.get_user_data()
        source = getattr(source, "meta", None) or {"userdata": userdata or {}}
    if "latent" in source:
        return source["latent"] or {}
    from_userdata = (source.get("userdata") or {}).get("latent")
    if from_userdata:
        return from_userdata
    return source if "grid" in source else {}


class Visualization(VisualizationInterface):
    """Collects one generated image (or encoder output) per inference input and renders
    the task chosen in the config form: grid, gif or encoder."""

    OPTIONS = [
        options.Option("task", str, "grid", choices=VIEW_TASKS,
                       help="grid: all images in the task's grid; gif: the sweep or animation as an animated "
                            "GIF; encoder: input | reconstruction | z for an encoder job"),
        options.Option("inference_dataset", str, "", kind="dir",
                       help="the inference dataset directory, whose meta gives the grid shape and sweep; "
                            "empty: the dataset DIGITS passes in"),
        options.Option("frame_ms", int, GIF_FRAME_MS, min=10, max=5000, help="GIF: milliseconds per frame"),
    ]

    def __init__(self, dataset, **kwargs):
        super().__init__(dataset, **kwargs)
        values = options.resolve(self.OPTIONS, kwargs)
        self.task, self.frame_ms = values["task"], values["frame_ms"]
        self.latent = latent_meta(values["inference_dataset"] or dataset)
        self.items = {}

    @staticmethod
    def get_id():
        return "gan-view"

    @staticmethod
    def get_title():
        return "GAN"

    @classmethod
    def get_config_form(cls):
        return options.make_wtform(cls.OPTIONS)()

    @staticmethod
    def get_config_template(form):
        return options.template_text(), {"form": form}

    def process_data(self, input_id, input_data, output_data):
        """Keep this input's output; returns {'image'} or, for the encoder task,
        {'input', 'reconstruction', 'z'} (uint8 H,W,C images, float32 z)."""
        if self.task == "encoder":
            item = {
                "input": as_image(input_data) if input_data is not None else None,
                "reconstruction": as_image(self._output(output_data, IMAGE_OUTPUT_NAMES[::-1])),
                "z": np.asarray(self._output(output_data, ("z",)), dtype=np.float32).reshape(-1),
            }
        else:
            item = {"image": as_image(self._output(output_data, IMAGE_OUTPUT_NAMES))}
        self.items[input_id] = item
        return item

    @staticmethod
    def _output(output_data, names):
        if len(output_data) == 1 and "z" not in names:
            return next(iter(output_data.values()))
        for name in names:
            if name in output_data:
                return output_data[name]
        raise DataError(f"GAN view: network outputs are {', '.join(output_data)}; expected one of {', '.join(names)}")

    def get_view_template(self, data):
        if self.task != "encoder":
            return "", {}  # grids and GIFs are drawn once, in the summary
        context = {
            "input_uri": png_data_uri(data["input"]) if data["input"] is not None else None,
            "reconstruction_uri": png_data_uri(data["reconstruction"]),
            "z_text": format_vector(data["z"]),
        }
        return _template("encoder_item.html"), context

    def images(self):
        """uint8 N,H,W,C of the collected images, in input order."""
        def order(key):
            return (0, int(key)) if str(key).isdigit() else (1, str(key))

        return np.stack([self.items[key]["image"] for key in sorted(self.items, key=order)])

    def get_summary_template(self):
        if self.task == "encoder" or not self.items:
            return None, None
        images = self.images()
        rows, cols = grid_shape(len(images), self.latent)
        context = {"task": self.latent.get("task"), "rows": rows, "cols": cols, "count": len(images),
                   "seed": self.latent.get("seed"), "view": self.task}
        if self.task == "gif":
            frames = animation_frames(images, self.latent) or list(images)
            context.update(uri=gif_data_uri(frames, self.frame_ms), frames=len(frames))
        else:
            context.update(uri=png_data_uri(grid_image(images, self.latent)), frames=None)
        return _template("summary.html"), context
