"""The EMA of a generator's weights (runtime/ema.py): shadows follow G's updates only,
are saved in checkpoints, survive --resume, start from --weights, and every later use
of the job (infer, evaluate, export) takes them; bad decays and loss entries that never
run stop before any session; the DCGAN files' R1 and DiffAugment options."""
import json
import re
import textwrap

import numpy as np
import pytest

from digits_gan_plugin.errors import ModelDefinitionError, TrainingError
from digits_gan_plugin.runtime.graph import build_tower, model_facts, reuse_scope
from digits_gan_plugin.runtime.inference import infer_command, load_generator
from digits_gan_plugin.runtime.model_files import load_model_class, resolve_network
from digits_gan_plugin.runtime.train_options import make_options
from digits_gan_plugin.runtime.trainer import TrainOptions, train

DECAY = 0.9
G_INIT = 0.5

# G: one weight matrix starting at 0.5 everywhere, trained from step 1 (step 0 trains D
# only), so the shadow after two steps is exactly DECAY * 0.5 + (1 - DECAY) * w.
LINEAR_GAN = '''
class UserModel(Tower):
    z_dim = 3
    conditional = False
    g_start = 1
    g_trains = True

    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [self.z_dim, 784], initializer=tf.constant_initializer(0.5))
            return tf.reshape(tf.sigmoid(tf.matmul(z, w) - 1.0), [-1, 28, 28, 1])

    def discriminator(self, images):
        with tf.variable_scope("discriminator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [784, 1], initializer=tf.random_normal_initializer(stddev=0.1))
            return tf.matmul(tf.reshape(images, [-1, 784]), w)

    @model_property
    def inference(self):
        return self.generator(tf.reshape(self.x, [-1, self.z_dim])) * 255.0

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        fake = self.generator(z)
        d_real, d_fake = self.discriminator(self.x / 255.0), self.discriminator(fake)
        xent = tf.nn.sigmoid_cross_entropy_with_logits
        return [
            {"name": "d", "loss": tf.reduce_mean(xent(logits=d_real, labels=tf.ones_like(d_real)))
                                  + tf.reduce_mean(xent(logits=d_fake, labels=tf.zeros_like(d_fake))),
             "vars": tf.trainable_variables("discriminator/")},
        ] + [
            {"name": "g", "loss": tf.reduce_mean(xent(logits=d_fake, labels=tf.ones_like(d_fake))),
             "vars": tf.trainable_variables("generator/"), "start_step": self.g_start, "solver": "sgd",
             "learning_rate": 5.0},
        ][:1 if self.g_trains else 0]
'''


def write_model(folder, extra=""):
    path = folder / "network-linear.py"
    path.write_text(LINEAR_GAN + textwrap.indent(textwrap.dedent(extra), "    "))
    return path


def options(dataset, network, steps=2, **extra):
    return TrainOptions(dataset=str(dataset), network=str(network), epochs=1, batch_size=8, max_steps=steps,
                        seed=0, threads=2, **extra)


def tensors(checkpoint):
    import tensorflow.compat.v1 as tf

    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(checkpoint)}


@pytest.fixture(scope="module")
def ema_job(tiny_mnist_dataset, tmp_path_factory):
    """(job dir, TrainResult) of LINEAR_GAN trained 2 steps with EMA decay 0.9."""
    root = tmp_path_factory.mktemp("ema")
    result = train(options(tiny_mnist_dataset, write_model(root), ema_decay=DECAY), root / "job", progress=False)
    return root / "job", result


def test_shadows_move_after_the_generator_updates_only_and_are_checkpointed(ema_job):
    job, result = ema_job
    values = tensors(result.checkpoint)
    assert result.config["ema_decay"] == DECAY
    assert sorted(name for name in values if name.endswith("/ema")) == ["generator/w/ema"]  # D has none
    raw, shadow = values["generator/w"], values["generator/w/ema"]
    assert not np.allclose(raw, G_INIT)  # G was updated (at step 1 only)
    # step 0 (D only) left the shadow at 0.5; step 1 moved it after G's update
    np.testing.assert_allclose(shadow, DECAY * G_INIT + (1 - DECAY) * raw, rtol=1e-5)


def test_infer_and_export_use_the_shadows_and_say_so(ema_job, tmp_path, capsys):
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.runtime.export import freeze, model_card

    job, result = ema_job
    z = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
    with load_generator(job) as averaged, load_generator(job, use_ema=False) as raw:
        assert (averaged.weights, raw.weights) == ("ema", "raw")
        ema_images, raw_images = averaged.generate(z), raw.generate(z)
        # the raw graph with the checkpoint's shadow loaded by hand gives the EMA images
        with raw.graph.as_default():
            variable = next(v for v in tf.global_variables() if v.op.name == "generator/w")
            variable.load(tensors(result.checkpoint)["generator/w/ema"], raw.session)
        np.testing.assert_array_equal(raw.generate(z), ema_images)
    assert np.abs(ema_images.astype(int) - raw_images.astype(int)).max() > 0

    z_file = tmp_path / "z.txt"
    z_file.write_text("\n".join(" ".join(map(str, row)) for row in z))
    infer_command(job, z_file=z_file, out=tmp_path / "out")
    assert "EMA weights (decay 0.9)" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "result.json").read_text())["weights"] == "ema"
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "result.npz")["images"], ema_images)

    tower = freeze(job)
    assert tower.ema and np.allclose(tower.weights["generator/w"], tensors(result.checkpoint)["generator/w/ema"])
    card = model_card(tower, job)
    assert card["ema"] is True and card["ema_decay"] == DECAY


def test_resume_continues_the_shadows_and_weights_start_them(ema_job, tiny_mnist_dataset, tmp_path):
    import shutil

    job, first = ema_job
    resumed = tmp_path / "resumed"
    shutil.copytree(job, resumed)
    before = tensors(first.checkpoint)
    result = train(options(tiny_mnist_dataset, job.parent / "network-linear.py", steps=3, ema_decay=DECAY),
                   resumed, resume=True, progress=False)
    after = tensors(result.checkpoint)
    np.testing.assert_allclose(after["generator/w/ema"],
                               DECAY * before["generator/w/ema"] + (1 - DECAY) * after["generator/w"], rtol=1e-5)

    # --weights from a job without EMA: the shadows start from the restored weights
    plain = train(options(tiny_mnist_dataset, job.parent / "network-linear.py"), tmp_path / "plain", progress=False)
    assert not any(name.endswith("/ema") for name in tensors(plain.checkpoint))
    warm = train(options(tiny_mnist_dataset, job.parent / "network-linear.py", ema_decay=DECAY,
                         weights=str(tmp_path / "plain")), tmp_path / "warm", progress=False)
    values, start = tensors(warm.checkpoint), tensors(plain.checkpoint)["generator/w"]
    np.testing.assert_allclose(values["generator/w/ema"], DECAY * start + (1 - DECAY) * values["generator/w"],
                               rtol=1e-5)


def test_weights_into_a_frozen_generator_take_the_source_ema(ema_job, tiny_mnist_dataset, tmp_path):
    job, first = ema_job
    network = write_model(tmp_path, "g_trains = False\n")  # G in no loss entry, as an encoder's G
    result = train(options(tiny_mnist_dataset, network, steps=1, weights=str(job)), tmp_path / "frozen",
                   progress=False)
    np.testing.assert_array_equal(tensors(result.checkpoint)["generator/w"],
                                  tensors(first.checkpoint)["generator/w/ema"])


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "nan", "inf", "x"])
def test_ema_decay_outside_zero_one_is_a_one_line_error(value):
    with pytest.raises(TrainingError, match=r"^--ema-decay: "):
        make_options({"dataset": "d", "network": "n", "ema_decay": value})


@pytest.mark.parametrize("value", [1.0, 0, True, "0.9"])
def test_model_file_ema_decay_is_checked_before_any_graph(tiny_mnist_dataset, tmp_path, value):
    network = write_model(tmp_path, f"ema_decay = {value!r}\n")
    with pytest.raises(ModelDefinitionError, match=r"network-linear\.py: UserModel\.ema_decay: the EMA decay must be "
                                                   r"a number strictly between 0 and 1"):
        train(options(tiny_mnist_dataset, network), tmp_path / "job", progress=False)
    assert not (tmp_path / "job").exists()


def test_model_file_ema_decay_is_the_default_and_the_option_overrides_it(tiny_mnist_dataset, tmp_path):
    network = write_model(tmp_path, "ema_decay = 0.5\n")
    assert train(options(tiny_mnist_dataset, network), tmp_path / "a", dry_run=True).config["ema_decay"] == 0.5
    overridden = train(options(tiny_mnist_dataset, network, ema_decay=0.99), tmp_path / "b", dry_run=True)
    assert overridden.config["ema_decay"] == 0.99


def test_a_loss_entry_that_never_runs_stops_before_the_session(tiny_mnist_dataset, tmp_path):
    network = write_model(tmp_path, "g_start = 5\n")
    with pytest.raises(TrainingError, match=r"network-linear\.py: loss entry 'g' never runs: start_step 5, every 1 "
                                            r"make its first step 5, but the job trains 3 steps \(0\.\.2\)"):
        train(options(tiny_mnist_dataset, network, steps=3), tmp_path / "job", progress=False)
    assert not (tmp_path / "job" / "config.json").exists()


# ------------------------------------------------------------ the DCGAN files' options

def dcgan_copy(folder, name, **attributes):
    """A copy of shipped model file `name` with class attributes replaced."""
    text = resolve_network(name).read_text(encoding="utf-8")
    for attribute, value in attributes.items():
        text, count = re.subn(rf"^    {attribute} = .*$", f"    {attribute} = {value!r}", text, flags=re.M)
        assert count == 1, attribute
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def test_network_mnist_trains_with_lazy_r1_and_diffaugment(tiny_mnist_dataset, tmp_path):
    from digits_gan_plugin.jobdir import read_metrics

    network = dcgan_copy(tmp_path, "network-mnist", regularizer="r1", penalty_every=2,
                         diffaugment="translation,cutout")
    result = train(TrainOptions(dataset=str(tiny_mnist_dataset), network=str(network), epochs=1, batch_size=4,
                                max_steps=2, seed=0, threads=2, summary_interval=1), tmp_path / "job",
                   progress=False)
    row = read_metrics(tmp_path / "job")[-1]
    assert result.step == 2 and all(np.isfinite(float(row[key])) for key in ("d_loss", "g_loss", "penalty"))
    assert float(row["penalty"]) > 0  # step 0: the lazy penalty ran (times 2), step 1: 0


def test_network_celeba_builds_r1_and_diffaugment_with_finite_gradients():
    import tensorflow.compat.v1 as tf

    path = resolve_network("network-celebA")
    model_class = type("UserModel", (load_model_class(path),),
                       {"regularizer": "r1", "diffaugment": "color,translation,cutout"})
    facts = model_facts(model_class, path, {"stages": {"train_db": {"feature_shape": [3, 64, 64], "label_shape": None}}})
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        x = tf.placeholder(tf.float32, [2, 64, 64, 3])
        with reuse_scope():
            model = build_tower(model_class, facts, x, None, "train", ["loss"])
        d_entry = model.loss[0]
        grads = tf.gradients(d_entry["loss"], d_entry["vars"])
        assert len(model.bn_updates) == 2 * 2 * 3 + 2 * 4  # D on real and fake, G: the R1 pass adds none
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(grads, {x: np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3))})
    assert all(np.all(np.isfinite(g)) for g in values)


@pytest.mark.parametrize("network", ["network-mnist", "network-celebA"])
@pytest.mark.parametrize("attribute, value, expected", [
    ("regularizer", "gp", "regularizer must be one of none, r1, got 'gp'"),
    ("penalty_weight", float("nan"), "penalty_weight must be a finite number >= 0"),
    ("penalty_weight", -1.0, "penalty_weight must be a finite number >= 0"),
    ("penalty_every", 0, "penalty_every must be an int >= 1"),
    ("diffaugment", "flip", "unknown transform(s) flip"),
])
def test_dcgan_bad_options_stop_with_file_and_line(network, attribute, value, expected):
    import tensorflow.compat.v1 as tf

    path = resolve_network(network)
    model_class = type("UserModel", (load_model_class(path),), {attribute: value})
    shape = [1, 28, 28] if network == "network-mnist" else [3, 64, 64]
    meta = {"stages": {"train_db": {"feature_shape": shape, "label_shape": []}}, "num_classes": 10}
    facts = model_facts(model_class, path, meta)
    with tf.Graph().as_default():
        with pytest.raises(ModelDefinitionError, match=rf"{network}\.py:\d+: ValueError.*{re.escape(expected)}"):
            with reuse_scope():
                build_tower(model_class, facts, tf.placeholder(tf.float32, [2] + shape[1:] + shape[:1]),
                            tf.placeholder(tf.int64, [2]), "train", ["loss"])
        assert not tf.global_variables()


def digits_safe_model(folder):
    """LINEAR_GAN collecting its variables by name anywhere, as DIGITS' towers put them
    under a 'model/' scope."""
    path = folder / "network-linear-digits.py"
    path.write_text(LINEAR_GAN.replace('tf.trainable_variables("discriminator/")',
                                       '[v for v in tf.trainable_variables() if "discriminator/" in v.op.name]')
                    .replace('tf.trainable_variables("generator/")',
                             '[v for v in tf.trainable_variables() if "generator/" in v.op.name]'))
    return path


def test_ema_follows_the_generator_under_digits_semantics(tiny_mnist_dataset, tmp_path):
    """DIGITS semantics: variables under 'model/', one shared optimizer, the same shadow."""
    result = train(options(tiny_mnist_dataset, digits_safe_model(tmp_path), ema_decay=DECAY, digits_semantics=True),
                   tmp_path / "job", progress=False)
    check_one_generator_update(tensors(result.checkpoint), "model/")
    with load_generator(tmp_path / "job") as generator:
        assert generator.weights == "ema"


def test_ema_follows_the_generator_on_two_towers(tiny_mnist_dataset, tmp_path):
    """Two logical CPU devices (created before TensorFlow initializes, so in a child):
    G's averaged gradient is applied once at step 1 and the one shadow follows it."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "digits_gan_plugin.cli", "train", "--dataset", str(tiny_mnist_dataset),
               "--network", str(digits_safe_model(tmp_path)), "--epochs", "1", "--batch-size", "8",
               "--max-steps", "2", "--seed", "0", "--threads", "2", "--devices", "2",
               "--ema-decay", str(DECAY), "--out", str(tmp_path / "job")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from digits_gan_plugin.jobdir import job_checkpoint

    check_one_generator_update(tensors(job_checkpoint(tmp_path / "job", "last")), "")
    with load_generator(tmp_path / "job") as generator:
        assert generator.weights == "ema"


def check_one_generator_update(values, prefix):
    assert sorted(name for name in values if name.endswith("/ema")) == [prefix + "generator/w/ema"]
    raw = values[prefix + "generator/w"]
    assert not np.allclose(raw, G_INIT)
    np.testing.assert_allclose(values[prefix + "generator/w/ema"], DECAY * G_INIT + (1 - DECAY) * raw, rtol=1e-5)


# G with one piece of batch-norm-like state: training assigns it the batch mean of
# h = b (+ 0 * z); inference subtracts it. Re-estimated with the averaged b, the state
# equals that b, so the EMA generator draws sigmoid(0) everywhere.
STATEFUL_GAN = LINEAR_GAN.replace('''    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [self.z_dim, 784], initializer=tf.constant_initializer(0.5))
            return tf.reshape(tf.sigmoid(tf.matmul(z, w) - 1.0), [-1, 28, 28, 1])
''', '''    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            b = tf.get_variable("b", [784], initializer=tf.constant_initializer(0.5))
            state = tf.get_variable("moving_mean", [784], initializer=tf.zeros_initializer(), trainable=False)
            h = tf.matmul(z, tf.zeros([self.z_dim, 784])) + b
            if self.is_training:
                with tf.control_dependencies([tf.assign(state, tf.reduce_mean(h, 0))]):
                    h = tf.identity(h)
            else:
                h = h - state
            return tf.reshape(tf.sigmoid(h), [-1, 28, 28, 1])
''')


def test_batch_norm_state_is_re_estimated_for_the_averaged_weights(tiny_mnist_dataset, tmp_path):
    network = tmp_path / "network-stateful.py"
    network.write_text(STATEFUL_GAN)
    result = train(options(tiny_mnist_dataset, network, steps=3, ema_decay=DECAY), tmp_path / "job", progress=False)
    values = tensors(result.checkpoint)
    assert sorted(name for name in values if name.endswith("/ema")) == ["generator/b/ema", "generator/moving_mean/ema"]
    shadow = values["generator/b/ema"]
    assert not np.allclose(shadow, values["generator/b"])
    np.testing.assert_allclose(values["generator/moving_mean/ema"], shadow, rtol=1e-6)
    z = np.zeros((4, 3), np.float32)
    with load_generator(tmp_path / "job") as averaged, load_generator(tmp_path / "job", use_ema=False) as raw:
        assert np.all(averaged.generate(z) == np.round(0.5 * 255))
        assert np.any(raw.generate(z) != np.round(0.5 * 255))  # raw b minus the state of an earlier b

    # a checkpoint from before the statistics shadows: resume keeps its weight shadows
    import tensorflow.compat.v1 as tf

    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    for name in ("config.json", "network-stateful.py"):
        if (tmp_path / "job" / name).exists():
            (old / name).write_bytes((tmp_path / "job" / name).read_bytes())
    with tf.Graph().as_default():
        kept = [tf.Variable(value, name=name) for name, value in values.items()
                if name != "generator/moving_mean/ema"]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver({v.op.name: v for v in kept}).save(session, str(old / "checkpoints" / "model.ckpt-3"))
    resumed = train(options(tiny_mnist_dataset, network, steps=4, ema_decay=DECAY), old, resume=True, progress=False)
    after = tensors(resumed.checkpoint)
    np.testing.assert_allclose(after["generator/b/ema"], DECAY * shadow + (1 - DECAY) * after["generator/b"],
                               rtol=1e-5)
    np.testing.assert_allclose(after["generator/moving_mean/ema"], after["generator/b/ema"], rtol=1e-6)
