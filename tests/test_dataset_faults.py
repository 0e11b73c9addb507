"""Datasets under bad input, kills and full disks: one line and exit 2, never a
traceback; nothing half-written left looking valid; the old dataset kept until the
new one is complete, and leftovers of a killed run recovered by the next one."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import lmdb
import numpy as np
import pytest
from conftest import FILL_THE_DISK, run_on_a_tiny_disk, write_celeba_dir

from digits_gan_plugin import cli, dataset_io
from digits_gan_plugin.data_plugins import available_plugins
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.files import staging_dir
from digits_gan_plugin.imaging import load_square_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic(**options):
    values = {"train_count": 12, "val_count": 4, "classes": 3}
    values.update(options)
    return available_plugins()["synthetic"](**values)


def one_line_error(capsys, argv):
    """The error line of a command that must fail with exit 2 (argparse's usage lines,
    when a flag's value is refused, come before it)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, option", [
    (["imagefolder", "--val-fraction", "nan"], "val_fraction"),
    (["mnist", "--val-fraction", "inf"], "val_fraction"),
    (["gaussian", "--mean", "nan"], "mean"),
    (["gaussian", "--std", "inf"], "std"),
    (["celeba", "--val-fraction", "-nan"], "val_fraction"),
])
def test_nan_and_inf_options_are_one_line_errors(tmp_path, capsys, argv, option):
    source = ["--source", str(tmp_path)] if argv[0] in ("imagefolder", "celeba") else []
    err = one_line_error(capsys, ["dataset", "create"] + argv + source + ["--out", str(tmp_path / "out")])
    assert option.replace("_", "-") in err or option in err
    assert not (tmp_path / "out").exists()


def test_nan_option_from_python_or_a_form_is_refused():
    with pytest.raises(DataError, match="val_fraction"):
        available_plugins()["imagefolder"](source=".", val_fraction=float("nan"))


def test_dataset_json_without_its_stages(tmp_path, capsys):
    write_dataset(synthetic(), tmp_path / "ds", workers=1, progress=False)
    meta_path = tmp_path / "ds" / "dataset.json"
    meta = json.loads(meta_path.read_text())
    for broken, message in ((dict(meta, stages={}), "'stages'"), ({"plugin_id": "x"}, "'stages'"),
                            ([1, 2], "'stages'"),
                            (dict(meta, stages={"train_db": {"count": "12"}}), "stages.train_db.count"),
                            (dict(meta, stages={"train_db": dict(meta["stages"]["train_db"], feature_shape=[3])}),
                             "feature_shape")):
        meta_path.write_text(json.dumps(broken))
        with pytest.raises(DataError, match=message):
            DatasetReader(tmp_path / "ds")
        assert str(meta_path) in one_line_error(capsys, ["dataset", "info", str(tmp_path / "ds")])


def test_an_lmdb_that_is_not_an_lmdb(tmp_path, capsys):
    write_dataset(synthetic(), tmp_path / "ds", workers=1, progress=False)
    features = tmp_path / "ds" / "train_db" / "features"
    (features / "data.mdb").write_bytes(b"not an lmdb at all" * 100)
    err = one_line_error(capsys, ["dataset", "info", str(tmp_path / "ds")])
    assert str(features) in err
    shutil.rmtree(features)
    features.write_text("a file where the LMDB folder should be")
    assert str(features) in one_line_error(capsys, ["dataset", "info", str(tmp_path / "ds")])


def test_a_corrupt_datum_is_one_line(tmp_path, capsys):
    write_dataset(synthetic(), tmp_path / "ds", workers=1, progress=False)
    env = lmdb.open(str(tmp_path / "ds" / "val_db" / "features"))
    with env.begin(write=True) as txn:
        txn.put(b"%09d" % 2, b"\xff\xff\xff garbage")
    env.close()
    with pytest.raises(DataError, match="not a Caffe Datum"):
        DatasetReader(tmp_path / "ds").read_all("val_db")


def test_latin1_attribute_list_names_the_file_and_line(tmp_path, capsys):
    write_celeba_dir(tmp_path / "celeba", [(10, 10, 10), (200, 200, 200)])
    attributes = tmp_path / "celeba" / "list_attr_celeba.txt"
    lines = attributes.read_text().splitlines()
    lines[3] = lines[3].replace("000002.jpg", "Ã©tÃ©.jpg")
    attributes.write_bytes(("\n".join(lines) + "\n").encode("utf-8").replace("Ã©".encode("utf-8"), b"\xe9"))
    err = one_line_error(capsys, ["dataset", "create", "celeba", "--source", str(tmp_path / "celeba"),
                                  "--out", str(tmp_path / "out")])
    assert f"{attributes}: line 4 is not UTF-8" in err


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    pixels = load_square_image(str(tmp_path / "deep.png"), 16, mode="L")[..., 0]
    np.testing.assert_allclose(pixels, ramp / 257.0, atol=0.51)
    assert (pixels == 255).mean() < 0.01
    rgb = load_square_image(str(tmp_path / "deep.png"), 16, mode="RGB")
    assert (rgb[..., 0] == pixels).all() and (rgb[..., 2] == pixels).all()


def test_imagefolder_dataset_of_16_bit_pngs_and_an_unconvertible_image(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((8, 8), 20000 * index, np.uint16)).save(folder / f"{index}.png")
    out = tmp_path / "ds"
    assert cli.main(["dataset", "create", "imagefolder", "--source", str(folder), "--size", "8",
                     "--channels", "grey", "--val-fraction", "0", "--out", str(out), "--quiet"]) == 0
    x, _ = DatasetReader(out).read_all("train_db")
    assert sorted(int(image.mean()) for image in x) == [0, 78, 156]  # 20000 * k / 257
    Image.fromarray(np.zeros((8, 8), np.float32)).save(folder / "float.tiff")
    err = one_line_error(capsys, ["dataset", "create", "imagefolder", "--source", str(folder),
                                  "--out", str(tmp_path / "ds2")])
    assert str(folder / "float.tiff") in err and "floating-point" in err


class FullDiskEnv:
    """An LMDB environment on a full disk: every commit fails as LMDB reports it."""

    def __init__(self, env):
        self.env = env

    def begin(self, write=False):
        if write:
            raise lmdb.Error(f"{self.env.path()}: mdb_txn_commit: No space left on device")
        return self.env.begin()

    def __getattr__(self, name):
        return getattr(self.env, name)


def test_full_disk_from_a_fake_lmdb_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    real_init = dataset_io._LmdbWriter.__init__

    def on_full_disk(self, path, **kwargs):
        real_init(self, path, **kwargs)
        self.env = FullDiskEnv(self.env)

    monkeypatch.setattr(dataset_io._LmdbWriter, "__init__", on_full_disk)
    with pytest.raises(DataError, match="no space left"):
        write_dataset(synthetic(), tmp_path / "ds", workers=1, progress=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("full_before", [False, True])  # True: LMDB's memory-mapped lock file was a SIGBUS
def test_full_disk_on_a_tiny_tmpfs_is_one_line_not_a_signal(tmp_path, full_before):
    mount = tmp_path / "mnt"
    build = (f"{sys.executable} -m digits_gan_plugin.cli dataset create synthetic --size 32 --channels 3 "
             f"--train-count 200 --out {mount}/ds --workers 2 --quiet")
    fill = FILL_THE_DISK.format(mount=mount) + "; " if full_before else ""
    done = run_on_a_tiny_disk(mount, f"{fill}{build}; echo rc=$?; rm -f {mount}/fill; ls -A {mount}")
    assert done.stdout.strip() == "rc=2", (done.stdout, done.stderr)
    assert done.stderr.strip().endswith("no space left on the device while writing the dataset "
                                        "(nothing was written; free some space and run again)")
    assert "Traceback" not in done.stderr


KILL_BETWEEN_RENAMES = textwrap.dedent("""
    import os, signal, sys
    from digits_gan_plugin import files
    from digits_gan_plugin.data_plugins import available_plugins
    from digits_gan_plugin.dataset_io import write_dataset

    real_rename = os.rename
    def rename(source, target):
        real_rename(source, target)
        if ".old-" in os.path.basename(target):  # the old dataset moved aside, the new one not in place
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename = rename
    plugin = available_plugins()["synthetic"](train_count=5, val_count=0, pattern="ramp", step=50)
    write_dataset(plugin, sys.argv[1], workers=1, progress=False, overwrite=True)
""")


def test_overwrite_killed_between_its_renames_keeps_the_old_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    write_dataset(synthetic(train_count=7), out, workers=1, progress=False)
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, str(out)], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists() and any(".old-" in name for name in os.listdir(tmp_path))
    # The next reader puts the old dataset back, removes the dead run's new one, and says so.
    assert DatasetReader(out).count("train_db") == 7
    err = capsys.readouterr().err
    assert "restored the previous version" in err and "an unfinished new version" in err
    assert os.listdir(tmp_path) == ["ds"]


SLOW_BUILD = textwrap.dedent("""
    import os, sys, time
    from digits_gan_plugin.data_plugins import available_plugins
    from digits_gan_plugin.dataset_io import write_dataset

    class Slow(available_plugins()["synthetic"]):
        def encode_entry(self, entry):
            open(os.path.join(sys.argv[2], str(os.getpid())), "w").close()  # a worker at work
            time.sleep(0.05)
            return super().encode_entry(entry)

    write_dataset(Slow(train_count=400, val_count=0), sys.argv[1], workers=2, progress=False)
""")


def running(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with the build through prctl (Linux)")
def test_workers_of_a_build_killed_outright_die_with_it_silently(tmp_path):
    marks = tmp_path / "workers"
    marks.mkdir()
    build = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(tmp_path / "ds"), str(marks)], cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(os.listdir(marks)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(name) for name in os.listdir(marks)]
    assert len(workers) == 2
    build.kill()
    err = build.communicate(timeout=30)[1]  # EOF only once the workers, holding stderr too, are gone
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in workers)


def test_the_next_build_recovers_a_killed_overwrite_and_says_so(tmp_path, capsys):
    out = tmp_path / "ds"
    write_dataset(synthetic(train_count=7), out, workers=1, progress=False)
    dead = 2 ** 22 + 1
    os.rename(out, staging_dir(out, "old", pid=dead))
    shutil.copytree(staging_dir(out, "old", pid=dead), staging_dir(out, "tmp", pid=dead))
    assert cli.main(["dataset", "create", "synthetic", "--train-count", "3", "--val-count", "0",
                     "--out", str(out), "--overwrite", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "restored the previous version" in err and "an unfinished new version" in err
    assert os.listdir(tmp_path) == ["ds"] and DatasetReader(out).count("train_db") == 3


def test_overwrite_killed_after_the_new_one_is_in_place_cleans_the_old(tmp_path, capsys):
    out = tmp_path / "ds"
    write_dataset(synthetic(train_count=7), out, workers=1, progress=False)
    shutil.copytree(out, staging_dir(out, "old", pid=2 ** 22 + 1))  # a dead process's replaced version
    assert DatasetReader(out).count("train_db") == 7  # the name holds a dataset: leftovers wait
    write_dataset(synthetic(train_count=4), out, workers=1, progress=False, overwrite=True)
    assert os.listdir(tmp_path) == ["ds"] and "the replaced version" in capsys.readouterr().err


def test_a_live_builds_staging_folder_is_left_alone(tmp_path):
    out = tmp_path / "ds"
    live = staging_dir(out, "tmp", pid=os.getppid())
    os.makedirs(live)
    write_dataset(synthetic(), out, workers=1, progress=False)
    assert os.path.isdir(live)


def test_disk_full_writing_the_mean_or_json_is_the_same_error(tmp_path, monkeypatch):
    import errno

    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(("mean.binaryproto", "dataset.json")):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(DataError, match="no space left"):
        write_dataset(synthetic(), tmp_path / "ds", workers=1, progress=False)
    assert os.listdir(tmp_path) == []
