"""Model zoo graph-build tests: every shipped image GAN trains 2 steps through the
runtime on tiny data and generates through the runtime's inference; G/D variable sets;
the chi-square pixel-histogram metric of network-mnist.py."""
import numpy as np
import pytest

from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.runtime.graph import build_tower, model_facts, reuse_scope
from digits_gan_plugin.runtime.inference import load_generator
from digits_gan_plugin.runtime.model_files import load_model_class, resolve_network
from digits_gan_plugin.runtime.trainer import TrainOptions, train
from tiny_jobs import mnist_simple_from_step_0

BATCH = 8


def tiny_faces():
    """16 train / 8 val random 3x64x64 uint8 images with 1x1x40 attribute labels (+-1)."""
    return SYNTHETIC(size=64, channels=3, attributes=40, train_count=16, val_count=8)


@pytest.fixture(scope="module")
def tiny_faces_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_faces") / "dataset"
    write_dataset(tiny_faces(), out, workers=1, progress=False)
    return out


def train_two_steps(dataset, network, job_dir):
    options = TrainOptions(dataset=str(dataset), network=network, epochs=1, batch_size=BATCH,
                           max_steps=2, seed=0, threads=2)
    return train(options, job_dir, progress=False)


def checkpoint_tensor(checkpoint, name):
    import tensorflow.compat.v1 as tf

    return tf.train.load_checkpoint(checkpoint).get_tensor(name)


@pytest.mark.parametrize("network, shape, conditional", [
    ("network-mnist", (28, 28, 1), True),
    ("network-mnist-simple", (28, 28, 1), False),
])
def test_mnist_networks_train_and_generate(tiny_mnist_dataset, tmp_path, network, shape, conditional):
    # network-mnist-simple's G waits 300 steps; a 2-step job of it is refused (tests/tiny_jobs.py)
    path = mnist_simple_from_step_0(tmp_path) if network == "network-mnist-simple" else network
    result = train_two_steps(tiny_mnist_dataset, str(path), tmp_path / "job")
    assert result.step == 2
    with load_generator(tmp_path / "job") as generator:
        assert generator.z_dim == 100 and generator.conditional is conditional
        width = 100 + (10 if conditional else 0)
        vectors = np.random.default_rng(0).uniform(-1, 1, (5, width)).astype(np.float32)
        raw = generator.run(vectors)["images"]
    assert raw.shape == (5,) + shape and raw.dtype == np.uint8
    assert raw.max() > raw.min()  # an untrained G is not constant
    # Batch-norm moving averages are updated by the training steps.
    assert np.any(checkpoint_tensor(result.checkpoint, "generator/bn1/moving_mean") != 0)


def test_celeba_network_trains_and_generates(tiny_faces_dataset, tmp_path):
    result = train_two_steps(tiny_faces_dataset, "network-celebA", tmp_path / "job")
    assert result.config["model"]["conditional"] is False
    with load_generator(tmp_path / "job") as generator:
        vectors = np.random.default_rng(0).uniform(-1, 1, (3, generator.z_dim)).astype(np.float32)
        raw = generator.run(vectors)["images"]
    assert raw.shape == (3, 64, 64, 3) and raw.dtype == np.uint8
    assert np.any(checkpoint_tensor(result.checkpoint, "discriminator/bn1/moving_mean") != 0)


def build_training_tower(network, feature_shape, label_shape, num_classes):
    """A fresh graph holding the network's training tower on placeholders."""
    import tensorflow.compat.v1 as tf

    path = resolve_network(network)
    model_class = load_model_class(path)
    meta = {"stages": {"train_db": {"feature_shape": feature_shape, "label_shape": label_shape}},
            "num_classes": num_classes}
    facts = model_facts(model_class, path, meta)
    channels, height, width = feature_shape
    x = tf.placeholder(tf.float32, [BATCH, height, width, channels])
    y = (tf.placeholder(tf.int64, [BATCH]) if label_shape == [] else
         tf.placeholder(tf.float32, [BATCH] + label_shape) if label_shape else None)
    with reuse_scope():
        return build_tower(model_class, facts, x, y, "train", ["loss"])


@pytest.mark.parametrize("network, feature_shape, label_shape, num_classes", [
    ("network-mnist", [1, 28, 28], [], 10),
    ("network-mnist", [1, 28, 28], [], 3),  # class count from the dataset, not a literal 10
    ("network-mnist-simple", [1, 28, 28], [], 10),
    ("network-celebA", [3, 64, 64], [1, 1, 40], None),
    ("network-gaussian-1d", [1, 1, 1], None, None),
])
def test_generator_and_discriminator_variables_are_disjoint_and_complete(
        network, feature_shape, label_shape, num_classes):
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        model = build_training_tower(network, feature_shape, label_shape, num_classes)
        g_vars, d_vars = set(model.g_vars), set(model.d_vars)
        assert g_vars and d_vars and not g_vars & d_vars
        assert g_vars | d_vars == set(tf.trainable_variables())
        for entry in model.loss:
            assert set(entry["vars"]) in (g_vars, d_vars)
            assert entry["loss"].shape.ndims == 0


def test_gaussian_without_minibatch_discrimination_has_no_minibatch_layer():
    import tensorflow.compat.v1 as tf

    path = resolve_network("network-gaussian-1d")
    base = load_model_class(path)
    plain = type("UserModel", (base,), {"minibatch_discrimination": False})
    facts = model_facts(plain, path, {"stages": {"train_db": {"feature_shape": [1, 1, 1], "label_shape": None}}})
    with tf.Graph().as_default():
        with reuse_scope():
            model = build_tower(plain, facts, tf.placeholder(tf.float32, [BATCH, 1, 1, 1]), None, "train", ["loss"])
        names = [v.op.name for v in model.d_vars]
    assert "discriminator/fc2/weights" in names and not any("minibatch" in name for name in names)


@pytest.fixture(scope="module")
def chi_square():
    """Evaluate network-mnist.py's pixel_histogram_chi_square on numpy batches."""
    import tensorflow.compat.v1 as tf

    function = load_model_class(resolve_network("network-mnist")).generator.__globals__["pixel_histogram_chi_square"]

    def evaluate(real, fake):
        with tf.Graph().as_default(), tf.Session() as session:
            return float(session.run(function(tf.constant(real, tf.float32), tf.constant(fake, tf.float32))))

    return evaluate


def test_chi_square_is_finite_with_empty_bins(chi_square):
    black, white = np.zeros((4, 28, 28, 1)), np.ones((4, 28, 28, 1))
    assert chi_square(black, black) == 0.0  # every bin but one empty in both histograms
    assert chi_square(black, white) == pytest.approx(2.0)  # disjoint histograms: the maximum


def test_chi_square_does_not_depend_on_batch_size(chi_square):
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(0, 1, (4, 28, 28, 1)), rng.beta(2, 5, (4, 28, 28, 1))
    small = chi_square(real, fake)
    assert 0.0 < small < 2.0
    assert chi_square(np.tile(real, (3, 1, 1, 1)), fake) == pytest.approx(small, rel=1e-5)
    assert chi_square(real, np.tile(fake, (5, 1, 1, 1))) == pytest.approx(small, rel=1e-5)


@pytest.mark.parametrize("stage, training, inference", [
    ("train", True, False), ("train_1", True, False), ("train_ema_statistics", True, False),
    ("val", False, False), ("inf", False, True)])
def test_every_train_tower_is_built_in_training_mode(stage, training, inference):
    """The second device's tower ('train_1') and the EMA statistics tower train batch
    norm as tower 0 does."""
    import tensorflow.compat.v1 as tf

    network = resolve_network("network-mnist")
    model_class = load_model_class(network)
    meta = {"stages": {"train_db": {"feature_shape": [1, 28, 28], "label_shape": []}}, "num_classes": 10}
    facts = model_facts(model_class, network, meta)
    with tf.Graph().as_default(), reuse_scope():
        model = build_tower(model_class, facts, tf.zeros([2, 28, 28, 1]), tf.zeros([2], tf.int64), stage, [])
    assert (model.is_training, model.is_inference) == (training, inference)
