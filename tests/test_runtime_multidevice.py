"""Multi-device towers: 2 logical CPU devices give the same one-step update as one
device on the same full batch (three SGD loss entries, no randomness). TensorFlow
must create logical devices before it initializes, so the graphs run in a child
process."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.errors import TrainingError
from digits_gan_plugin.runtime.cluster import tower_batch_size

# Deterministic 3-entry model: D on real, D on fake, G; z is taken from the images.
THREE_ENTRY_MODEL = '''
class UserModel(Tower):
    z_dim = 4

    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            start = np.linspace(-0.5, 0.5, 4 * 64, dtype=np.float32).reshape(4, 64)
            w = tf.get_variable("w", initializer=tf.constant(start))
            return tf.reshape(tf.sigmoid(tf.matmul(z, w)), [-1, 8, 8, 1])

    def discriminator(self, images):
        with tf.variable_scope("discriminator", reuse=tf.AUTO_REUSE):
            start = np.linspace(0.3, -0.2, 64, dtype=np.float32).reshape(64, 1)
            w = tf.get_variable("w", initializer=tf.constant(start))
            return tf.matmul(tf.reshape(images, [-1, 64]), w)

    @model_property
    def inference(self):
        return self.generator(tf.reshape(self.x, [-1, self.z_dim])) * 255.0

    @model_property
    def loss(self):
        z = tf.reshape(self.x, [-1, 64])[:, :4] / 255.0
        fake = self.generator(z)
        d_real, d_fake = self.discriminator(self.x / 255.0), self.discriminator(fake)
        d_vars, g_vars = tf.trainable_variables("discriminator/"), tf.trainable_variables("generator/")
        return [
            {"name": "d_real", "loss": tf.reduce_mean(tf.square(d_real - 1.0)), "vars": d_vars},
            {"name": "d_fake", "loss": tf.reduce_mean(tf.square(d_fake)), "vars": d_vars, "learning_rate": 0.05},
            {"name": "g", "loss": tf.reduce_mean(tf.square(d_fake - 1.0)), "vars": g_vars},
        ]
'''

# Child: one SGD step of the model on 1 device and on 2 logical CPU devices.
ONE_STEP = '''
import json, sys
import numpy as np
import tensorflow.compat.v1 as tf
from digits_gan_plugin.runtime.cluster import local_devices
from digits_gan_plugin.runtime.graph import (ModelFacts, UpdateOps, build_train_towers, mean_entries,
                                              reuse_scope)
from digits_gan_plugin.runtime.model_files import load_model_class

tf.disable_eager_execution()
network, spec = sys.argv[1], sys.argv[2]
devices = local_devices(spec)
model_class = load_model_class(network)
facts = ModelFacts(network=network, z_dim=4, num_classes=None, conditional=False, input_shape=[8, 8, 1])
x_value = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 1)).astype(np.float32)
graph = tf.Graph()
with graph.as_default():
    x = tf.constant(x_value)
    step = tf.train.get_or_create_global_step()
    inputs = [(part, None) for part in tf.split(x, len(devices))]
    with reuse_scope():
        models, tower_entries = build_train_towers(model_class, facts, inputs, devices, network, "sgd", 0.1)
    updates = UpdateOps(tower_entries, models, network, tf.constant(1.0), step, [], devices)
    losses = [entry.loss for entry in mean_entries(tower_entries)]
    placed = sorted({op.device for op in graph.get_operations() if op.name.startswith("train")})
    with tf.Session(graph=graph) as session:
        session.run(tf.global_variables_initializer())
        before = session.run(losses)
        session.run(updates.op_at(0)[1])
        weights = {v.op.name: session.run(v).ravel().tolist() for v in tf.global_variables()}
result = {"devices": devices, "placed": placed, "losses": [float(v) for v in before], "weights": weights}
if len(sys.argv) > 3:  # the whole trainer on these devices, into job sys.argv[4]
    from digits_gan_plugin.runtime.trainer import TrainOptions, train
    options = TrainOptions(dataset=sys.argv[3], network=network, batch_size=8, epochs=1, devices=spec, threads=1,
                           seed=1, solver="sgd", lr=0.1)
    result["trained"] = train(options, sys.argv[4], progress=False).config
print(json.dumps(result))
'''


def squares():
    """16 unlabelled 8x8 grey squares (1,8,8 uint8): flat grey 15 x index."""
    return SYNTHETIC(size=8, channels=1, train_count=16, val_count=0, pattern="ramp", step=15)


def one_step(tmp_path, spec, *train_into):
    network = tmp_path / "network-three.py"
    network.write_text(textwrap.dedent(THREE_ENTRY_MODEL))
    done = subprocess.run([sys.executable, "-c", ONE_STEP, str(network), spec, *map(str, train_into)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_logical_cpus_update_like_one_device_on_the_full_batch(tmp_path):
    from digits_gan_plugin.dataset_io import write_dataset

    write_dataset(squares(), tmp_path / "dataset", workers=1, progress=False)
    single, double = one_step(tmp_path, "1"), one_step(tmp_path, "2", tmp_path / "dataset", tmp_path / "job")
    assert double["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert any(device.endswith("CPU:1") for device in double["placed"])  # tower 1 really is on CPU:1
    assert np.allclose(single["losses"], double["losses"], rtol=1e-5, atol=1e-6)
    assert set(single["weights"]) == set(double["weights"])
    for name in ("generator/w", "discriminator/w"):
        start = np.asarray(single["weights"][name])
        assert not np.allclose(start, np.asarray(one_step_initial(name)))  # the step did change the weights
        np.testing.assert_allclose(double["weights"][name], start, rtol=1e-5, atol=1e-6)
    assert single["weights"]["global_step"] == double["weights"]["global_step"] == [1]
    # the trainer end to end on the 2 devices: config.json records them
    assert double["trained"]["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    config = json.loads((tmp_path / "job" / "config.json").read_text())
    assert config["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert config["loss_entries"] == ["d_real", "d_fake", "g"]
    assert (tmp_path / "job" / "checkpoints" / "model.ckpt-2.index").is_file()


def one_step_initial(name):
    if name == "generator/w":
        return np.linspace(-0.5, 0.5, 4 * 64, dtype=np.float32)
    return np.linspace(0.3, -0.2, 64, dtype=np.float32)


def test_batch_that_does_not_divide_is_a_one_line_error():
    assert tower_batch_size(64, 2) == 32
    with pytest.raises(TrainingError, match="--batch-size 63 does not divide evenly across 2 devices"):
        tower_batch_size(63, 2)
