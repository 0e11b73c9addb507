"""The model zoo past 2016 (network-*-wgangp, -sngan, -acgan): every file trains a few
steps through the runtime on tiny data and generates; the gradient penalty, R1 (lazy),
spectral normalization (u kept in checkpoints) and DiffAugment do what their docstrings
say; bad option values stop before any graph is built."""
import math
import re

import numpy as np
import pytest

from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.errors import ModelDefinitionError
from digits_gan_plugin.jobdir import read_metrics
from digits_gan_plugin.runtime.graph import build_tower, model_facts, reuse_scope
from digits_gan_plugin.runtime.inference import load_generator
from digits_gan_plugin.runtime.model_files import load_model_class, resolve_network
from digits_gan_plugin.runtime.trainer import TrainOptions, train

ZOO_MNIST = ["network-mnist-wgangp", "network-mnist-sngan", "network-mnist-acgan"]
BATCH = 4
MNIST_META = {"stages": {"train_db": {"feature_shape": [1, 28, 28], "label_shape": []}}, "num_classes": 10}


@pytest.fixture(scope="module")
def tiny_faces_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo_faces") / "dataset"
    write_dataset(SYNTHETIC(size=64, channels=3, attributes=4, train_count=8, val_count=4), out, workers=1,
                  progress=False)
    return out


def train_steps(dataset, network, job_dir, steps):
    options = TrainOptions(dataset=str(dataset), network=network, epochs=1, batch_size=BATCH, max_steps=steps,
                           seed=0, threads=2)
    return train(options, job_dir, progress=False)


def checkpoint(result):
    import tensorflow.compat.v1 as tf

    return tf.train.load_checkpoint(result.checkpoint)


def list_variables(result):
    import tensorflow.compat.v1 as tf

    return tf.train.list_variables(result.checkpoint)


def assert_losses_finite(job_dir):
    rows = read_metrics(job_dir)
    assert rows, "no metrics row written"
    for column in ("d_loss", "g_loss"):
        assert math.isfinite(float(rows[-1][column])), rows[-1]


@pytest.mark.parametrize("network", ZOO_MNIST)
def test_mnist_zoo_member_trains_and_generates_the_requested_classes(tiny_mnist_dataset, tmp_path, network):
    # 6 steps: the WGAN-GP generator (every n_critic = 2) is updated 3 times
    result = train_steps(tiny_mnist_dataset, network, tmp_path / "job", steps=6)
    assert result.step == 6 and result.config["loss_entries"] == ["d_loss", "g_loss"]
    assert_losses_finite(tmp_path / "job")
    with load_generator(tmp_path / "job") as generator:
        facts = generator.facts
        assert facts.conditional and facts.y_dim == 10 and facts.z_distribution == "normal"
        vectors = np.random.default_rng(0).normal(size=(4, facts.vector_width)).astype(np.float32)
        vectors[:, facts.z_dim:] = np.eye(10, dtype=np.float32)[[0, 3, 5, 9]]
        images = generator.generate(vectors)
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8 and images.max() > images.min()
    assert np.any(checkpoint(result).get_tensor("generator/bn1/moving_mean") != 0)
    if "sngan" in network:
        assert_power_iteration_state_saved(result, ["conv1", "conv2", "fc3", "fc4", "embed"])
    if "acgan" in network:
        assert_power_iteration_state_saved(result, ["conv1", "conv2", "fc3", "fc4", "classes"])
    # Adam's beta2_power is beta2 ** (1 + updates): D updated at every step, G every n_critic
    # (beta2, not beta1: a beta1 of 0 would leave 0 for any count)
    powers = sorted(float(checkpoint(result).get_tensor(name)) for name, _ in list_variables(result)
                    if "beta2_power" in name)
    model_class = load_model_class(resolve_network(network))
    beta2 = getattr(model_class, "beta2", 0.999)  # TF's default where the file sets none
    g_updates = len(range(0, 6, model_class.n_critic))  # G's entry runs on steps 0, n_critic, ...
    assert powers == pytest.approx(sorted([beta2 ** 7, beta2 ** (1 + g_updates)]), rel=1e-5)


def test_faces_sngan_trains_and_generates(tiny_faces_dataset, tmp_path):
    # (network-celebA-wgangp trains in test_digits_models; 64 x 64 is slow on a CPU)
    result = train_steps(tiny_faces_dataset, "network-celebA-sngan", tmp_path / "job", steps=2)
    assert result.config["model"]["conditional"] is False
    assert_losses_finite(tmp_path / "job")
    with load_generator(tmp_path / "job") as generator:
        images = generator.generate(np.random.default_rng(0).normal(size=(2, generator.z_dim)).astype(np.float32))
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    assert_power_iteration_state_saved(result, ["conv0", "conv1", "conv2", "conv3", "fc4"])


def assert_power_iteration_state_saved(result, layers):
    reader = checkpoint(result)
    for layer in layers:
        u = reader.get_tensor(f"discriminator/{layer}/weights_u")
        # initialized N(0, 1) (norm ~ sqrt(width)); each power-iteration step leaves a unit vector
        assert u.shape[0] == 1 and np.linalg.norm(u) == pytest.approx(1.0, abs=1e-4), layer


# ------------------------------------------------------------ graph-level checks (no trainer)

def tower(network, overrides=None):
    """(model, x placeholder, y placeholder) of a training tower of `network` (MNIST
    layout) in the current graph; `overrides` replace class attributes."""
    import tensorflow.compat.v1 as tf

    path = resolve_network(network)
    model_class = load_model_class(path)
    if overrides:
        model_class = type("UserModel", (model_class,), dict(overrides))
    facts = model_facts(model_class, path, MNIST_META)
    x = tf.placeholder(tf.float32, [BATCH, 28, 28, 1])
    y = tf.placeholder(tf.int64, [BATCH])
    with reuse_scope():
        model = build_tower(model_class, facts, x, y, "train", ["loss"])
    return model, x, y


def feed(x, y, seed=0):
    rng = np.random.default_rng(seed)
    return {x: rng.uniform(0, 255, (BATCH, 28, 28, 1)), y: rng.integers(0, 10, BATCH)}


def helpers(network):
    """The module namespace of a model file (its shared helper functions)."""
    return load_model_class(resolve_network(network)).__init__.__globals__


class Stub:
    """What the helpers read from a model: options and the spectral-norm state."""

    def __init__(self, **options):
        self.is_training, self.is_inference = True, False
        self.sn_updates, self.sn_weights = [], {}
        self.__dict__.update(options)


def linear_critic(dim=6):
    """(w, critic): critic(x) = x . w per sample, so grad_x critic = w everywhere."""
    import tensorflow.compat.v1 as tf

    w = tf.Variable(np.linspace(-1.0, 2.0, dim).reshape(1, 1, 1, dim), dtype=tf.float32)
    return w, lambda images: tf.reduce_sum(images * w, axis=[1, 2, 3])[:, None]


def test_gradient_penalty_is_exact_and_differentiable_twice():
    import tensorflow.compat.v1 as tf

    gradient_penalty = helpers("network-mnist-wgangp")["gradient_penalty"]
    with tf.Graph().as_default(), tf.Session() as session:
        w, critic = linear_critic()
        real, fake = tf.random_normal([5, 1, 1, 6]), tf.random_normal([5, 1, 1, 6])
        penalty = gradient_penalty(critic, real, fake)
        grad = tf.gradients(penalty, [w])[0]  # double back-prop
        session.run(tf.global_variables_initializer())
        value, grad_value, w_value = session.run([penalty, grad, w])
    norm = np.linalg.norm(w_value)
    assert value == pytest.approx((norm - 1) ** 2, rel=1e-4) and value > 0
    np.testing.assert_allclose(grad_value, 2 * (norm - 1) * w_value / norm, rtol=1e-4)


def test_r1_is_lazy_and_weighted():
    import tensorflow.compat.v1 as tf

    penalty_of = helpers("network-mnist-sngan")["discriminator_penalty"]
    with tf.Graph().as_default(), tf.Session() as session:
        step = tf.train.get_or_create_global_step()
        w, critic = linear_critic()
        real = tf.random_normal([5, 1, 1, 6])
        model = Stub(regularizer="r1", penalty_weight=2.0, penalty_every=4)
        penalty = penalty_of(model, critic, real, real)
        grad = tf.gradients(penalty, [w])[0]
        session.run(tf.global_variables_initializer())
        values = {}
        for at in (0, 1, 3, 4):
            session.run(step.assign(at))
            values[at] = session.run([penalty, grad])
        squared_norm = float(np.sum(session.run(w) ** 2))
    # gamma / 2 x ||w||^2, times k = 4 on the steps it runs, 0 between
    assert values[0][0] == pytest.approx(4 * 0.5 * 2.0 * squared_norm, rel=1e-4) == values[4][0]
    assert values[1][0] == 0 and values[3][0] == 0 and not np.any(values[1][1])
    assert np.any(values[0][1])


def test_spectral_norm_makes_the_largest_singular_value_one():
    import tensorflow.compat.v1 as tf

    spectral_normed = helpers("network-mnist-sngan")["spectral_normed"]
    with tf.Graph().as_default(), tf.Session() as session:
        # seeded: for an unlucky draw (top two singular values close) 30 iterations fall short
        tf.set_random_seed(0)
        model = Stub()
        with tf.variable_scope("layer"):
            w = tf.get_variable("weights", [3, 3, 4, 8], initializer=tf.random_normal_initializer(stddev=2.0))
            normed = spectral_normed(model, w)
            assert spectral_normed(model, w) is normed  # once per tower
        assert len(model.sn_updates) == 1 and model.sn_updates[0] in tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        names = [v.op.name for v in tf.global_variables()]
        assert "layer/weights_u" in names and "layer/weights_u" not in [v.op.name for v in tf.trainable_variables()]
        session.run(tf.global_variables_initializer())
        for _ in range(30):
            session.run(model.sn_updates)
        matrix = session.run(normed).reshape(-1, 8)
    assert np.linalg.svd(matrix, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)


def test_diffaugment_moves_cuts_and_stays_differentiable():
    import tensorflow.compat.v1 as tf

    space = helpers("network-mnist-acgan")
    dot = np.zeros((64, 28, 28, 1), np.float32)
    dot[:, 14, 14] = 1.0
    with tf.Graph().as_default(), tf.Session() as session:
        images = tf.constant(dot)
        moved, cut = session.run([space["translate"](images), space["cutout"](tf.ones_like(images))])
        augmented = space["diff_augment"](images, ["color", "translation", "cutout"], 1.0)
        grad = session.run(tf.gradients(tf.reduce_sum(augmented), [images])[0])
    rows, cols = np.nonzero(moved[..., 0])[1:]
    assert np.all(moved.reshape(64, -1).sum(axis=1) == 1)  # a shift of at most 1/8 keeps the dot
    assert np.all(np.abs(rows - 14) <= 4) and np.all(np.abs(cols - 14) <= 4) and len(set(rows)) > 1
    zeroed = (cut == 0).reshape(64, -1).sum(axis=1)
    assert np.all(zeroed <= 14 * 14) and np.any(zeroed == 14 * 14) and np.all(zeroed > 0)
    assert grad.shape == dot.shape and np.any(grad != 0)


@pytest.mark.parametrize("network, attribute, value, expected", [
    ("network-mnist-sngan", "loss_type", "wgan", "loss_type must be one of"),
    ("network-mnist-wgangp", "regularizer", "l2", "regularizer must be one of"),
    ("network-mnist-wgangp", "penalty_weight", float("nan"), "penalty_weight must be a finite number >= 0"),
    ("network-mnist-wgangp", "penalty_weight", float("inf"), "penalty_weight must be a finite number >= 0"),
    ("network-mnist-wgangp", "penalty_weight", -1.0, "penalty_weight must be a finite number >= 0"),
    ("network-mnist-wgangp", "penalty_weight", "10", "penalty_weight must be a finite number >= 0"),
    ("network-mnist-wgangp", "n_critic", 0, "n_critic must be an int >= 1"),
    ("network-mnist-wgangp", "n_critic", 2.5, "n_critic must be an int >= 1"),
    ("network-mnist-sngan", "penalty_every", 0, "penalty_every must be an int >= 1"),
    ("network-mnist-acgan", "diffaugment", "flip,cutout", "unknown transform(s) flip"),
    ("network-mnist-acgan", "diffaugment", None, "diffaugment must be a string"),
    ("network-mnist-acgan", "class_weight", -0.5, "class_weight must be a finite number >= 0"),
    ("network-mnist-acgan", "classify_fakes", 1, "classify_fakes must be True or False, got 1"),
    ("network-mnist-wgangp", "beta1", 1.0, "beta1 must be a number in [0, 1), got 1.0"),
    ("network-mnist-wgangp", "learning_rate", 0.0, "learning_rate must be a finite number > 0, got 0"),
])
def test_bad_options_stop_before_any_graph_is_built(network, attribute, value, expected):
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        with pytest.raises(ModelDefinitionError, match=rf"{network}\.py:\d+: ValueError.*{re.escape(expected)}"):
            tower(network, {attribute: value})
        assert not tf.global_variables()


@pytest.mark.parametrize("network", ["network-celebA-wgangp", "network-celebA-sngan"])
def test_bad_options_of_the_faces_files(network):
    import tensorflow.compat.v1 as tf

    path = resolve_network(network)
    bad = type("UserModel", (load_model_class(path),), {"penalty_weight": -2})
    facts = model_facts(bad, path, {"stages": {"train_db": {"feature_shape": [3, 64, 64], "label_shape": None}}})
    with tf.Graph().as_default():
        with pytest.raises(ModelDefinitionError, match="penalty_weight must be a finite number >= 0, got -2"):
            with reuse_scope():
                build_tower(bad, facts, tf.placeholder(tf.float32, [BATCH, 64, 64, 3]), None, "train", ["loss"])
        assert not tf.global_variables()


@pytest.mark.parametrize("network, loss_type, regularizer", [
    ("network-mnist-sngan", "non-saturating", "r1"),
    ("network-mnist-acgan", "wasserstein", "gp"),
])
def test_options_combine_in_one_graph(network, loss_type, regularizer):
    """Other losses and regularizers, lazy, with DiffAugment: the tower builds and D's
    loss has finite gradients for every D variable."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        model, x, y = tower(network, {"loss_type": loss_type, "regularizer": regularizer, "penalty_every": 2,
                                      "diffaugment": "color,translation,cutout"})
        d_entry = model.loss[0]
        grads = tf.gradients(d_entry["loss"], d_entry["vars"])
        assert all(g is not None for g in grads)
        penalty = next(s for s in model.summaries if s.op.name.endswith("penalty"))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values, summary = session.run([grads, penalty], feed(x, y))  # global step 0: the lazy penalty runs
        assert all(np.all(np.isfinite(g)) for g in values), (loss_type, regularizer)
        assert tf.Summary.FromString(summary).value[0].simple_value > 0


def zoo_benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo.py"
    spec = importlib.util.spec_from_file_location("zoo_benchmark", path)
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    return zoo


def test_zoo_benchmark_quick_run_prints_the_table_and_the_figure(tiny_mnist_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIGITS_GAN_CACHE", str(tmp_path / "cache"))  # the judge's cache
    zoo = zoo_benchmark()
    figure = tmp_path / "zoo.png"
    variant = "network-mnist-sngan[df_dim=16,diffaugment=translation,cutout]"
    assert zoo.main(["--quick", "--dataset", str(tiny_mnist_dataset), "--work", str(tmp_path / "work"),
                     "--members", f"network-mnist-acgan,{variant}", "--figure", str(figure)]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | steps | acc ratio | score ratio | FD | FD floor | KID | precision")
    assert [row.split(" | ")[0] for row in table[1:]] == ["| `network-mnist`", "| `network-mnist-acgan`",
                                                          f"| `{variant}`"]
    for row in table[1:]:
        cells = row.strip("| ").split(" | ")
        assert cells[1] == str(zoo.QUICK_STEPS) and all(cell not in ("", "nan") for cell in cells)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the variant trained its own copy of the file, the options appended
    models = tmp_path / "work" / "models"
    copy = load_model_class(models / "network-mnist-sngan_df_dim=16_diffaugment=translation_cutout.py")
    assert (copy.df_dim, copy.diffaugment, copy.loss_type) == (16, "translation,cutout", "hinge")
    assert load_model_class(resolve_network("network-mnist-sngan")).df_dim == 32


def test_zoo_member_specs_parse_options_with_commas_in_values():
    zoo = zoo_benchmark()
    assert zoo.split_members("network-mnist, network-mnist[diffaugment=translation,cutout,penalty_every=8],x") == [
        "network-mnist", "network-mnist[diffaugment=translation,cutout,penalty_every=8]", "x"]
    member = zoo.parse_member("network-mnist-sngan[ diffaugment=translation,cutout , beta1=0.0,learning_rate=2e-4,"
                              "df_dim=32,ema_decay=None,loss_type='hinge']")
    assert member.name == "network-mnist-sngan"
    assert member.options == {"diffaugment": "translation,cutout", "beta1": 0.0, "learning_rate": 2e-4,
                              "df_dim": 32, "ema_decay": None, "loss_type": "hinge"}
    assert zoo.parse_member("network-mnist").options == {}


@pytest.mark.parametrize("spec, expected", [
    ("network-mnist[cutout]", "expected option=value inside the brackets, got 'cutout'"),
    ("network-mnist[]", "empty brackets"),
    ("network-mnist[diffaugment=cutout", "expected NAME or NAME[option=value,...]"),
    ("network-mnist[n_critic=2,n_critic=3]", "option n_critic given twice"),
    ("network-mnist[n_critic=2]", "n_critic is not an option of network-mnist"),
    ("network-mnist[generator=1]", "generator is not an option of network-mnist"),
    ("network-mnist[regularizer=gp]", "UserModel.regularizer must be one of none, r1, got 'gp'"),
    ("network-mnist-sngan[beta2=1.5]", "UserModel.beta2 must be a number in [0, 1), got 1.5"),
    ("network-mnist-sngan[learning_rate=0]", "UserModel.learning_rate must be a finite number > 0"),
    ("network-mnist-wgangp[ema_decay=1.5]", "UserModel.ema_decay: the EMA decay must be a number strictly between 0 and 1"),
    ("network-mnist-foo", "network-mnist-foo: no such model file"),
])
def test_zoo_bad_member_specs_are_parser_errors(spec, expected, capsys):
    zoo = zoo_benchmark()
    with pytest.raises(SystemExit) as stop:
        zoo.parse_args(["--members", f"network-mnist-sngan,{spec}"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: --members: " in error and expected in error, error


@pytest.mark.parametrize("network, dcgan, feature_shape, label_shape, num_classes", [
    ("network-mnist-wgangp", "network-mnist", [1, 28, 28], [], 10),
    ("network-mnist-sngan", "network-mnist", [1, 28, 28], [], 10),
    ("network-mnist-acgan", "network-mnist", [1, 28, 28], [], 10),
    ("network-celebA-wgangp", "network-celebA", [3, 64, 64], None, None),
    ("network-celebA-sngan", "network-celebA", [3, 64, 64], None, None),
])
def test_zoo_generators_are_the_dcgan_ones_so_weights_load(network, dcgan, feature_shape, label_shape, num_classes):
    """`--weights DCGAN_JOB` matches variables by name and shape: every G variable."""
    import tensorflow.compat.v1 as tf

    def generator_variables(name):
        path = resolve_network(name)
        model_class = load_model_class(path)
        meta = {"stages": {"train_db": {"feature_shape": feature_shape, "label_shape": label_shape}},
                "num_classes": num_classes}
        channels, height, width = feature_shape
        with tf.Graph().as_default():
            tf.train.get_or_create_global_step()
            x = tf.placeholder(tf.float32, [BATCH, height, width, channels])
            y = tf.placeholder(tf.int64, [BATCH]) if label_shape == [] else None
            with reuse_scope():
                build_tower(model_class, model_facts(model_class, path, meta), x, y, "train", ["loss"])
            return {v.op.name: v.shape.as_list() for v in tf.global_variables() if v.op.name.startswith("generator/")}

    zoo = generator_variables(network)
    assert zoo and zoo == generator_variables(dcgan)
