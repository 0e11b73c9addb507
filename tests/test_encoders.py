"""Encoders (network-mnist-encoder, network-celebA-encoder): trained a few steps from a
tiny GAN job, the generator stays bit-for-bit the GAN's; inference gives z + a
reconstruction; the MNIST encoder's class is given or inferred; clear errors."""
import numpy as np
import pytest

from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.imaging import save_png
from digits_gan_plugin.jobdir import InferenceResult, JobPaths
from digits_gan_plugin.runtime.inference import infer_command, load_generator
from digits_gan_plugin.runtime.trainer import TrainOptions, train

BATCH = 8
STEPS = 3


def train_job(dataset, network, job_dir, steps, weights=None):
    """Train `steps` steps (at most one epoch each) with a checkpoint after every step (keep all)."""
    options = TrainOptions(dataset=str(dataset), network=network, epochs=steps, batch_size=BATCH, max_steps=steps,
                           seed=0, threads=2, weights=str(weights) if weights else None,
                           snapshot_interval=1e-3, keep=steps + 1)
    return train(options, job_dir, progress=False)


# The model variables of the shipped files (optimizer slots like 'generator/fc1/weights/g_loss_adam' excluded).
MODEL_LEAVES = ("weights", "biases", "gamma", "beta", "moving_mean", "moving_variance")


def checkpoint_values(prefix, scope):
    """{variable name: numpy value} of the checkpoint's model variables under `scope`/."""
    import tensorflow.compat.v1 as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(prefix))
            if name.startswith(scope + "/") and name.rsplit("/", 1)[-1] in MODEL_LEAVES}


def assert_generator_unchanged(gan_checkpoint, encoder_checkpoints):
    gan = checkpoint_values(gan_checkpoint, "generator")
    assert any("moving_mean" in name for name in gan) and any("weights" in name for name in gan)
    for prefix in encoder_checkpoints:
        encoder_job_generator = checkpoint_values(prefix, "generator")
        assert sorted(encoder_job_generator) == sorted(gan)
        for name, value in gan.items():
            assert np.array_equal(encoder_job_generator[name], value), f"{name} changed in {prefix}"


def changed(first, second):
    return sorted(name for name in first if not np.array_equal(first[name], second[name]))


@pytest.fixture(scope="module")
def mnist_jobs(tiny_mnist_dataset, tmp_path_factory):
    """(GAN job, its last checkpoint, encoder job, the encoder's checkpoints per step)."""
    root = tmp_path_factory.mktemp("mnist_encoder")
    gan = train_job(tiny_mnist_dataset, "network-mnist", root / "gan", 2)
    train_job(tiny_mnist_dataset, "network-mnist-encoder", root / "encoder", STEPS, weights=root / "gan")
    checkpoints = [str(root / "encoder" / "checkpoints" / f"model.ckpt-{step}") for step in range(1, STEPS + 1)]
    return root / "gan", gan.checkpoint, root / "encoder", checkpoints


def test_mnist_encoder_training_keeps_generator_and_trains_encoder(mnist_jobs):
    _, gan_checkpoint, encoder_job, checkpoints = mnist_jobs
    assert_generator_unchanged(gan_checkpoint, checkpoints)
    first, last = checkpoint_values(checkpoints[0], "encoder"), checkpoint_values(checkpoints[-1], "encoder")
    moved = changed(first, last)
    assert "encoder/z/weights" in moved and "encoder/classes/weights" in moved
    assert "encoder/bn2/moving_mean" in moved  # the encoder's own batch norm does learn its averages
    assert not checkpoint_values(checkpoints[-1], "discriminator")  # D is not part of the encoder graph


def test_mnist_encoder_inference_outputs(mnist_jobs, tiny_mnist_dataset):
    images = DatasetReader(tiny_mnist_dataset).read_all("val_db")[0]
    with load_generator(mnist_jobs[2]) as encoder:
        assert encoder.facts.inference_input == "image" and encoder.conditional
        inferred = encoder.run(images[:6])
        given_labels = (inferred["classes"] + 1) % 10
        given = encoder.run(images[:6], labels=given_labels)
        mixed = encoder.run(images[:6], labels=np.array([3, -1, 3, -1, 3, -1]))
    assert inferred["z"].shape == (6, 100) and inferred["z"].dtype == np.float32
    assert np.all(np.abs(inferred["z"]) <= 1.0)  # tanh head: z ~ U(-1, 1) like the GAN's
    assert inferred["images"].shape == (6, 28, 28, 1) and inferred["images"].dtype == np.uint8
    assert inferred["classes"].shape == (6,) and np.all((0 <= inferred["classes"]) & (inferred["classes"] < 10))
    # A given class reaches G; z does not depend on it.
    np.testing.assert_array_equal(given["classes"], given_labels)
    np.testing.assert_array_equal(given["z"], inferred["z"])
    assert not np.array_equal(given["images"], inferred["images"])
    expected = np.where(np.arange(6) % 2 == 0, 3, inferred["classes"])
    np.testing.assert_array_equal(mixed["classes"], expected)
    np.testing.assert_array_equal(mixed["images"][1::2], inferred["images"][1::2])


def test_infer_command_on_encode_list_and_labelled_datasets(mnist_jobs, tiny_mnist_dataset, tmp_path):
    from digits_gan_plugin.cli import main

    images = DatasetReader(tiny_mnist_dataset).read_all("val_db")[0]
    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(4):
        save_png(images[index], folder / f"{index}.png")
    encode_ds = tmp_path / "encode_ds"
    assert main(["latent", "encode-list", "--job", str(mnist_jobs[2]), "--folder", str(folder),
                 "--out", str(encode_ds), "--quiet"]) == 0
    infer_command(mnist_jobs[2], dataset=encode_ds)
    result = InferenceResult(JobPaths(mnist_jobs[2]).result("encode_ds"))
    assert result.is_encoder and result.z.shape == (4, 100)
    assert result.reconstructions.shape == (4, 28, 28, 1) and "reconstructions" not in result.arrays  # once
    np.testing.assert_array_equal(result.inputs[..., 0], images[:4, ..., 0])
    assert result.labels is None  # no labels: the encoder inferred every class

    # --label gives every image's class to G (DIGITS' example hard-coded class 3).
    labelled_ds = tmp_path / "labelled_ds"
    assert main(["latent", "encode-list", "--job", str(mnist_jobs[2]), "--folder", str(folder), "--label", "3",
                 "--out", str(labelled_ds), "--quiet"]) == 0
    infer_command(mnist_jobs[2], dataset=labelled_ds)
    np.testing.assert_array_equal(InferenceResult(JobPaths(mnist_jobs[2]).result("labelled_ds")).arrays["classes"],
                                  [3, 3, 3, 3])

    # A dataset with class labels gives the class to G.
    out = tmp_path / "labelled.npz"
    infer_command(mnist_jobs[2], dataset=tiny_mnist_dataset, out=out)
    train_labels = DatasetReader(tiny_mnist_dataset).read_all("train_db")[1]
    with np.load(out, allow_pickle=False) as result:
        np.testing.assert_array_equal(result["classes"], train_labels)


def test_encoder_bad_inputs_give_one_line_errors(mnist_jobs, tiny_mnist_dataset, tmp_path):
    images = DatasetReader(tiny_mnist_dataset).read_all("val_db")[0][:2]
    with load_generator(mnist_jobs[2]) as encoder:
        with pytest.raises(DataError, match=r"class 10 is outside 0\.\.9"):
            encoder.run(images, labels=np.array([1, 10]))
        with pytest.raises(DataError, match="expected 2 integer class ids"):
            encoder.run(images, labels=np.array([1]))
        with pytest.raises(DataError, match=r"shape \[14, 14, 1\], the model expects \[28, 28, 1\]"):
            encoder.run(np.zeros((2, 14, 14, 1)))
    with load_generator(mnist_jobs[0]) as gan, pytest.raises(DataError, match="takes no class labels"):
        gan.run(np.zeros((2, 110)), labels=np.array([1, 2]))
    with pytest.raises(DataError, match="encodes images; give an inference dataset") as error:
        infer_command(mnist_jobs[2], classes=[1, 2])
    assert "\n" not in str(error.value)


def tiny_faces():
    """12 train / 4 val random 3x16x16 uint8 images with 1x1x3 attribute labels (+-1)."""
    return SYNTHETIC(size=16, channels=3, attributes=3, names="Smiling,Male,Eyeglasses", train_count=12, val_count=4)


@pytest.fixture(scope="session")
def tiny_faces_jobs(tmp_path_factory):
    """(dataset, GAN job, its checkpoint, encoder job, encoder checkpoints) on 16x16 faces."""
    root = tmp_path_factory.mktemp("faces_encoder")
    write_dataset(tiny_faces(), root / "dataset", workers=1, progress=False)
    gan = train_job(root / "dataset", "network-celebA", root / "gan", 2)
    train_job(root / "dataset", "network-celebA-encoder", root / "encoder", 2, weights=root / "gan")
    checkpoints = [str(root / "encoder" / "checkpoints" / f"model.ckpt-{step}") for step in (1, 2)]
    return root / "dataset", root / "gan", gan.checkpoint, root / "encoder", checkpoints


def test_celeba_encoder_keeps_generator_and_reconstructs(tiny_faces_jobs):
    dataset, _, gan_checkpoint, encoder_job, checkpoints = tiny_faces_jobs
    assert_generator_unchanged(gan_checkpoint, checkpoints)
    assert "encoder/z/weights" in changed(checkpoint_values(checkpoints[0], "encoder"),
                                          checkpoint_values(checkpoints[1], "encoder"))
    images = DatasetReader(dataset).read_all("val_db")[0]
    with load_generator(encoder_job) as encoder:
        assert not encoder.conditional and encoder.labels is None
        outputs = encoder.run(images)
    assert sorted(outputs) == ["images", "z"]
    assert outputs["z"].shape == (4, 100) and outputs["images"].shape == (4, 16, 16, 3)
    assert outputs["images"].dtype == np.uint8


def test_mnist_dataset_plugin_builds_the_gan_inference_dataset_as_digits_does(tiny_mnist_dataset, tmp_path):
    """DIGITS: dataset plugin(dataset userdata, is_inference_db=True) -> inference form ->
    userdata.update(form fields) -> the same class writes test_db."""
    import json

    import jinja2

    from digits_gan_plugin.data_plugins.mnist import DataIngestion as Mnist

    job = tmp_path / "job"
    job.mkdir()
    (job / "config.json").write_text(json.dumps({"model": {
        "z_dim": 4, "num_classes": 10, "conditional": True, "input_shape": [28, 28, 1]}}))
    userdata = dict(DatasetReader(tiny_mnist_dataset).meta["userdata"], is_inference_db=True)
    plugin = Mnist(**userdata)
    form = plugin.get_inference_form()
    html = jinja2.Template(plugin.get_inference_template(form)[0]).render(**plugin.get_inference_template(form)[1])
    assert 'value="class-sweep"' in html
    plugin.userdata.update({"job": str(job), "task": "class-sweep", "rows": 3, "seed": 7})
    write_dataset(plugin, tmp_path / "inference", stages=["test_db"], workers=1, progress=False)
    vectors, labels = DatasetReader(tmp_path / "inference").read_all("test_db")
    assert vectors.shape == (30, 1, 14, 1) and labels is None  # DIGITS' GAN layout: (1, 1, D) items
    np.testing.assert_array_equal(vectors[0, 0, 4:, 0], np.eye(10)[0])
    # Without is_inference_db the plugin still builds its training set.
    assert len(Mnist(**DatasetReader(tiny_mnist_dataset).meta["userdata"]).itemize_entries("train_db")) == 160
