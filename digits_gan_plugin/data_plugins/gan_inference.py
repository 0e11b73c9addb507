"""The DIGITS "GAN" inference data plugin: z (or z+y) vectors for a trained generator,
or images for a trained encoder, written as a `test_db` inference dataset.

The task and its parameters are the options of `latent.TASKS` (one definition shared with
``digits-gan latent``); z size, classes and image shape come from the trained job.
"""

import numpy as np

from .. import latent
from ..digits_api import TEST_DB
from ..errors import DataError
from ..imaging import load_square_image
from ..options import Option
from . import OptionsPlugin


def _task_options():
    """The union of every task's options (one field per name, first declaration wins)."""
    seen = {}
    for task in latent.TASKS.values():
        for option in task.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


class DataIngestion(OptionsPlugin):
    """Inference vectors for a GAN job: feature float32 D,1,1 (read back as N,1,1,D with
    D = z_dim + y_dim), no label; for the encode-list task, uint8 C,H,W images of the
    job's input shape."""

    OPTIONS = [
        Option("job", str, "", kind="dir", required=True,
               help="the trained job directory (its config.json gives z size, classes and image shape)"),
        Option("task", str, "class-sweep", choices=list(latent.TASKS),
               help="what to generate: " + "; ".join(f"{t.name}: {t.description}" for t in latent.TASKS.values())),
        Option("seed", int, None, min=0, help="seed of the random z's; empty: drawn and recorded"),
        Option("crop", int, None, min=1, help="encode-list: side of the centered square crop in source pixels "
                                               "before resizing, as used for the training set; empty: shorter side"),
    ] + _task_options()

    # Options whose values are z vectors or rows: shown as text areas in the DIGITS form.
    MULTILINE = ("z", "z_start", "z_end", "zs", "source", "sink1", "sink2", "coefficients")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.space = latent.LatentSpace.from_job(self.job)
        self.batch = None

    @staticmethod
    def get_id():
        return "gan-inference"

    @staticmethod
    def get_title():
        return "GAN (latent space)"

    @staticmethod
    def get_category():
        return "GAN"

    @classmethod
    def get_dataset_form(cls):
        from wtforms.widgets import TextArea

        from .. import options

        form_class = options.make_wtform(cls.OPTIONS)
        for name in cls.MULTILINE:
            getattr(form_class, name).kwargs["widget"] = TextArea()
        return form_class()

    @classmethod
    def get_inference_form(cls):
        return cls.get_dataset_form()

    @staticmethod
    def get_inference_template(form):
        return OptionsPlugin.get_dataset_template(form)

    @classmethod
    def task_command_options(cls, task_name):
        """The options `digits-gan latent TASK` takes: job, seed, crop (encode-list only)
        and the task's own."""
        shared = [option for option in cls.OPTIONS
                  if option.name in ("job", "seed") or (option.name == "crop" and task_name == "encode-list")]
        return shared + list(latent.get_task(task_name).options)

    def task_params(self):
        """The chosen task's own parameters, from this plugin's options."""
        task = latent.get_task(self.task)
        return {option.name: getattr(self, option.name) for option in task.options}

    def build(self):
        """Run the task once (on the main thread, before workers fork); returns the batch."""
        if self.batch is None:
            self.batch = latent.run_task(self.task, self.space, seed=self.seed, **self.task_params())
            self.userdata["latent"] = self.latent_meta()
        return self.batch

    def latent_meta(self):
        """The `latent` section of the inference dataset's dataset.json."""
        return self.build().meta(self.task, self.space)

    def itemize_entries(self, stage):
        if stage != TEST_DB:
            return []
        return list(range(len(self.build())))

    def encode_entry(self, entry):
        batch = self.build()
        if batch.vectors is not None:
            return batch.vectors[entry].reshape(-1, 1, 1), None
        height, width, channels = self.space.input_shape
        if height != width:
            raise DataError(f"job {self.job}: input shape {height}x{width} is not square; "
                            f"encode-list loads square images")
        image = load_square_image(batch.image_paths[entry], height, mode="L" if channels == 1 else "RGB",
                                  crop=self.crop)
        label = None if batch.image_labels is None else np.int64(batch.image_labels[entry])
        return image.transpose(2, 0, 1), label
