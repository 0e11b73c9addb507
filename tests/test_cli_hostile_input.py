"""Hostile input to the `digits-gan` commands: each answer is one line on stderr naming
the file or field, a non-zero exit, no traceback (no crash by signal), and nothing of the
user's is removed or left half-written."""
import json
import os
import shutil
import stat
import subprocess
import sys
import types

import numpy as np
import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "digits_gan_plugin.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def one_line_error(result):
    """The single error line of a failed run (asserts there is exactly one, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def copy_dataset(dataset, tmp_path, name="ds"):
    return shutil.copytree(dataset, tmp_path / name)


def edit_meta(dataset, edit):
    path = dataset / "dataset.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_truncated_lmdb_is_an_error_not_a_sigbus(tiny_mnist_dataset, tmp_path):
    ds = copy_dataset(tiny_mnist_dataset, tmp_path)
    data = ds / "train_db" / "features" / "data.mdb"
    data.write_bytes(data.read_bytes()[:5000])
    line = one_line_error(run_cli("dataset", "info", ds))  # was: killed by SIGBUS (exit 135), no message
    assert f"{data}: truncated LMDB (5000 bytes" in line


def test_empty_mean_file_is_named(tiny_mnist_dataset, tmp_path):
    ds = copy_dataset(tiny_mnist_dataset, tmp_path)
    (ds / "train_db" / "mean.binaryproto").write_bytes(b"")
    line = one_line_error(run_cli("dataset", "info", ds))  # was: ValueError traceback (reshape)
    assert "train_db/mean.binaryproto: expected a C x H x W mean" in line


@pytest.mark.parametrize("field, value, expected", [
    ("label_names", 5, "label_names: expected a list of strings, got 5"),
    ("num_classes", "ten", "num_classes: expected a positive integer, got 'ten'"),
])
def test_wrong_types_in_dataset_json_are_named(tiny_mnist_dataset, tmp_path, field, value, expected):
    ds = copy_dataset(tiny_mnist_dataset, tmp_path)
    edit_meta(ds, lambda meta: meta.update({field: value}))
    line = one_line_error(run_cli("dataset", "info", ds))  # was: TypeError traceback
    assert f"{ds}/dataset.json: {expected}" in line


def test_feature_shape_disagreeing_with_the_lmdb_is_an_error(tiny_mnist_dataset, tmp_path):
    ds = copy_dataset(tiny_mnist_dataset, tmp_path)
    edit_meta(ds, lambda meta: meta["stages"]["train_db"].update(feature_shape=[3, 28, 28]))
    line = one_line_error(run_cli("dataset", "info", ds))  # was: exit 0, grey digits broadcast to RGB
    assert "an LMDB entry is 1x28x28 (C x H x W), its dataset says 3x28x28" in line
    edit_meta(ds, lambda meta: meta["stages"]["train_db"].update(feature_shape=[1, 14, 14]))
    assert "its dataset says 1x14x14" in one_line_error(run_cli("dataset", "info", ds))  # was: traceback


def test_a_file_in_place_of_an_output_folder_is_named(tiny_mnist_dataset, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    line = one_line_error(run_cli("dataset", "info", tiny_mnist_dataset, "--grid", blocker / "grid.png"))
    assert line == f"digits-gan: error: {blocker}/grid.png: Not a directory"  # was: '...: File exists'
    line = one_line_error(run_cli("dataset", "create", "synthetic", "--out", blocker / "ds", "--quiet"))
    assert line == f"digits-gan: error: {blocker}: Not a directory"
    assert blocker.read_text() == "mine\n"


def test_atomic_writes_honour_the_umask(tmp_path):
    from digits_gan_plugin.files import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644  # was 0600 (mkstemp's)


def test_overwrite_never_removes_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    mine = tmp_path / "home"
    (mine / "photos").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me\n")
    assert main(["dataset", "create", "synthetic", "--out", str(mine), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"digits-gan: error: {mine}: holds other files, not an earlier dataset") and "\n" not in err
    assert (mine / "notes.txt").read_text() == "keep me\n" and (mine / "photos").is_dir()  # was: all removed
    # an earlier dataset is still replaced
    assert main(["dataset", "create", "synthetic", "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    assert main(["dataset", "create", "synthetic", "--out", str(tmp_path / "ds"), "--overwrite", "--quiet"]) == 0


def test_overwrite_of_the_source_folder_is_refused(tmp_path):
    from conftest import write_mnist_idx_dir

    write_mnist_idx_dir(tmp_path / "src", 12, 8)
    before = sorted(os.listdir(tmp_path / "src"))
    line = one_line_error(run_cli("dataset", "create", "mnist", "--source", tmp_path / "src",
                                  "--out", tmp_path / "src", "--overwrite", "--quiet"))
    assert "holds other files, not an earlier dataset" in line
    assert sorted(os.listdir(tmp_path / "src")) == before  # was: the IDX files replaced by the dataset


def test_an_inference_result_never_replaces_a_folder_of_other_files(tmp_path):
    from digits_gan_plugin.jobdir import write_result

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me\n")
    with pytest.raises(DataError, match="holds other files, not an earlier inference result folder"):
        write_result(tmp_path / "mine", {"inputs": np.zeros((2, 3), np.float32)}, {"task": "z_file"})
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]  # was: replaced by result.npz, result.json
    write_result(tmp_path / "res", {"inputs": np.zeros((2, 3), np.float32)}, {"task": "z_file"})
    write_result(tmp_path / "res", {"inputs": np.ones((2, 3), np.float32)}, {"task": "z_file"})  # replaced


@pytest.mark.parametrize("value", ["0", "-1"])
def test_workers_below_one_is_refused(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "create", "synthetic", "--workers", value, "--out", str(tmp_path / "ds")])
    assert exit_info.value.code == 2
    assert f"argument --workers: expected an integer >= 1, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_huge_workers_forks_no_more_processes_than_chunks(tmp_path, monkeypatch):
    from digits_gan_plugin import dataset_io
    from digits_gan_plugin.data_plugins.synthetic import DataIngestion

    started = []
    real_enter = dataset_io._Encoder.__enter__

    def counting_enter(self):
        started.append(self.workers)
        return real_enter(self)

    monkeypatch.setattr(dataset_io._Encoder, "__enter__", counting_enter)
    dataset_io.write_dataset(DataIngestion(train_count=16, val_count=4), tmp_path / "ds", workers=100000,
                             progress=False)
    assert started and started[0] <= 2  # 16 entries: 2 chunks of 8 (was: 100000 processes forked)


def test_an_npz_that_is_not_a_zip_says_so(tmp_path):
    from digits_gan_plugin.latent import read_z_file

    (tmp_path / "z.npz").write_text("not a zip\n")
    with pytest.raises(DataError) as error:
        read_z_file(tmp_path / "z.npz")
    assert str(error.value) == f"{tmp_path / 'z.npz'}: not a readable z file (expected an .npz: a zip archive " \
                               f"of .npy arrays, or .h5)"  # was: "... contains pickled (object) data ..."


def test_z_vectors_of_the_wrong_width_name_their_file(tmp_path):
    from digits_gan_plugin.runtime.inference import _inference_inputs

    np.savez(tmp_path / "z.npz", foo=np.zeros((2, 3)))
    facts = types.SimpleNamespace(inference_input="z", vector_width=110, z_dim=100, y_dim=10)
    with pytest.raises(DataError) as error:  # was: named no file, and only once the model was loaded
        _inference_inputs(facts, tmp_path, None, str(tmp_path / "z.npz"), None, 10, 0)
    assert str(error.value) == f"{tmp_path / 'z.npz'}: its z vectors have width 3, the model expects 110 " \
                               f"(z_dim 100 + y_dim 10)"


def test_an_inference_dataset_with_a_bad_latent_grid_is_named(tiny_mnist_dataset, tmp_path):
    from digits_gan_plugin.runtime.inference import _inference_inputs

    ds = copy_dataset(tiny_mnist_dataset, tmp_path)
    edit_meta(ds, lambda meta: meta.update(latent={"grid": "3x3"}))
    facts = types.SimpleNamespace(inference_input="z", vector_width=784, z_dim=784, y_dim=0)
    with pytest.raises(DataError, match=r"dataset.json: latent.grid: expected \[rows, cols\]"):
        _inference_inputs(facts, tmp_path, str(ds), None, None, 10, 0)


SEEDED_COMMANDS = [
    ["dataset", "create", "mnist", "--out", "{tmp}/ds"],
    ["dataset", "create", "synthetic", "--out", "{tmp}/ds"],
    ["train", "--dataset", "{tmp}", "--network", "network-mnist", "--out", "{tmp}/job"],
    ["infer", "--job", "{tmp}", "--classes", "1"],
    ["evaluate", "{tmp}"],
    ["latent", "class-sweep", "--job", "{tmp}", "--out", "{tmp}/latent"],
    ["latent", "directions", "--job", "{tmp}", "--out", "{tmp}/directions"],
]


@pytest.mark.parametrize("seed", ["-1", str(2**31)])
@pytest.mark.parametrize("command", SEEDED_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_every_seed_outside_0_to_2_31_is_refused_by_its_flag(tmp_path, command, seed, capsys):
    # numpy refuses negative seeds with a traceback; TensorFlow's graph seeds are int32
    with pytest.raises(SystemExit) as exit_info:
        main([part.format(tmp=tmp_path) for part in command] + ["--seed", seed])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --seed:" in error and seed in error and "Traceback" not in error
    assert os.listdir(tmp_path) == []
