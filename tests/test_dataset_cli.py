"""`digits-gan dataset ...`: fast TF-free help, create/info/plugins, errors, Ctrl-C, forms."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import write_mnist_idx_dir
from digits_gan_plugin.cli import main
from digits_gan_plugin.data_plugins import available_plugins, get_plugin
from digits_gan_plugin.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "digits_gan_plugin.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, **kwargs)


def test_help_is_fast_and_does_not_import_tensorflow():
    # CPU time, not wall time: the test machine may be shared with other jobs
    probe = ("import sys, time; t = time.process_time(); from digits_gan_plugin.cli import main\n"
             "try: main(['dataset', 'create', 'mnist', '--help'])\n"
             "except SystemExit: pass\n"
             "print('TF' if 'tensorflow' in sys.modules else 'noTF', time.process_time() - t)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    verdict, seconds = result.stdout.split()[-2:]
    assert "--val-fraction" in result.stdout and verdict == "noTF"
    assert float(seconds) < 1.0


def test_running_out_of_memory_is_one_line(capsys):
    import argparse

    from digits_gan_plugin import cli

    def greedy(args):
        raise MemoryError("Unable to allocate 82.0 GiB for an array with shape (100000000, 110)")

    assert cli._run(argparse.Namespace(func=greedy, debug=False)) == 2
    assert capsys.readouterr().err.strip() == (
        "digits-gan: error: out of memory (Unable to allocate 82.0 GiB for an array with shape (100000000, 110)); "
        "ask for fewer images, a smaller batch or grid")
    with pytest.raises(MemoryError):
        cli._run(argparse.Namespace(func=greedy, debug=True))


def test_version_names_the_package_version():
    from digits_gan_plugin import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"digits-gan {__version__}"


def test_create_info_and_plugins(tmp_path, capsys):
    write_mnist_idx_dir(tmp_path / "src", 12, 8)
    assert main(["dataset", "create", "mnist", "--source", str(tmp_path / "src"), "--out",
                 str(tmp_path / "ds"), "--workers", "1", "--quiet"]) == 0
    assert "train_db: 12 entries, feature 1x28x28 uint8" in capsys.readouterr().out
    assert main(["dataset", "info", str(tmp_path / "ds"), "--grid", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "labels: class index, 10 classes: 0, 1, 2, 3" in out
    assert "val_db: 8 entries, feature C,H,W [1, 28, 28] uint8, mean per channel" in out
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 30 + 2, 4 * 30 + 2)  # 12 digits -> 3 rows of 4, 28px + 2px padding
    assert main(["dataset", "plugins"]) == 0
    out = capsys.readouterr().out
    for plugin_id in ("mnist", "celeba", "imagefolder"):
        assert plugin_id in out


def test_errors_are_one_line_with_exit_2(tmp_path):
    result = run_cli("dataset", "create", "mnist", "--source", str(tmp_path), "--out", str(tmp_path / "ds"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"digits-gan: error: {tmp_path}: no MNIST IDX files and no images in class sub-folders 0..9"
    ]
    result = run_cli("dataset", "info", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "nothing: not a dataset" in result.stderr
    result = run_cli("dataset", "create", "celeba", "--source", str(tmp_path / "missing"), "--out", "x")
    assert result.returncode == 2 and "missing: no such folder" in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_during_build_leaves_nothing(tmp_path, signal_number, code):
    write_mnist_idx_dir(tmp_path / "src", 10, 0)
    # a plugin whose entries are slow, so the build is surely running when SIGINT arrives
    script = (
        "import sys, time\n"
        "from digits_gan_plugin.data_plugins import mnist\n"
        "encode = mnist.DataIngestion.encode_entry\n"
        "def slow(self, entry):\n"
        "    time.sleep(0.05)\n"
        "    return encode(self, entry)\n"
        "mnist.DataIngestion.encode_entry = slow\n"
        "itemize = mnist.DataIngestion.itemize_entries\n"
        "mnist.DataIngestion.itemize_entries = lambda self, stage: itemize(self, stage) * 100\n"
        "from digits_gan_plugin.cli import main\n"
        f"sys.exit(main(['dataset', 'create', 'mnist', '--source', {str(tmp_path / 'src')!r}, "
        f"'--out', {str(tmp_path / 'ds')!r}, '--workers', '2', '--quiet']))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not any(name.startswith(".ds.tmp") for name in os.listdir(tmp_path)) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == code and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_registry_lookup():
    assert get_plugin("celeba").get_title().startswith("CelebA")
    assert {"mnist", "celeba", "imagefolder"} <= set(available_plugins())
    with pytest.raises(DataError, match="unknown data plugin 'svhn': expected one of .*mnist"):
        get_plugin("svhn")


@pytest.mark.parametrize("plugin_id", ["mnist", "celeba", "imagefolder"])
def test_dataset_form_renders_fields_tooltips_and_errors(plugin_id, tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    plugin = get_plugin(plugin_id)
    form = plugin.get_dataset_form()
    template, context = plugin.get_dataset_template(form)
    html = jinja2.Template(template).render(**context)
    for option in plugin.OPTIONS:
        assert f'name="{option.name}"' in html
        assert option.help.replace("'", "&#39;")[:30] in html

    from werkzeug.datastructures import MultiDict

    bad = plugin.get_dataset_form().__class__(MultiDict({"source": str(tmp_path / "missing"), "val_fraction": "2"}))
    assert not bad.validate()
    assert "no such folder" in bad.source.errors[0]
    assert bad.val_fraction.errors
    html = jinja2.Template(template).render(form=bad)
    assert "has-error" in html and "no such folder" in html


def test_dataset_form_is_a_flask_wtf_form_inside_a_request(tmp_path):
    flask = pytest.importorskip("flask")
    pytest.importorskip("flask_wtf")
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=False)
    (tmp_path / "img_align_celeba").mkdir()
    with app.test_request_context(method="POST", data={"source": str(tmp_path), "size": "32"}):
        form = get_plugin("celeba").get_dataset_form()
        assert form.validate_on_submit(), form.errors
        assert form.size.data == 32 and form.crop.data == 108


def test_option_values_round_trip_through_cli_flags(tmp_path):
    import argparse

    from digits_gan_plugin.options import add_to_argparse, to_cli_args

    options = get_plugin("celeba").OPTIONS
    values = {"source": str(tmp_path), "crop": 96, "size": 32, "strict": True, "fast_decode": False,
              "max_images": None, "seed": ""}
    args = to_cli_args(options, values)
    assert "--max-images" not in args and "--seed" not in args  # None / '': the default applies
    parsed = vars(add_to_argparse(argparse.ArgumentParser(), options).parse_args(args))
    assert {name: parsed[name] for name in ("source", "crop", "size", "strict", "fast_decode")} == {
        "source": str(tmp_path), "crop": 96, "size": 32, "strict": True, "fast_decode": False}
