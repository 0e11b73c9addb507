"""The DIGITS "GAN" inference data plugin: z (or z+y) vectors for a trained generator,
or images for a trained encoder, written as a `test_db` inference dataset.

The task and its parameters are the options of `latent.TASKS` (one definition shared with
``digits-gan latent``). What the generator takes (z size and distribution, classes,
image shape) comes from the job's config.json when `job` is a digits-gan training job;
for a model trained elsewhere (e.g. by DIGITS itself, whose job folders hold no
config.json) it comes from the z_dim / model_classes / image fields.

Items follow DIGITS' GAN plugin: a z vector is the float feature
`np.append(z, onehot).reshape(1, 1, D)` (read back N,1,D,1) with label `np.array([0])`.
"""
import dataclasses

from .. import jobdir, latent
from ..digits_api import TEST_DB
from ..errors import DataError
from ..imaging import load_square_image
from ..options import MAX_SEED, Option
from . import OptionsPlugin, class_label, no_label

# z size of DIGITS' GAN examples: what the form offers for a model trained in DIGITS.
DIGITS_Z_DIM = 100


def _task_options():
    """The union of every task's options (one field per name, first declaration wins)."""
    seen = {}
    for task in latent.TASKS.values():
        for option in task.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


MODEL_OPTIONS = [
    Option("z_dim", int, None, min=1, help="size of the model's z input, when `job` is not a digits-gan job "
                                            "(e.g. a model trained in DIGITS); empty for an encoder"),
    Option("model_classes", int, 0, min=0, help="classes of a conditional model (its one-hot follows z), when "
                                               "`job` is not a digits-gan job; 0: unconditional"),
    Option("z_distribution", str, latent.DEFAULT_Z_DISTRIBUTION, choices=list(latent.Z_DISTRIBUTIONS),
           help="what random z's are drawn from, when `job` is not a digits-gan job"),
    Option("image_size", int, None, min=1, max=4096,
           help="encode-list: side of the model's square input images, when `job` is not a digits-gan job"),
    Option("image_channels", int, 3, choices=(1, 3),
           help="encode-list: channels of the model's input images, when `job` is not a digits-gan job"),
]


class DataIngestion(OptionsPlugin):
    """Inference vectors for a GAN: feature float32 1,1,D (read back as N,1,D,1 with
    D = z_dim + y_dim) and label np.array([0]) (no label); for the encode-list task,
    uint8 C,H,W images of the model's input shape, labelled by class when known."""

    OPTIONS = [
        Option("job", str, "", kind="dir",
               help="the trained job directory: a digits-gan job's config.json gives z size, classes and "
                    "image shape; otherwise give them below"),
        Option("task", str, "class-sweep", choices=list(latent.TASKS),
               help="what to generate: " + "; ".join(f"{t.name}: {t.description}" for t in latent.TASKS.values())),
        Option("seed", int, None, min=0, max=MAX_SEED, help="seed of the random z's; empty: drawn and recorded"),
        Option("crop", int, None, min=1, help="encode-list: side of the centered square crop in source pixels "
                                               "before resizing, as used for the training set; empty: shorter side"),
    ] + MODEL_OPTIONS + _task_options()

    # Options whose values are z vectors or rows: shown as text areas in the DIGITS form.
    MULTILINE = ("z", "z_start", "z_end", "zs", "source", "sink1", "sink2", "coefficients")

    def __init__(self, **kwargs):
        kwargs.pop("is_inference_db", None)  # an inference dataset in any case
        super().__init__(**kwargs)
        self.space = self.model_facts()
        self.batch = None

    def model_facts(self):
        """latent.ModelFacts of the generator: from a digits-gan job, else the fields."""
        if self.job and jobdir.is_job(self.job):
            return jobdir.read_model_facts(self.job)
        if not self.z_dim and self.task != "encode-list":
            where = f"{self.job} is not a digits-gan job (no config.json)" if self.job else "no job is given"
            raise DataError(f"option z_dim: {where}; give the model's z size (and model_classes for a "
                            f"conditional model)")
        if self.task == "encode-list" and not self.image_size:
            raise DataError("option image_size: encode-list needs the model's input image size "
                            "(or a digits-gan job)")
        size = self.image_size or 1
        return latent.ModelFacts(z_dim=self.z_dim, num_classes=self.model_classes or None,
                                 conditional=bool(self.model_classes), input_shape=(size, size, self.image_channels),
                                 job=self.job or None, z_distribution=self.z_distribution)

    @property
    def has_labels(self):
        """Only encode-list images with a class carry a label."""
        return self.build().vectors is None and self.build().image_labels is not None

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

    def get_inference_form(self):
        return self.get_dataset_form()

    @staticmethod
    def get_inference_template(form):
        return OptionsPlugin.get_dataset_template(form)

    @classmethod
    def task_command_options(cls, task_name):
        """The options `digits-gan latent TASK` takes: job, seed, crop (encode-list only)
        and the task's own."""
        shared = [dataclasses.replace(option, required=True) if option.name == "job" else option
                  for option in cls.OPTIONS
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
            return batch.vectors[entry].reshape(1, 1, -1), no_label()
        height, width, channels = self.space.input_shape
        if height != width:
            raise DataError(f"job {self.job}: input shape {height}x{width} is not square; "
                            f"encode-list loads square images")
        image = load_square_image(batch.image_paths[entry], height, mode="L" if channels == 1 else "RGB",
                                  crop=self.crop)
        label = no_label() if batch.image_labels is None else class_label(batch.image_labels[entry])
        return image.transpose(2, 0, 1), label
