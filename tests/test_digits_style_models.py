"""Model files written the way NVIDIA DIGITS' examples/gan files are (tests/digits_style_models/:
own `import tensorflow as tf`, tf.contrib.layers.batch_norm / slim.batch_norm, z_dim on
the instance, the encoder's flat [z | pixels] output) train and infer here unedited."""
from pathlib import Path

import numpy as np
import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.jobdir import InferenceResult, JobPaths, read_config
from digits_gan_plugin.runtime.inference import load_generator
from digits_gan_plugin.runtime.trainer import TrainOptions, train

MODELS = Path(__file__).parent / "digits_style_models"


def train_job(dataset, name, job, digits=False):
    options = TrainOptions(dataset=str(dataset), network=str(MODELS / name), epochs=1, batch_size=8, max_steps=3,
                           seed=0, threads=2, digits_semantics=digits)
    return train(options, job, progress=False)


@pytest.mark.parametrize("digits", [False, True])
def test_digits_style_gan_trains_and_generates_classes(tiny_mnist_dataset, tmp_path, digits):
    import tensorflow.compat.v1 as tf

    job = tmp_path / "gan"
    result = train_job(tiny_mnist_dataset, "network-digits-style-gan.py", job, digits)
    model = read_config(job)["model"]
    # z_dim came from the built instance, the class count from the dataset
    assert model["z_dim"] == 8 and model["inference_input"] == "z" and model["y_dim"] == 10
    names = dict(tf.train.list_variables(result.checkpoint))
    assert "generator/g_bn0/moving_mean" in names  # contrib batch norm on plain variables
    mean = tf.train.load_checkpoint(result.checkpoint).get_tensor("generator/g_bn0/moving_mean")
    assert np.any(mean != 0)  # updates_collections=None: updated in place by each step
    assert main(["infer", "--job", str(job), "--classes", "3,7", "--per-class", "2", "--out",
                 str(tmp_path / "c.npz")]) == 0
    with np.load(tmp_path / "c.npz") as arrays:
        assert arrays["images"].shape == (4, 28, 28, 1) and arrays["images"].dtype == np.uint8
        assert list(arrays["labels"]) == [3, 3, 7, 7]


def test_digits_style_encoder_flat_output_is_split_into_z_and_images(tiny_mnist_dataset, tmp_path):
    job = tmp_path / "encoder"
    train_job(tiny_mnist_dataset, "network-digits-style-encoder.py", job)
    model = read_config(job)["model"]
    assert model["z_dim"] == 6 and model["inference_input"] == "image"
    with load_generator(job) as generator:
        images = np.random.default_rng(0).uniform(0, 255, (5, 28, 28, 1)).astype(np.float32)
        outputs = generator.run(images)
    assert outputs["z"].shape == (5, 6) and outputs["z"].dtype == np.float32
    assert outputs["images"].shape == (5, 28, 28, 1)
    assert outputs["images"].min() >= 0 and outputs["images"].max() <= 255 and outputs["images"].max() > 1
    # z is not cast to uint8 with the pixels: negative z values survive
    assert (outputs["z"] < 0).any()
    assert main(["infer", "--job", str(job), "--dataset", str(tiny_mnist_dataset)]) == 0
    result = InferenceResult(JobPaths(job).result(Path(tiny_mnist_dataset).name))
    assert result.z.shape[1] == 6 and result.images.dtype == np.uint8 and result.images.shape[1:] == (28, 28, 1)


def test_a_2d_inference_that_is_not_a_flat_encoder_output_is_a_clear_error(tiny_mnist_dataset, tmp_path, capsys):
    source = (MODELS / "network-digits-style-gan.py").read_text(encoding="utf-8")
    bad = tmp_path / "network-flat-gan.py"
    bad.write_text(source.replace("return tf.to_int32(self.G * 255)",
                                  "return tf.reshape(self.G, [self.batch_size, -1])"), encoding="utf-8")
    code = main(["train", "--dataset", str(tiny_mnist_dataset), "--network", str(bad), "--out",
                 str(tmp_path / "job"), "--max-steps", "1", "--batch-size", "8", "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2 and "UserModel.inference returned a 2-D tensor" in error and "Traceback" not in error
