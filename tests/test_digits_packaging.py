"""Installing into an existing DIGITS: what `pip install` may pull, what the README's
commands install, and a plugin layer that runs on DIGITS' Python 3.8 without TensorFlow."""
import os
import re
import subprocess
import sys

import pytest
import setuptools

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Never pinned, never replaced in a DIGITS environment.
DIGITS_OWNS = ("tensorflow", "flask", "wtforms", "flask-wtf", "protobuf")
PLUGIN_LAYER = ["digits_gan_plugin/data_plugins", "view_plugins", "digits_gan_plugin/digits_api.py",
                "digits_gan_plugin/proto.py", "digits_gan_plugin/options.py", "digits_gan_plugin/dataset_io.py",
                "digits_gan_plugin/imaging.py", "digits_gan_plugin/latent.py", "digits_gan_plugin/files.py",
                "digits_gan_plugin/errors.py", "digits_gan_plugin/pictures.py",
                "digits_gan_plugin/jobdir.py"]  # gan_inference reads jobs through it


@pytest.fixture(scope="module")
def setup_kwargs(monkeypatch_module):
    captured = {}
    monkeypatch_module.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch_module.chdir(ROOT)
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as handle:
        exec(compile(handle.read(), "setup.py", "exec"), {"__name__": "__main__"})
    return captured


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def split(requirement):
    """'Flask-WTF>=1.1' -> ('flask-wtf', '>=1.1')."""
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.strip()


def names(requirements):
    return {split(r)[0] for r in requirements}


def test_a_plain_install_does_not_touch_digits_tensorflow_flask_wtforms_protobuf(setup_kwargs):
    for name, spec in map(split, setup_kwargs["install_requires"]):
        assert not name.startswith("tensorflow") and name not in ("tf-slim", "tensorboard"), name
        if name in DIGITS_OWNS + ("jinja2",):
            assert spec == "", f"{name}{spec}: would replace the version DIGITS runs with"
    assert "3.8" in setup_kwargs["python_requires"]


def test_the_readme_commands_install_everything_they_need(setup_kwargs):
    extras = setup_kwargs["extras_require"]
    runtime = names(extras["runtime"])
    assert {"tensorflow", "tf-slim", "tensorboard", "matplotlib", "h5py"} <= runtime
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    for extra in ("examples", "test"):
        assert f'pip install -e ".[{extra}]"' in readme
        assert runtime | {"flask", "flask-wtf", "wtforms"} <= names(extras[extra]), extra
    assert "vermin" in names(extras["test"]) and "mlxtend" in names(extras["examples"])


def test_nested_static_folders_are_packaged(setup_kwargs):
    webapp = setup_kwargs["package_data"]["digits_gan_plugin.webapp"]
    assert "static/*" in webapp and "static/*/*" in webapp
    assert any(p.startswith("templates/*/") for p in setup_kwargs["package_data"]["digits_gan_plugin"])


def test_the_plugin_layer_uses_nothing_newer_than_python_3_8():
    try:
        import vermin  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("vermin is missing (pip install -e '.[test]')")
    run_vermin = "import sys; from vermin.main import main; sys.argv[0] = 'vermin'; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", run_vermin, "--target=3.8-", "--no-tips", "--violations"]
                            + PLUGIN_LAYER, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Analyzing" in result.stdout or "Detecting" in result.stdout


def test_the_plugin_layer_imports_without_tensorflow_flask_or_matplotlib():
    """What DIGITS imports at start-up must not need the [runtime] extra: TensorFlow and
    friends are blocked; the plugins must import and build an inference dataset's items."""
    code = "\n".join([
        "import sys",
        "for name in ('tensorflow', 'tf_slim', 'tensorboard', 'matplotlib', 'h5py', 'flask', 'flask_wtf'):",
        "    sys.modules[name] = None",
        "import view_plugins.gan, digits_gan_plugin.dataset_io",
        "from digits_gan_plugin.data_plugins import mnist, celeba, imagefolder, gaussian, gan_inference",
        "import numpy as np",
        "view = view_plugins.gan.Visualization(None, task='grid')",
        "view.process_data('0', None, {'output': np.zeros((4, 4, 1))})",
        "assert view.get_header_template()[0]",
    ])
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
