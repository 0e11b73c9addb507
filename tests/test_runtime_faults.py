"""Training-job faults (issue 12): run-time errors in model code, unreadable model files,
a full disk while checkpointing, NaN validation losses, one writer per job folder, and
interruptions at chosen moments (SIGINT / SIGKILL through DIGITS_GAN_TEST_INTERRUPT in a
child process) followed by --resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.runtime.report import INTERRUPT_ENV

BATCH = 8  # 32 train images: 4 steps per epoch

# One loss tensor; BALLAST adds an unused variable of that many floats (a bigger
# checkpoint); ASSERT_IN ('loss' / 'inference') puts a run-time assertion there that
# fails; VAL_NAN makes the validation tower's loss NaN.
MODEL = '''
"""A tiny conditional generator regressing the batch."""
BALLAST = {ballast}
ASSERT_IN = {assert_in!r}
VAL_NAN = {val_nan}


class UserModel(Tower):
    z_dim = 4

    def generator(self, vectors):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [self.z_dim + 2, 64], initializer=tf.random_normal_initializer(stddev=0.1))
            if BALLAST:
                tf.get_variable("ballast", [BALLAST], initializer=tf.zeros_initializer(), trainable=False)
            return tf.reshape(tf.sigmoid(tf.matmul(vectors, w)), [-1, 8, 8, 1])

    @model_property
    def inference(self):
        images = self.generator(tf.reshape(self.x, [-1, self.z_dim + 2]))
        if ASSERT_IN == "inference":
            with tf.control_dependencies([tf.debugging.assert_negative(tf.reduce_max(images))]):
                images = tf.identity(images)
        return tf.cast(tf.round(images * 255.0), tf.uint8)

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        fake = self.generator(tf.concat([z, tf.one_hot(self.y, 2)], 1))
        loss = digits.mse_loss(fake, self.x / 255.0)
        if ASSERT_IN == "loss":
            with tf.control_dependencies([tf.debugging.assert_negative(tf.reduce_max(self.x))]):
                loss = tf.identity(loss)
        if VAL_NAN and not self.is_training:
            loss = loss * float("nan")
        return loss
'''


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "dataset"
    write_dataset(SYNTHETIC(size=8, classes=2, pattern="classes", train_count=32, val_count=8), out, workers=1,
                  progress=False)
    return out


def model(folder, ballast=0, assert_in=None, val_nan=False, name="network-test.py"):
    path = folder / name
    path.write_text(textwrap.dedent(MODEL.format(ballast=ballast, assert_in=assert_in, val_nan=val_nan)))
    return path


def train_args(dataset, network, out, *extra):
    return ["train", "--dataset", str(dataset), "--network", str(network), "--out", str(out),
            "--batch-size", str(BATCH), "--seed", "1", "--threads", "1", "--no-progress", *extra]


def child(args, interrupt=None, preamble=""):
    """Run `digits-gan ARGS` in a child process; DIGITS_GAN_TEST_INTERRUPT=interrupt."""
    env = dict(os.environ)
    if interrupt:
        env[INTERRUPT_ENV] = interrupt
    code = preamble + "import sys\nfrom digits_gan_plugin.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


def rows(job):
    with open(job / "metrics.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def steps(job):
    return sorted(int(p.name[len("model.ckpt-"):-len(".index")]) for p in (job / "checkpoints").glob("*.index"))


# ------------------------------------------------------------------ model code at run time

@pytest.mark.parametrize("where, operand", [("loss", "self.x"), ("inference", "images")])
def test_a_run_time_failure_in_model_code_is_one_line_naming_file_and_line(dataset, tmp_path, capsys, where,
                                                                           operand):
    network = model(tmp_path, assert_in=where)
    lines = network.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if f"assert_negative(tf.reduce_max({operand}))" in text)
    assert main(train_args(dataset, network, tmp_path / "job", "--epochs", "1")) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert f"{network}:{line}: InvalidArgumentError while" in error


def test_a_latin1_model_file_is_a_clear_error(dataset, tmp_path, capsys):
    network = tmp_path / "network-latin1.py"
    network.write_bytes('"""Modèle"""\nclass UserModel(Tower):\n    pass\n'.encode("latin-1"))
    assert main(train_args(dataset, network, tmp_path / "job")) == 2
    error = capsys.readouterr().err
    assert f"{network}:1: not UTF-8 text" in error and "Traceback" not in error


def test_a_nan_validation_loss_stops_training(dataset, tmp_path, capsys):
    job = tmp_path / "job"
    assert main(train_args(dataset, model(tmp_path, val_nan=True), job, "--epochs", "3")) == 2
    error = capsys.readouterr().err
    assert "validation loss entry 'loss' is nan after epoch 1" in error and "Traceback" not in error
    assert not (job / "checkpoints" / "model.ckpt-4.index").exists()  # the epoch's weights are not kept
    assert [r["epoch"] for r in rows(job)] == ["1"] and rows(job)[0].get("val_loss", "") == ""


# ------------------------------------------------------------------ full disk

def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(dataset, tmp_path):
    # 4 MB of ballast: checkpoints exceed the file-size limit set after the first one
    job = tmp_path / "job"
    preamble = textwrap.dedent('''
        import resource, signal
        from digits_gan_plugin.runtime import trainer
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        save = trainer._Loop._save
        def limited(self):
            save(self)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        trainer._Loop._save = limited
    ''')
    result = child(train_args(dataset, model(tmp_path, ballast=1 << 20), job, "--epochs", "3"), preamble=preamble)
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "cannot write the step-8 checkpoint" in error[0], result.stderr
    assert "model.ckpt-4" in error[0] and steps(job) == [4]
    assert "File too large" in error[0]  # the reason itself, not TF's wrapping of it
    assert "Detected at node" not in error[0] and "Graph execution error" not in error[0]
    assert [name for name in os.listdir(job / "checkpoints") if "ckpt-8" in name] == []  # no partial files left
    assert main(["train", "--out", str(job), "--resume", "--no-progress"]) == 0  # the kept one resumes
    assert steps(job)[-1] == 12



def test_a_checkpoint_cut_short_by_a_full_disk_leaves_none_of_its_files(dataset, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    saver = tf.compat.v1.train.Saver
    export = saver.export_meta_graph

    def fills_the_disk(self, filename=None, **kwargs):  # the weights fitted, the graph does not
        if "ckpt-4" in str(filename):
            return export(self, filename, **kwargs)
        open(f"{filename}.tmp1234", "wb").close()
        raise tf.errors.ResourceExhaustedError(None, None, f"{filename}.tmp1234; No space left on device")

    monkeypatch.setattr(saver, "export_meta_graph", fills_the_disk)
    job = tmp_path / "job"
    assert main(train_args(dataset, model(tmp_path), job, "--epochs", "3")) == 2
    assert "cannot write the step-8 checkpoint" in capsys.readouterr().err
    assert sorted(os.listdir(job / "checkpoints")) == ["checkpoint", "model.ckpt-4.data-00000-of-00001",
                                                       "model.ckpt-4.index", "model.ckpt-4.meta"]


# ------------------------------------------------------------------ one writer per job

def test_a_job_started_on_a_full_disk_is_one_line_naming_the_lock_file(tmp_path):
    from conftest import FILL_THE_DISK, run_on_a_tiny_disk

    mount = tmp_path / "disk"
    probe = (f"from digits_gan_plugin.errors import TrainingError\n"
             f"from digits_gan_plugin.runtime.joblock import JobLock, holder\n"
             f"try:\n"
             f"    with JobLock('{mount}/job'):\n"
             f"        print('locked')\n"
             f"except TrainingError as error:\n"
             f"    print(error)\n"
             f"print('holder', holder('{mount}/job'))\n")
    done = run_on_a_tiny_disk(mount, f"{FILL_THE_DISK.format(mount=mount)}; {sys.executable} -c \"{probe}\"")
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.splitlines() == [
        f"{mount}/job/train.lock: cannot write the job's lock file (No space left on device); nothing was trained",
        "holder None"]


def test_a_second_writer_of_a_job_folder_exits_2_naming_the_holder(dataset, tmp_path, capsys):
    job = tmp_path / "job"
    assert main(train_args(dataset, model(tmp_path), job, "--epochs", "1")) == 0
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f'''
        import sys, time
        from digits_gan_plugin.runtime.joblock import JobLock
        with JobLock({str(job)!r}):
            print("locked", flush=True)
            time.sleep(120)
    ''')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        from digits_gan_plugin.runtime.joblock import holder as lock_holder

        assert lock_holder(job)["pid"] == holder.pid
        assert main(["train", "--out", str(job), "--resume", "--epochs", "2", "--no-progress"]) == 2
        error = capsys.readouterr().err
        assert "another training process is writing this job" in error and f"pid {holder.pid}" in error
    finally:
        holder.kill()  # SIGKILL: the OS releases the lock
        holder.wait()
    assert lock_holder(job) is None
    assert main(["train", "--out", str(job), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert [r["epoch"] for r in rows(job)] == ["1", "2"]


# ------------------------------------------------------------------ interruptions

def test_killed_before_the_first_checkpoint_resumes(dataset, tmp_path):
    job = tmp_path / "job"
    result = child(train_args(dataset, model(tmp_path), job, "--epochs", "2"), interrupt="1:KILL")
    assert result.returncode == -signal.SIGKILL
    assert (job / "config.json").is_file() and not list(job.glob("checkpoints/*.index"))
    assert main(["train", "--out", str(job), "--resume", "--no-progress"]) == 0
    assert [r["epoch"] for r in rows(job)] == ["1", "2"] and steps(job)[-1] == 8


def test_interrupted_during_start_up_the_same_command_with_resume_starts_it(dataset, tmp_path):
    job = tmp_path / "job"
    args = train_args(dataset, model(tmp_path), job, "--epochs", "1")
    result = child(args, interrupt="start:INT")
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert main(args + ["--resume"]) == 0  # no config.json yet: it starts from the flags
    assert steps(job) == [4]


def test_sigterm_is_handled_as_ctrl_c_checkpoint_and_exit_143(dataset, tmp_path):
    # kill, docker stop and batch schedulers' time limits send SIGTERM: the job must not lose
    # the steps since its last checkpoint
    job = tmp_path / "job"
    result = child(train_args(dataset, model(tmp_path), job, "--epochs", "2"), interrupt="2:TERM")
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "interrupted at step 2" in result.stderr and "Traceback" not in result.stderr
    assert steps(job) == [2]
    assert main(["train", "--out", str(job), "--resume", "--no-progress"]) == 0
    assert steps(job)[-1] == 8


def test_ctrl_c_inside_an_epoch_report_keeps_that_epochs_row(dataset, tmp_path):
    job = tmp_path / "job"
    result = child(train_args(dataset, model(tmp_path), job, "--epochs", "2"), interrupt="epoch-end:INT")
    assert result.returncode == 130, result.stderr
    assert steps(job) == [4]
    first = rows(job)
    assert [r["epoch"] for r in first] == ["1"] and first[0]["loss"] != "" and "val_loss" not in first[0]
    assert main(["train", "--out", str(job), "--resume", "--no-progress"]) == 0
    final = rows(job)
    assert [r["epoch"] for r in final] == ["1", "2"]
    assert final[0]["loss"] == first[0]["loss"] and final[0]["val_loss"] != ""  # completed, not lost
    assert (job / "samples" / "fakes_epoch0001.png").is_file()
    assert json.loads((job / "config.json").read_text())["created"]


# ------------------------------------------------------------------ absurd sizes

@pytest.mark.parametrize("flags, expected", [
    (["--batch-size", "1000000000"], "--batch-size 1000000000: one batch of 1x8x8 inputs is 238 GiB as float32, "
                                     "more than this machine's"),
    (["--devices", "100000"], "--devices 100000: no GPU is visible, and at most 64 logical CPU devices"),
])
def test_sizes_tensorflow_would_crash_on_are_one_line(dataset, tmp_path, capsys, flags, expected):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU") and "--devices" in flags:
        pytest.skip("a GPU machine takes --devices N as GPUs")
    assert main(train_args(dataset, model(tmp_path), tmp_path / "job", "--max-steps", "1", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"digits-gan: error: {expected}") and "\n" not in err, err


def test_thread_counts_beyond_1024_are_refused_by_the_flag(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(train_args(dataset, model(tmp_path), tmp_path / "job", "--threads", "100000"))
    assert caught.value.code == 2 and "--threads: 100000 is above the maximum 1024" in capsys.readouterr().err


def test_the_loss_curve_leaves_out_values_its_axis_cannot_hold(tmp_path):
    from digits_gan_plugin.runtime.charts import save_metrics_chart

    rows = [{"epoch": "1", "step": "4", "loss": "0.5", "lr": "1e+308"},
            {"epoch": "2", "step": "8", "loss": "inf", "lr": "1e+308"},
            {"epoch": "3", "step": "12", "loss": "-1e300", "lr": "1e+308"}]
    save_metrics_chart(rows, ["loss"], tmp_path / "curve.png")  # --lr 1e308 made matplotlib overflow
    assert (tmp_path / "curve.png").stat().st_size > 1000


OOM_MODEL = '''
class UserModel(Tower):
    z_dim = 4

    @model_property
    def inference(self):
        return tf.cast(self.x, tf.uint8)

    @model_property
    def loss(self):
        w = tf.get_variable("w", [])
        rows = tf.shape(self.x)[0] * 2 ** 20  # 16 TiB of float32, asked for only once the step runs
        huge = tf.random.uniform(tf.stack([rows, 2 ** 16]))
        return tf.reduce_mean(self.x) * w + 0.0 * tf.reduce_sum(huge)
'''


def test_running_out_of_memory_in_a_step_is_one_line_with_the_remedy(dataset, tmp_path, capsys):
    network = tmp_path / "network-oom.py"
    network.write_text(OOM_MODEL)
    assert main(train_args(dataset, network, tmp_path / "job", "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ResourceExhaustedError while running step 0 (epoch 1)" in err, err
    assert "OOM when allocating tensor with shape[" in err and "Hint" not in err, err
    assert err.endswith("; out of memory: try a smaller --batch-size"), err
