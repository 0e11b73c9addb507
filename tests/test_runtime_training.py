"""Runtime: model files, loss entries, training loop, resume, NaN, Ctrl-C, --weights,
inference. Tiny 8x8 two-class data and tiny model files written by the fixtures."""
import collections
import json
import math
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.digits_api import DataIngestionInterface
from digits_gan_plugin.errors import ModelDefinitionError
from digits_gan_plugin.runtime.schedules import LearningRatePolicy

TRAIN_COUNT, VAL_COUNT, BATCH = 32, 8, 8  # 4 steps per epoch


def tiny_plugin():
    """Class 0: dark 8x8 squares, class 1: bright ones (1,8,8 uint8, labels [0] / [1])."""
    return SYNTHETIC(size=8, channels=1, classes=2, pattern="classes", train_count=TRAIN_COUNT, val_count=VAL_COUNT)


# A conditional generator (z_dim 4) trained by ONE loss tensor: reconstruct the batch.
ONE_LOSS = '''
"""One loss tensor: G(z, y) regresses the real batch."""


class UserModel(Tower):
    z_dim = 4

    def generator(self, vectors):
        with tf.variable_scope("generator"):
            w = tf.get_variable("w", [int(vectors.shape[-1]), 64],
                                initializer=tf.random_normal_initializer(stddev=0.1))
            b = tf.get_variable("b", [64], initializer=tf.zeros_initializer())
            return tf.reshape(tf.sigmoid(tf.matmul(vectors, w) + b), [-1, 8, 8, 1])

    @model_property
    def inference(self):
        vectors = tf.reshape(self.x, [-1, int(self.x.shape[-1])])
        return tf.cast(tf.round(self.generator(vectors) * 255.0), tf.uint8)

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        fake = self.generator(tf.concat([z, tf.one_hot(self.y, self.nclasses)], 1))
        loss = digits.mse_loss(fake, self.x / 255.0)
        self.summaries.append(tf.summary.scalar("fake_mean", tf.reduce_mean(fake)))
        return loss
'''

# THREE entries: D on real, D on fake, G; G starts at step G_START; NaN from NAN_AT.
THREE_ENTRIES = '''
"""Three loss entries."""
G_START = {g_start}
NAN_AT = {nan_at}


class UserModel(Tower):
    z_dim = 4

    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [self.z_dim, 64], initializer=tf.random_normal_initializer(stddev=0.1))
            return tf.reshape(tf.sigmoid(tf.matmul(z, w)), [-1, 8, 8, 1])

    def discriminator(self, images):
        with tf.variable_scope("discriminator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [64, 1], initializer=tf.random_normal_initializer(stddev=0.1))
            return tf.matmul(tf.reshape(images, [-1, 64]), w)

    @model_property
    def inference(self):
        return tf.cast(self.generator(tf.reshape(self.x, [-1, self.z_dim])) * 255.0, tf.uint8)

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        fake = self.generator(z)
        d_real, d_fake = self.discriminator(self.x / 255.0), self.discriminator(fake)
        xent = tf.nn.sigmoid_cross_entropy_with_logits
        d_real_loss = tf.reduce_mean(xent(logits=d_real, labels=tf.ones_like(d_real)))
        if NAN_AT is not None:
            poison = tf.where(tf.train.get_global_step() >= NAN_AT, float("nan"), 1.0)
            d_real_loss = d_real_loss * poison
        d_fake_loss = tf.reduce_mean(xent(logits=d_fake, labels=tf.zeros_like(d_fake)))
        g_loss = tf.reduce_mean(xent(logits=d_fake, labels=tf.ones_like(d_fake)))
        d_vars = tf.trainable_variables("discriminator/")
        g_vars = tf.trainable_variables("generator/")
        return [
            {{"name": "d_real", "loss": d_real_loss, "vars": d_vars}},
            {{"name": "d_fake", "loss": d_fake_loss, "vars": d_vars, "solver": "sgd", "learning_rate": 0.1}},
            {{"name": "g", "loss": g_loss, "vars": g_vars, "start_step": G_START,
             "solver_args": {{"beta1": 0.5}}}},
        ]
'''


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from digits_gan_plugin.dataset_io import write_dataset

    out = tmp_path_factory.mktemp("tiny") / "dataset"
    write_dataset(tiny_plugin(), out, workers=1, progress=False)
    return out


def write_model(folder, source, name="network-test.py"):
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def train_args(dataset, network, out, *extra):
    return ["train", "--dataset", str(dataset), "--network", str(network), "--out", str(out),
            "--batch-size", str(BATCH), "--seed", "1", "--threads", "1", "--no-progress", *extra]


def metric_rows(job):
    import csv

    with open(job / "metrics.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def checkpoint_step(job):
    import tensorflow as tf

    return int(tf.train.latest_checkpoint(str(job / "checkpoints")).rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def one_loss_job(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_loss")
    network = write_model(folder, ONE_LOSS)
    job = folder / "job"
    assert main(train_args(dataset, network, job, "--epochs", "2", "--solver", "adam", "--lr", "0.1",
                           "--best-metric", "val_loss")) == 0
    return job


def test_one_loss_job_writes_config_metrics_samples_checkpoints(one_loss_job):
    config = json.loads((one_loss_job / "config.json").read_text())
    assert config["model"]["z_dim"] == 4 and config["model"]["num_classes"] == 2
    assert config["model"]["conditional"] is True and config["model"]["input_shape"] == [8, 8, 1]
    assert config["steps_per_epoch"] == 4 and config["loss_entries"] == ["loss"]
    rows = metric_rows(one_loss_job)
    assert [(r["epoch"], r["step"]) for r in rows] == [("1", "4"), ("2", "8")]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])  # it learns
    assert rows[0]["val_loss"] != "" and rows[0]["fake_mean"] != "" and float(rows[0]["images_per_sec"]) > 0
    assert checkpoint_step(one_loss_job) == 8
    assert json.loads((one_loss_job / "checkpoints/best/best.json").read_text())["metric"] == "val_loss"
    for name in ("samples/reals.png", "samples/fakes_epoch0001.png", "samples/fakes_epoch0002.png",
                 "loss_curve.png"):
        assert (one_loss_job / name).stat().st_size > 0
    from PIL import Image

    # conditional grid: 8 rows of z x 2 class columns of 8x8 tiles with 2-pixel padding
    assert Image.open(one_loss_job / "samples/fakes_epoch0001.png").size == (2 * 10 + 2, 8 * 10 + 2)
    assert list(one_loss_job.glob("events.out.tfevents.*"))  # TensorBoard's run = the job folder


def test_three_entries_update_only_their_variables(dataset, tmp_path):
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.dataset_io import DatasetReader
    from digits_gan_plugin.runtime.graph import model_facts
    from digits_gan_plugin.runtime.model_files import load_model_class
    from digits_gan_plugin.runtime.train_options import TrainOptions
    from digits_gan_plugin.runtime.trainer import build_graph

    network = write_model(tmp_path, THREE_ENTRIES.format(g_start=1, nan_at=None))
    model_class = load_model_class(network)
    reader = DatasetReader(dataset)
    options = TrainOptions(dataset=str(dataset), network=str(network), batch_size=BATCH, lr=0.05, seed=1)
    built = build_graph(options, reader, model_class, model_facts(model_class, network, reader.meta), 1)
    assert [e.name for e in built.entries] == ["d_real", "d_fake", "g"]
    with tf.Session(graph=built.graph) as session:
        session.run([built.init, built.train_init])

        def snapshot():
            return {v.op.name: session.run(v) for v in tf.global_variables(scope=None) if v in built.model_variables}

        before = snapshot()
        active, op = built.updates.op_at(0)
        assert active == (0, 1)
        session.run(op)
        after_d = snapshot()
        assert not np.allclose(before["discriminator/w"], after_d["discriminator/w"])
        assert np.array_equal(before["generator/w"], after_d["generator/w"])
        assert session.run(built.global_step) == 1  # one step, not one per entry
        active, op = built.updates.op_at(1)
        assert active == (0, 1, 2)
        session.run(op)
        assert not np.allclose(after_d["generator/w"], snapshot()["generator/w"])
        assert session.run(built.global_step) == 2


def test_every_key_runs_an_entry_only_on_multiples():
    from digits_gan_plugin.runtime.graph import LossEntry, active_at, active_sets

    entries = [LossEntry("d", None, [], "adam", 1.0), LossEntry("g", None, [], "adam", 1.0, start_step=3, every=2)]
    assert [active_at(entries, step) for step in range(7)] == [(0,), (0,), (0,), (0,), (0, 1), (0,), (0, 1)]
    assert active_sets(entries) == {(0,), (0, 1)}


def test_resume_continues_epoch_and_step_counters(dataset, tmp_path):
    network = write_model(tmp_path, ONE_LOSS)
    job = tmp_path / "job"
    assert main(train_args(dataset, network, job, "--epochs", "3", "--max-steps", "6", "--keep", "2",
                           "--snapshot-interval", "0.5")) == 0
    assert checkpoint_step(job) == 6
    assert [(r["epoch"], r["step"]) for r in metric_rows(job)] == [("1", "4"), ("2", "6")]
    assert main(["train", "--out", str(job), "--resume", "--max-steps", "12", "--no-progress"]) == 0
    assert checkpoint_step(job) == 12
    assert sorted(path.name for path in (job / "checkpoints").glob("*.index")) == [
        "model.ckpt-10.index", "model.ckpt-12.index"]  # --keep 2 across both runs
    assert [(r["epoch"], r["step"]) for r in metric_rows(job)] == [("1", "4"), ("2", "8"), ("3", "12")]


def test_ctrl_c_writes_a_checkpoint_and_resume_finishes(dataset, tmp_path):
    from digits_gan_plugin.runtime.trainer import TrainOptions, train

    network = write_model(tmp_path, ONE_LOSS)
    job = tmp_path / "job"

    def interrupt(step):
        if step == 3:
            raise KeyboardInterrupt

    options = TrainOptions(dataset=str(dataset), network=str(network), epochs=2, batch_size=BATCH, seed=1,
                           threads=1)
    result = train(options, job, progress=False, step_callback=interrupt)
    assert result.interrupted and result.step == 3 and checkpoint_step(job) == 3
    assert main(["train", "--out", str(job), "--resume", "--no-progress"]) == 0
    assert checkpoint_step(job) == 8


def test_nan_loss_stops_naming_entry_and_step_and_keeps_checkpoint(dataset, tmp_path, capsys):
    network = write_model(tmp_path, THREE_ENTRIES.format(g_start=0, nan_at=3))
    job = tmp_path / "job"
    assert main(train_args(dataset, network, job, "--epochs", "2", "--snapshot-interval", "0.5")) == 2
    error = capsys.readouterr().err
    assert "loss entry 'd_real' is nan at step 3" in error and "model.ckpt-2" in error
    assert checkpoint_step(job) == 2
    assert (job / "checkpoints" / "model.ckpt-2.index").is_file()


@pytest.mark.parametrize("source, line, words", [
    ("x = 1\n\ndef broken(:\n    pass\n", 3, "syntax error"),
    ("x = 1\n", None, "no UserModel"),
    ("UserModel = 3\n", None, "derived from Tower"),
    ("class UserModel(Tower):\n    z_dim = 4\n\n    @model_property\n    def loss(self):\n"
     "        return tf.reduce_mean(self.x) + undefined_name\n", 6, "NameError while building the train tower"),
])
def test_broken_model_files_name_file_and_line(dataset, tmp_path, capsys, source, line, words):
    network = write_model(tmp_path, source)
    assert main(train_args(dataset, network, tmp_path / "job", "--epochs", "1")) == 2
    error = capsys.readouterr().err
    where = f"{network}:{line}" if line else f"{network}:"
    assert where in error and words in error


def test_load_model_class_raises_typed_error(tmp_path):
    from digits_gan_plugin.runtime.model_files import load_model_class

    with pytest.raises(ModelDefinitionError, match="network-test.py:1: syntax error"):
        load_model_class(write_model(tmp_path, "def (\n"))


def test_bad_devices_and_bad_policy_options_are_clear_errors(dataset, tmp_path, capsys):
    network = write_model(tmp_path, ONE_LOSS)
    assert main(train_args(dataset, network, tmp_path / "a", "--devices", "0")) == 2
    assert "--devices: expected an integer >= 1 or device names, got 0" in capsys.readouterr().err
    two_towers = "/device:CPU:0,/device:CPU:0"  # two towers on one device: no logical devices needed
    assert main(train_args(dataset, network, tmp_path / "c", "--devices", two_towers, "--batch-size", "7")) == 2
    assert "--batch-size 7 does not divide evenly across 2 devices" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
    assert main(train_args(dataset, network, tmp_path / "b", "--lr-policy", "step")) == 2
    assert "--gamma: required by --lr-policy step" in capsys.readouterr().err


def test_dry_run_builds_and_prints_config_without_writing(dataset, tmp_path, capsys):
    network = write_model(tmp_path, THREE_ENTRIES.format(g_start=0, nan_at=None))
    assert main(train_args(dataset, network, tmp_path / "job", "--dry-run")) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["loss_entries"] == ["d_real", "d_fake", "g"] and config["model"]["conditional"] is True
    assert not (tmp_path / "job").exists()


@pytest.mark.parametrize("policy, options, step, expected", [
    ("fixed", {}, 100, 0.1),
    ("step", {"gamma": 0.5, "step_size": 10}, 25, 0.1 * 0.25),
    ("multistep", {"gamma": 0.1, "step_values": [10, 20]}, 20, 0.1 * 0.01),
    ("multistep", {"gamma": 0.1, "step_values": [10, 20]}, 9, 0.1),
    ("exp", {"gamma": 0.99}, 10, 0.1 * 0.99 ** 10),
    ("inv", {"gamma": 0.1, "power": 0.5}, 30, 0.1 * 4 ** -0.5),
    ("poly", {"power": 2.0, "max_steps": 100}, 50, 0.1 * 0.25),
    ("poly", {"power": 2.0, "max_steps": 100}, 150, 0.0),
    ("sigmoid", {"gamma": 0.1, "step_size": 50}, 50, 0.05),
    ("sigmoid", {"gamma": 0.1, "step_size": 50}, 60, 0.1 / (1 + math.exp(-1.0))),
])
def test_learning_rate_policies(policy, options, step, expected):
    assert LearningRatePolicy(policy, 0.1, **options)(step) == pytest.approx(expected)


def test_weights_initialize_matching_variables(one_loss_job, dataset, tmp_path, capsys):
    import tensorflow as tf

    extended = ONE_LOSS.replace('return loss', 'extra = tf.get_variable("extra", [3])\n'
                                '        return loss + 0.0 * tf.reduce_sum(extra)')
    network = write_model(tmp_path, extended)
    job = tmp_path / "job"
    assert main(train_args(dataset, network, job, "--epochs", "1", "--max-steps", "1", "--solver", "sgd",
                           "--lr", "1e-12", "--weights", str(one_loss_job))) == 0
    assert "initializing 2 of 3 model variables" in capsys.readouterr().err
    source = tf.train.latest_checkpoint(str(one_loss_job / "checkpoints"))
    target = tf.train.latest_checkpoint(str(job / "checkpoints"))
    np.testing.assert_allclose(tf.train.load_variable(target, "generator/w"),
                               tf.train.load_variable(source, "generator/w"), atol=1e-6)


def test_infer_classes_writes_images_and_labels(one_loss_job, tmp_path):
    from digits_gan_plugin.runtime.inference import generate_classes

    out = tmp_path / "classes.npz"
    assert main(["infer", "--job", str(one_loss_job), "--classes", "0,1", "--per-class", "3", "--seed", "4",
                 "--out", str(out)]) == 0
    with np.load(out) as result:
        assert result["images"].shape == (6, 8, 8, 1) and result["images"].dtype == np.uint8
        assert result["labels"].tolist() == [0, 0, 0, 1, 1, 1]
        images, labels = generate_classes(one_loss_job, [0, 1], 3, seed=4)
        np.testing.assert_array_equal(images, result["images"])
    assert out.with_suffix(".png").is_file()
    # the model learned: class 1 (bright) comes out brighter than class 0
    assert images[3:].mean() > images[:3].mean() + 50


def test_infer_z_file_and_checkpoint_choice(one_loss_job, tmp_path):
    z = np.random.default_rng(0).uniform(-1, 1, (5, 6)).astype(np.float32)
    np.savetxt(tmp_path / "z.txt", z)
    out = tmp_path / "out"
    assert main(["infer", "--job", str(one_loss_job), "--z", str(tmp_path / "z.txt"), "--checkpoint", "best",
                 "--out", str(out)]) == 0
    with np.load(out / "result.npz") as result:
        assert result["images"].shape == (5, 8, 8, 1)
        np.testing.assert_allclose(result["inputs"], z, rtol=1e-6)
    assert "best" in json.loads((out / "result.json").read_text())["checkpoint"]
    np.savetxt(tmp_path / "bad.txt", z[:, :3])
    assert main(["infer", "--job", str(one_loss_job), "--z", str(tmp_path / "bad.txt")]) == 2


def test_models_command_lists_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from digits_gan_plugin.cli import main; main(['models']); "
            "assert 'tensorflow' not in sys.modules, 'TF imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "network-mnist" in result.stdout


class VectorPlugin(DataIngestionInterface):
    """An inference dataset: 6 vectors of width 6 (z_dim 4 + 2 classes), float32 6,1,1."""

    @staticmethod
    def get_id():
        return "tiny-vectors"

    def itemize_entries(self, stage):
        return list(range(6)) if stage == "test_db" else []

    def encode_entry(self, entry):
        vector = np.zeros(6, np.float32)
        vector[4 + entry % 2] = 1.0
        return vector.reshape(6, 1, 1), None


def test_infer_dataset_writes_result_json_and_grid_into_job(one_loss_job, tmp_path):
    from digits_gan_plugin.dataset_io import write_dataset

    latent = {"task": "class-sweep", "grid": [2, 3]}
    dataset = tmp_path / "sweep"
    write_dataset(VectorPlugin(), dataset, workers=1, progress=False, extra_meta={"latent": latent})
    assert main(["infer", "--job", str(one_loss_job), "--dataset", str(dataset)]) == 0
    out = one_loss_job / "inference" / "sweep"
    with np.load(out / "result.npz") as result:
        assert result["images"].shape == (6, 8, 8, 1) and result["inputs"].shape == (6, 6)
    info = json.loads((out / "result.json").read_text())
    assert info["task"] == "class-sweep" and info["grid"] == [2, 3] and info["latent"] == latent
    assert info["checkpoint"].endswith("model.ckpt-8") and info["created"]
    from PIL import Image

    assert Image.open(out / "grid.png").size == (3 * 10 + 2, 2 * 10 + 2)


def test_a_moved_job_still_infers(one_loss_job, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(one_loss_job, moved)
    config = json.loads((moved / "config.json").read_text())
    config["model"]["network"] = str(tmp_path / "gone.py")  # the original model file is gone
    (moved / "config.json").write_text(json.dumps(config))
    assert "checkpoints/" not in (moved / "checkpoints" / "checkpoint").read_text()
    out = tmp_path / "c.h5"
    assert main(["infer", "--job", str(moved), "--classes", "1", "--per-class", "2", "--out", str(out)]) == 0
    import h5py

    with h5py.File(out, "r") as result:
        assert result["images"].shape == (2, 8, 8, 1) and list(result["labels"][()]) == [1, 1]


def test_tensorboard_tags_are_not_duplicated_and_the_run_is_the_job(one_loss_job):
    import tensorflow.compat.v1 as tf

    events = list(one_loss_job.glob("events.out.tfevents.*"))
    assert events and not (one_loss_job / "events").exists()  # `tensorboard --logdir PARENT`: run = job name
    tags = collections.Counter()
    for path in events:
        for event in tf.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags[(event.step, value.tag)] += 1
    names = {tag for _, tag in tags}
    assert {"train/loss", "val/loss", "train/lr", "train/fake_mean", "samples/fakes", "samples/reals"} <= names
    assert not any(tag.startswith("loss/") or tag.startswith("val_loss/") for tag in names)
    assert max(tags.values()) == 1  # each tag once per step


def test_the_loss_curve_puts_unlike_series_on_separate_axes():
    from digits_gan_plugin.runtime.charts import group_columns

    columns = ["epoch", "step", "d_loss", "g_loss", "val_d_loss", "val_g_loss", "d_real", "d_fake", "chi_square",
               "images_per_sec", "lr"]
    assert group_columns(columns, {"d_loss", "g_loss"}) == {
        "losses": ["d_loss", "g_loss", "val_d_loss", "val_g_loss"], "D outputs": ["d_real", "d_fake"],
        "metrics": ["chi_square"], "learning rate": ["lr"]}


def test_training_output_is_quiet_unless_verbose(dataset, tmp_path):
    import subprocess
    import sys

    network = write_model(tmp_path, ONE_LOSS)
    noise = ("absl::InitializeLog", "cuInit", "cudart_stub", "cpu_feature_guard", "oneDNN")

    def run(*args):
        code = "import sys\nfrom digits_gan_plugin.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                              timeout=300)

    # --dry-run imports TensorFlow and probes its devices: where the start-up lines come from
    quiet = run(*train_args(dataset, network, tmp_path / "job", "--dry-run"))
    assert quiet.returncode == 0, quiet.stderr
    assert not any(word in quiet.stderr for word in noise), quiet.stderr
    loud = run("--verbose", *train_args(dataset, network, tmp_path / "job", "--dry-run"))
    assert loud.returncode == 0 and any(word in loud.stderr for word in noise)  # what the default hides


def test_the_final_line_states_the_checkpoint_size_and_keep(dataset, tmp_path, capsys):
    network = write_model(tmp_path, ONE_LOSS)
    assert main(train_args(dataset, network, tmp_path / "job", "--max-steps", "2")) == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    assert "trained 2 steps" in final and "MB each" in final and "--keep 2: at most" in final


def test_summary_steps_write_a_steps_csv_row_that_the_web_charts_plot(dataset, tmp_path):
    from digits_gan_plugin import jobdir
    from digits_gan_plugin.webapp.charts import panels

    network = write_model(tmp_path, ONE_LOSS)
    job = tmp_path / "job"
    assert main(train_args(dataset, network, job, "--epochs", "1", "--summary-interval", "1")) == 0
    rows = jobdir.read_step_metrics(job)
    assert [row["step"] for row in rows] == ["1", "2", "3", "4"]  # every step of the 4-step epoch
    assert [float(row["epoch"]) for row in rows] == [0.25, 0.5, 0.75, 1.0]
    assert all(math.isfinite(float(row["loss"])) and row["lr"] for row in rows)
    losses = next(panel for panel in panels(jobdir.read_metrics(job), rows) if panel["id"] == "losses")
    assert losses["data"][0] == [1, 2, 3, 4]  # the chart moves within the first epoch
    # a torn last line (a kill while appending) is dropped, the rest still reads
    with open(job / "steps.csv", "a", encoding="utf-8") as stream:
        stream.write("5,1.25")
    assert len(jobdir.read_step_metrics(job)) == 4



def test_xla_auto_is_off_on_cpus_and_bad_values_are_refused(tmp_path, capsys):
    from digits_gan_plugin.runtime.trainer import xla_wanted

    assert (xla_wanted("on"), xla_wanted("off"), xla_wanted("auto")) == (True, False, False)  # no GPU here
    with pytest.raises(SystemExit) as stopped:
        main(train_args(tmp_path / "dataset", write_model(tmp_path, ONE_LOSS), tmp_path / "job", "--xla", "fast"))
    assert stopped.value.code == 2 and "--xla: 'fast' is not one of auto, on, off" in capsys.readouterr().err


HEAP_CYCLES = '''
import ctypes, resource, sys, threading
from digits_gan_plugin.runtime.trainer import keep_arena_heaps
kept = keep_arena_heaps() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
faults = []
def step_like():  # a pool thread's large temporaries: 72 MiB (more than one 64 MiB arena heap), then freed
    for cycle in range(12):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        blocks = [libc.malloc(12 << 20) for _ in range(6)]
        for block in blocks:
            ctypes.memset(block, 1, 12 << 20)
        for block in blocks:
            libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=step_like)
thread.start()
thread.join()
print(kept, max(faults[2:]))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc arenas")
def test_keep_arena_heaps_stops_per_step_page_faults():
    """A thread's emptied arena heap is unmapped and faulted in again each cycle (one
    12 MiB block's 3072 pages) unless the trainer's keep_arena_heaps ran first."""
    def run(mode):
        out = subprocess.run([sys.executable, "-c", HEAP_CYCLES, mode], capture_output=True, text=True, check=True)
        kept, faults = out.stdout.split()
        return kept, int(faults)

    assert run("plain")[1] >= 3000  # the pattern does cycle a heap without the fix
    kept, faults = run("keep")
    assert kept == "True" and faults < 100


def test_train_towers_gate_bias_gradients_with_the_same_values():
    """Train towers build BiasAdd with the gated gradient (so oneDNN keeps a convolution's
    filter and bias gradients apart); the gradients equal TensorFlow's own."""
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.runtime.graph import GATED_BIAS_ADD_GRADIENT, _gated_bias_add_gradient

    with tf.Graph().as_default() as graph:
        x = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 6, 3)), tf.float32)
        w = tf.constant(np.random.default_rng(1).normal(size=(3, 3, 3, 4)), tf.float32)
        b = tf.constant([0.5, -1.0, 2.0, 0.0])
        values = []
        for override in ({}, {"BiasAdd": _gated_bias_add_gradient()}):
            with graph.gradient_override_map(override):
                y = tf.nn.bias_add(tf.nn.conv2d(x, w, strides=1, padding="SAME"), b)
            values.append(tf.gradients(tf.reduce_sum(tf.square(y)), [x, w, b]))
        assert y.op.get_attr("_gradient_op_type") == GATED_BIAS_ADD_GRADIENT.encode()
        assert _gated_bias_add_gradient() == GATED_BIAS_ADD_GRADIENT  # registered once, callable again
        with tf.Session() as session:
            plain, gated = session.run(values)
    for a, c in zip(plain, gated):
        np.testing.assert_allclose(a, c, rtol=1e-6)


def test_build_train_towers_uses_the_gated_bias_gradient():
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.latent import ModelFacts
    from digits_gan_plugin.runtime.graph import GATED_BIAS_ADD_GRADIENT, build_train_towers
    from digits_gan_plugin.runtime.tower import Tower, model_property

    class Conv(Tower):
        @model_property
        def loss(self):
            w = tf.get_variable("w", [3, 3, 1, 2])
            return tf.reduce_sum(tf.nn.bias_add(tf.nn.conv2d(self.x, w, strides=1, padding="SAME"),
                                                tf.get_variable("b", [2])))

    facts = ModelFacts(z_dim=None, num_classes=None, conditional=False, input_shape=(4, 4, 1), network="conv.py")
    with tf.Graph().as_default() as graph:
        build_train_towers(Conv, facts, [(tf.zeros([2, 4, 4, 1]), None)], [None], "conv.py", "adam", 1e-3)
        bias_adds = [op for op in graph.get_operations() if op.type == "BiasAdd"]
        assert bias_adds and all(op.get_attr("_gradient_op_type") == GATED_BIAS_ADD_GRADIENT.encode()
                                 for op in bias_adds)


TRAIN_FAULTS = '''
import os, resource, statistics, sys, tempfile
from digits_gan_plugin.runtime.trainer import TrainOptions, train
faults = []
def after_step(step):
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
with tempfile.TemporaryDirectory() as tmp:
    train(TrainOptions(dataset=sys.argv[1], network="network-mnist", epochs=1, batch_size=64,
                       seed=0, threads=2, snapshot_interval=1000.0),
          os.path.join(tmp, "job"), progress=False, step_callback=after_step)
print(statistics.median(b - a for a, b in zip(faults[10:], faults[11:])))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc arenas")
def test_training_steps_do_not_fault_pages_in_each_step(tmp_path):
    """The trainer keeps arena heaps before it builds the graph: called only when the
    session opened, network-mnist still faulted ~1,000 pages in every step (2 threads)."""
    from digits_gan_plugin.dataset_io import write_dataset

    write_dataset(SYNTHETIC(size=28, channels=1, classes=10, train_count=64 * 40, val_count=0), tmp_path / "data",
                  progress=False)
    out = subprocess.run([sys.executable, "-c", TRAIN_FAULTS, str(tmp_path / "data")], capture_output=True,
                         text=True, check=True)
    assert float(out.stdout.split()[-1]) < 100
