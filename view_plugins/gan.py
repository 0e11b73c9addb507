"""The DIGITS "GAN" view plugin: a generator's outputs as a labelled grid and an animated
GIF, or (for encoders) input | reconstruction | z, or an encoded image's top attributes.

DIGITS' call sequence (digits/model/images/generic/views.py): ``Visualization(dataset,
**config_form.data)``; per output item ``process_data(input_id, input_data,
output_data)`` then ``get_view_template(data)``; once ``get_header_template()`` (where
the grid and the GIF of all items are drawn, as DIGITS' own GAN view does) and
``get_ng_templates()``. The grid shape and sweep come from the inference dataset's
`latent` meta; pictures are embedded as data URIs, so the rendered HTML stands alone.
The templates and the picture math are the gallery's (digits_gan_plugin.pictures).
"""
import json
import os

import numpy as np

from digits_gan_plugin import options, pictures
from digits_gan_plugin.digits_api import VisualizationInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import format_vector, load_attribute_vectors

VIEW_TASKS = ("grid", "gif", "encoder", "attributes")
IMAGE_OUTPUT_NAMES = ("images", "image", "inference", "output", "reconstructions", "reconstruction")
CLASS_OUTPUT_NAMES = ("label", "labels", "class", "classes", "logits", "probabilities")


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


def png_uri(image):
    return pictures.data_uri("image/png", pictures.png_bytes(image))


class Visualization(VisualizationInterface):
    """Collects one generated image (or encoder output) per inference input; draws each
    item, and the grid / GIF of all of them in the header."""

    OPTIONS = [
        options.Option("task", str, "grid", choices=VIEW_TASKS,
                       help="grid: all images in the task's labelled grid (and its animation); gif: the "
                            "sweep or animation as an animated GIF; encoder: input | reconstruction | z of an "
                            "encoder job; attributes: an encoded image's top attributes (needs the "
                            "attribute-vector file)"),
        options.Option("normalize", bool, True,
                       help="stretch each picture's min..max to 0..255 (DIGITS' behaviour; right for -1..1 "
                            "or 0..1 outputs); off: clip values to 0..255"),
        options.Option("inference_dataset", str, "", kind="dir",
                       help="the inference dataset directory, whose meta gives the grid shape and sweep; "
                            "empty: the dataset DIGITS passes in, else a near-square grid"),
        options.Option("attributes_file", str, "", kind="file",
                       help="attributes task: the .npz written by `digits-gan attributes`"),
        options.Option("top", int, 5, min=1, max=100, help="attributes task: how many attributes to list"),
        options.Option("frame_ms", int, pictures.GIF_FRAME_MS, min=10, max=5000,
                       help="GIF: milliseconds per frame"),
    ]

    def __init__(self, dataset, **kwargs):
        super().__init__(**kwargs)  # DIGITS' base takes only keyword arguments
        values = options.resolve(self.OPTIONS, kwargs)
        self.task, self.normalize = values["task"], values["normalize"]
        self.frame_ms, self.top = values["frame_ms"], values["top"]
        self.latent = latent_meta(values["inference_dataset"] or dataset)
        self.attribute_file = values["attributes_file"]
        if self.task == "attributes" and not self.attribute_file:
            raise DataError("GAN view: the attributes task needs attributes_file (the .npz written by "
                            "`digits-gan attributes`)")
        self.attribute_vectors = None  # {name: (z_dim,)}, read at the first item (z_dim known then)
        self.items = {}  # input_id -> float32 H,W,C image output, for the header

    @staticmethod
    def get_id():
        return "gan-view"

    @staticmethod
    def get_title():
        return "GAN"

    @staticmethod
    def get_dirname():
        return os.path.dirname(os.path.abspath(__file__))

    @staticmethod
    def get_default_visibility():
        return True

    @classmethod
    def get_config_form(cls):
        return options.make_wtform(cls.OPTIONS)()

    @staticmethod
    def get_config_template(form):
        return options.template_text(), {"form": form}

    def process_data(self, input_id, input_data, output_data):
        """Keep this input's output for the header; return what its view draws:
        {'kind', 'key', ...} with data-URI images (see templates/results/item.html)."""
        if self.task in ("encoder", "attributes"):
            return self._encoded_item(input_id, input_data, output_data)
        image = self._image(self._output(output_data, IMAGE_OUTPUT_NAMES))
        self.items[input_id] = image
        return {"kind": "image", "key": str(input_id), "image": png_uri(self._pixels(image))}

    @staticmethod
    def _image(array):
        """float32 H,W,C of one image output (H,W / H,W,C / 1,H,W,C)."""
        try:
            return pictures.as_hwc(array).astype(np.float32)
        except DataError as error:
            raise DataError(f"GAN view: network output: {error}") from None

    def _pixels(self, image):
        return pictures.displayable(image, self.normalize)

    def _encoded_item(self, input_id, input_data, output_data):
        """An encoder's item: DIGITS' single flat [z | pixels] output, split by the image
        shape, or this project's {'z', 'reconstructions'} dict."""
        source = self._input_image(input_data)
        if "z" in output_data:
            z = np.asarray(output_data["z"], dtype=np.float32).reshape(-1)
            names = [n for n in IMAGE_OUTPUT_NAMES[::-1] if n in output_data]
            if not names:
                raise DataError(f"GAN view: encoder outputs are {', '.join(output_data)}; expected 'z' and "
                                f"one of {', '.join(IMAGE_OUTPUT_NAMES)}")
            reconstruction = self._image(output_data[names[0]])
        else:
            z, reconstruction = pictures.split_flat_output(self._output(output_data, ("output",)),
                                                           self._image_shape(source))
        item = {"kind": self.task, "key": str(input_id), "name": str(input_id),
                "input": png_uri(self._pixels(source)) if source is not None else None,
                "reconstruction": png_uri(self._pixels(reconstruction))}
        if self.task == "attributes":
            item["top"] = self.top_attributes(z)
        else:
            item["z_text"] = format_vector(z)
            item["predicted"], item["class_label"] = self._predicted(output_data), None
        return item

    @staticmethod
    def _input_image(input_data):
        """The encoded image (H,W,C float32), or None when the input is not an image."""
        try:
            return None if input_data is None else pictures.as_hwc(input_data).astype(np.float32)
        except DataError:
            return None

    def _image_shape(self, source):
        if source is not None:
            return source.shape
        shape = self.latent.get("input_shape")
        if not shape:
            raise DataError("GAN view: cannot split the flat encoder output into z and pixels: no input image "
                            "and no input_shape in the inference dataset's meta")
        return tuple(shape) if len(shape) == 3 else tuple(shape) + (1,)

    @staticmethod
    def _predicted(output_data):
        for name in CLASS_OUTPUT_NAMES:
            if name in output_data:
                values = np.asarray(output_data[name]).reshape(-1)
                return int(values[0]) if values.size == 1 else int(np.argmax(values))
        return None

    def top_attributes(self, z):
        """[(name, 'score')] of the `top` attributes whose vectors z projects on most
        (z . v / |v|), highest first."""
        if self.attribute_vectors is None:
            self.attribute_vectors = load_attribute_vectors(self.attribute_file, z.size)
        names = list(self.attribute_vectors)
        vectors = np.stack([self.attribute_vectors[name] for name in names])
        norms = np.linalg.norm(vectors, axis=1)
        scores = vectors @ z / np.where(norms > 0, norms, 1.0)
        order = np.argsort(-scores, kind="stable")[:self.top]
        return [(names[i], f"{scores[i]:.2f}") for i in order]

    @staticmethod
    def _output(output_data, names):
        if len(output_data) == 1:
            return next(iter(output_data.values()))
        for name in names:
            if name in output_data:
                return output_data[name]
        raise DataError(f"GAN view: network outputs are {', '.join(output_data)}; expected one of {', '.join(names)}")

    def get_view_template(self, data):
        return pictures.template_text("item.html"), data

    def images(self):
        """uint8 N,H,W,C of the collected images in input order, normalized together."""
        def order(key):
            return (0, int(key)) if str(key).isdigit() else (1, str(key))

        stacked = np.stack([self.items[key] for key in sorted(self.items, key=order)])
        return pictures.normalized(stacked) if self.normalize else pictures.to_uint8(stacked)

    def get_header_template(self):
        """The grid (one <img> per item, labelled) and the animation of all items."""
        if not self.items:
            return None, None
        images = self.images()
        rows, cols = pictures.grid_shape(len(images), self.latent)
        tile = images.shape[1]
        context = {"style": pictures.template_text("style.css"), "title": "GAN " + self.task,
                   "subtitle": self.latent.get("task"), "details": self._details(len(images), rows, cols),
                   "grid": None, "animation": None}
        if self.task == "grid":
            cells = [png_uri(image) for image in images]
            context["grid"] = pictures.grid_context(cells, rows, cols, tile, self.latent, f"grid {rows} x {cols}")
        frames = pictures.animation_frames(images, self.latent)
        if self.task == "gif" and not frames:
            frames = list(images)
        if frames and len(frames) > 1:
            width = cols * tile * pictures.display_scale(tile, cols * tile)
            frames = pictures.gif_frames(frames, width)
            context["animation"] = {
                "src": pictures.data_uri("image/gif", pictures.gif_bytes(frames, self.frame_ms)),
                "caption": f"animation, {len(frames)} frames (ping-pong)", "width": frames[0].shape[1]}
        return pictures.template_text("header.html"), context

    def _details(self, count, rows, cols):
        details = [("images", count), ("grid", f"{rows} x {cols}")]
        if self.latent.get("seed") is not None:
            details.append(("seed", self.latent["seed"]))
        return details

    def get_ng_templates(self):
        return None, None
