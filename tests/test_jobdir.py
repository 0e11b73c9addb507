"""The job directory module: config -> model facts, checkpoints (truncated ones
skipped), metrics, and inference results (writer and reader side by side)."""
import errno
import json
import os

import numpy as np
import pytest

from digits_gan_plugin import cli, jobdir
from digits_gan_plugin.errors import DataError, TrainingError
from digits_gan_plugin.latent import ModelFacts

MODEL = {"network": "net.py", "z_dim": 4, "num_classes": 3, "conditional": True, "input_shape": [8, 8, 1]}


def write_config(folder, model=MODEL, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"dataset": "ds", "model": model, **extra}))
    return str(folder)


# ------------------------------------------------------------------ config, model facts

def test_model_facts_round_trip_through_config(tmp_path):
    job = write_config(tmp_path / "job")
    facts = jobdir.read_model_facts(job)
    assert (facts.z_dim, facts.y_dim, facts.vector_width, facts.input_shape) == (4, 3, 7, (8, 8, 1))
    assert facts.inference_input == "z" and facts.z_distribution == "normal" and facts.job == job
    again = ModelFacts.from_dict(json.loads(json.dumps(facts.to_dict())))
    assert again.replace(job=job) == facts
    (tmp_path / "job" / "network.py").write_text("# copy\n")
    assert jobdir.read_model_facts(job).network == str(tmp_path / "job" / "network.py")


@pytest.mark.parametrize("model, message", [
    ({**MODEL, "y_dim": 5}, "model.y_dim is 5, expected 3"),
    ({**MODEL, "num_classes": None}, "conditional is true but num_classes is None"),
    ({**MODEL, "input_shape": [8, 8]}, r"input_shape is \[8, 8\], expected \[H, W, C\]"),
    ({**MODEL, "z_distribution": "cauchy"}, "z_distribution is 'cauchy'"),
    ({**MODEL, "z_dim": 0}, "z_dim is 0, expected a positive integer"),
    ({**MODEL, "z_dim": None, "inference_input": "z"}, "inference_input is 'z'"),
    ({"z_dim": 4}, "model section needs"),
    ([1, 2], "expected a 'model' section"),
])
def test_bad_model_sections_name_the_config_and_the_field(tmp_path, model, message):
    job = write_config(tmp_path / "job", model)
    with pytest.raises(DataError, match=message) as caught:
        jobdir.read_model_facts(job)
    assert str(caught.value).startswith(str(tmp_path / "job" / "config.json"))


def test_not_a_job_and_bad_json_are_one_line(tmp_path):
    with pytest.raises(DataError, match="not a training job"):
        jobdir.read_config(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(DataError, match="config.json: not valid JSON"):
        jobdir.read_model_facts(tmp_path)
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataError, match="config.json: not valid JSON"):
        jobdir.read_config(tmp_path)


def test_metrics_round_trip_and_read_from_job(tmp_path):
    paths = jobdir.JobPaths(tmp_path)
    jobdir.write_metrics(paths.metrics, [{"epoch": 1, "d_loss": 0.5}, {"epoch": 2, "g_loss": 1.5}])
    assert jobdir.read_metrics(tmp_path) == [{"epoch": "1", "d_loss": "0.5", "g_loss": ""},
                                             {"epoch": "2", "d_loss": "", "g_loss": "1.5"}]
    assert jobdir.read_metrics(tmp_path / "elsewhere") == []


# ------------------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A job with checkpoints at steps 1, 2, 3 of two variables (float32 6x5, int64 7)."""
    import tensorflow.compat.v1 as tf

    job = tmp_path_factory.mktemp("ckjob")
    write_config(job)
    with tf.Graph().as_default():
        tf.get_variable("w", [6, 5])
        tf.get_variable("b", [7], dtype=tf.int64, initializer=tf.zeros_initializer())
        saver = tf.train.Saver(max_to_keep=5)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for step in (1, 2, 3):
                saver.save(session, str(jobdir.JobPaths(job).checkpoint_prefix), global_step=step)
    return job


def fresh_copy(source, target):
    import shutil

    shutil.copytree(source, target)
    return target


def test_good_checkpoints_resolve_to_the_newest(checkpoints, capsys):
    prefix = jobdir.find_checkpoint(checkpoints)
    assert prefix.endswith("model.ckpt-3") and jobdir.checkpoint_step(prefix) == 3
    assert jobdir.latest_step(checkpoints) == 3 and jobdir.has_checkpoint(checkpoints)
    assert jobdir.checkpoint_problem(prefix) is None
    assert capsys.readouterr().err == ""


def test_truncated_newest_checkpoint_falls_back_and_says_so(checkpoints, tmp_path, capsys):
    job = fresh_copy(checkpoints, tmp_path / "job")
    prefix3 = str(jobdir.JobPaths(job).checkpoint_prefix) + "-3"
    data = prefix3 + ".data-00000-of-00001"
    with open(data, "r+b") as handle:
        handle.truncate(os.path.getsize(data) - 8)
    with open(str(jobdir.JobPaths(job).checkpoint_prefix) + "-2.index", "wb") as handle:
        handle.write(b"not an index at all")
    assert "truncated" in jobdir.checkpoint_problem(prefix3)
    assert jobdir.find_checkpoint(job).endswith("model.ckpt-1")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("skipped" in line and "using model.ckpt-1 (step 1)" in line for line in err)
    assert "model.ckpt-3: skipped" in err[0] and "unreadable" in err[1]
    with pytest.raises(TrainingError, match="model.ckpt-3: checkpoint cannot be used: .*truncated"):
        jobdir.find_checkpoint(prefix3)  # a prefix chosen by name is never swapped


def test_no_usable_checkpoint_is_one_clear_line(checkpoints, tmp_path):
    job = fresh_copy(checkpoints, tmp_path / "job")
    for name in os.listdir(jobdir.JobPaths(job).checkpoints):
        if ".data-" in name:
            open(os.path.join(jobdir.JobPaths(job).checkpoints, name), "wb").close()  # zero bytes
    with pytest.raises(TrainingError, match=r"no usable checkpoint \(3 found; newest model.ckpt-3: .*empty"):
        jobdir.find_checkpoint(job)
    with pytest.raises(TrainingError, match="no best checkpoint"):
        jobdir.find_checkpoint(job, which="best")


def test_lost_state_file_still_finds_checkpoints(checkpoints, tmp_path):
    job = fresh_copy(checkpoints, tmp_path / "job")
    os.remove(jobdir.JobPaths(job).checkpoint_state)
    assert jobdir.find_checkpoint(job).endswith("model.ckpt-3")


# ------------------------------------------------------------------- inference results

def encoder_arrays(count=3):
    images = np.arange(count * 8 * 8, dtype=np.uint8).reshape(count, 8, 8, 1)
    return {"inputs": images.astype(np.float32), "images": images, "z": np.ones((count, 4), np.float32)}


def test_result_folder_written_once_and_read_back_as_encoder(tmp_path):
    written = jobdir.write_result(tmp_path / "res", encoder_arrays(), {"task": "encode-list"},
                                  grid=np.zeros((8, 8, 1), np.uint8))
    assert [os.path.basename(p) for p in written] == ["result.npz", "grid.png", "result.json"]
    with np.load(tmp_path / "res" / "result.npz") as archive:
        assert sorted(archive.files) == ["images", "inputs", "z"]  # the reconstruction is stored once
    result = jobdir.InferenceResult(tmp_path / "res")
    assert result.is_encoder and result.reconstructions is result.images and result.meta["task"] == "encode-list"
    assert [p.name for p in jobdir.find_results(tmp_path / "res" / "..")] == []  # not a job's inference/


def test_old_encoder_results_with_two_copies_still_read(tmp_path):
    arrays = encoder_arrays()
    np.savez(tmp_path / "old.npz", z=arrays["z"], reconstructions=arrays["images"], inputs=arrays["inputs"])
    result = jobdir.InferenceResult(tmp_path / "old.npz")
    assert result.is_encoder and np.array_equal(result.reconstructions, arrays["images"])
    assert result.name == "old" and result.meta == {}


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", None])
def test_bad_result_archives_are_one_line(tmp_path, content):
    folder = tmp_path / "res"
    folder.mkdir()
    if content is None:  # a real archive cut in half
        np.savez(folder / "result.npz", **encoder_arrays(50))
        data = (folder / "result.npz").read_bytes()
        content = data[:len(data) // 2]
    (folder / "result.npz").write_bytes(content)
    with pytest.raises(DataError, match=r"result.npz: not a readable inference result") as caught:
        jobdir.InferenceResult(folder)
    assert "\n" not in str(caught.value)


def test_result_without_images_or_with_pickles_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.zeros((2, 3), np.float32))
    with pytest.raises(DataError, match="expected an 'images' array"):
        jobdir.InferenceResult(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", images=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DataError, match="not a readable inference result"):
        jobdir.InferenceResult(tmp_path / "b.npz")


def full_disk(monkeypatch, after_bytes=100):
    """np.savez writes `after_bytes` bytes, then the disk is full."""
    def savez(path, **arrays):
        with open(path, "wb") as handle:
            handle.write(b"x" * after_bytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez)


def test_full_disk_leaves_no_result_and_keeps_the_old_one(tmp_path, monkeypatch):
    jobdir.write_result(tmp_path / "res", encoder_arrays(), {"task": "old"})
    before = sorted(os.listdir(tmp_path))
    full_disk(monkeypatch)
    with pytest.raises(DataError, match="res: cannot write the inference result .No space left on device.") as caught:
        jobdir.write_result(tmp_path / "res", encoder_arrays(), {"task": "new"})
    assert "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == before  # no staged folder left behind
    assert jobdir.InferenceResult(tmp_path / "res").meta["task"] == "old"
    with pytest.raises(DataError, match="No space left"):
        jobdir.write_result(tmp_path / "file.npz", encoder_arrays(), grid=np.zeros((8, 8, 1), np.uint8))
    assert not (tmp_path / "file.npz").exists() and not (tmp_path / "file.png").exists()
    assert sorted(os.listdir(tmp_path)) == before


def test_a_full_disk_writing_hdf5_is_the_same_one_line(tmp_path, monkeypatch):
    import h5py

    def h5py_full_disk(self, *args, **kwargs):  # h5py's OSError: errno 28, a two-line message as strerror
        raise OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: time = Mon Dec  7 02:13:10 2026\n, "
                      "filename = 'x.h5', file descriptor = 3, errno = 28, error message = 'No space left on device', "
                      "buf = 0x55ed0d465af0, total write size = 209760)")

    monkeypatch.setattr(h5py.Group, "create_dataset", h5py_full_disk)
    with pytest.raises(DataError) as caught:
        jobdir.write_result(tmp_path / "file.h5", encoder_arrays(), grid=np.zeros((8, 8, 1), np.uint8))
    assert str(caught.value) == (f"{tmp_path / 'file.h5'}: cannot write the inference result (No space left on device); "
                                 "nothing was written")
    assert os.listdir(tmp_path) == []


def test_a_killed_runs_staged_result_is_removed_by_the_next_write_which_says_so(tmp_path, capsys):
    from digits_gan_plugin.files import staging_dir

    dead = staging_dir(tmp_path / "res", pid=2 ** 22 + 1)  # as a run killed mid-write leaves it (export too)
    os.makedirs(dead)
    jobdir.write_result(tmp_path / "res", encoder_arrays(), {"task": "new"})
    assert sorted(os.listdir(tmp_path)) == ["res"]
    assert "an unfinished new version left by an interrupted run" in capsys.readouterr().err


def test_output_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match="a-file/res: cannot write the inference result"):
        jobdir.write_result(tmp_path / "a-file" / "res", encoder_arrays())


def test_gallery_cli_reports_a_truncated_result_in_one_line(tmp_path, capsys):
    job = write_config(tmp_path / "job")
    folder = jobdir.JobPaths(job).result("sweep")
    folder.mkdir(parents=True)
    (folder / "result.npz").write_bytes(b"")
    assert cli.main(["gallery", job]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digits-gan: error: ") and "result.npz" in err and len(err.splitlines()) == 1


# ------------------------------------------------- `digits-gan infer` on a hand-made job

TINY_GENERATOR = '''
class UserModel(Tower):
    z_dim = 4

    @model_property
    def inference(self):
        w = tf.get_variable("w", [4, 64])
        return tf.reshape(tf.matmul(tf.reshape(self.x, [-1, 4]), w), [-1, 8, 8, 1])

    @model_property
    def loss(self):
        return tf.reduce_mean(self.inference)
'''


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    """A job whose model maps z (4) to 8x8x1 through one 4x64 matrix, saved at steps 1, 2."""
    import tensorflow.compat.v1 as tf

    job = tmp_path_factory.mktemp("tinyjob")
    (job / "network.py").write_text(TINY_GENERATOR)
    write_config(job, {"network": "network.py", "z_dim": 4, "num_classes": None, "conditional": False,
                       "input_shape": [8, 8, 1], "z_distribution": "uniform"})
    with tf.Graph().as_default():
        w = tf.get_variable("w", [4, 64])
        saver = tf.train.Saver()
        with tf.Session() as session:
            session.run(w.initializer)
            for step in (1, 2):
                saver.save(session, str(jobdir.JobPaths(job).checkpoint_prefix), global_step=step)
    return job


def test_infer_skips_a_truncated_newest_checkpoint(tiny_job, tmp_path, capsys):
    job = fresh_copy(tiny_job, tmp_path / "job")
    data = str(jobdir.JobPaths(job).checkpoint_prefix) + "-2.data-00000-of-00001"
    with open(data, "r+b") as handle:
        handle.truncate(100)
    assert cli.main(["infer", "--job", str(job), "--z", _z_file(tmp_path), "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "model.ckpt-2: skipped" in captured.err and "using model.ckpt-1 (step 1)" in captured.err
    result = jobdir.InferenceResult(tmp_path / "r")
    assert result.images.shape == (2, 8, 8, 1) and result.meta["checkpoint"].endswith("model.ckpt-1")


def test_infer_on_a_checkpoint_corrupted_in_place_is_one_line(tiny_job, tmp_path, capsys):
    job = fresh_copy(tiny_job, tmp_path / "job")
    for step in (1, 2):
        data = str(jobdir.JobPaths(job).checkpoint_prefix) + f"-{step}.data-00000-of-00001"
        size = os.path.getsize(data)
        with open(data, "r+b") as handle:
            handle.write(b"\xff" * size)  # same size, wrong bytes: only the restore's checksum sees it
    assert cli.main(["infer", "--job", str(job), "--z", _z_file(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digits-gan: error: ") and "model.ckpt-2" in err and len(err.splitlines()) == 1
    assert not jobdir.find_results(job)


def _z_file(folder):
    path = folder / "z.txt"
    path.write_text("0.1 0.2 0.3 0.4\n-1 0 1 0.5\n")
    return str(path)
