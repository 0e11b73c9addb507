"""The GAN inference data plugin and `digits-gan latent`: inference datasets on disk."""
import json

import jinja2
import numpy as np
import pytest

from digits_gan_plugin import cli
from digits_gan_plugin.data_plugins import available_plugins
from digits_gan_plugin.data_plugins.gan_inference import DataIngestion
from digits_gan_plugin.dataset_io import DatasetReader
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.imaging import save_png
from digits_gan_plugin import jobdir
from digits_gan_plugin.latent import run_task


def make_job(folder, z_dim=5, num_classes=3, conditional=True, input_shape=(8, 8, 1)):
    folder.mkdir(parents=True, exist_ok=True)
    model = {"network": "network-test.py", "z_dim": z_dim, "num_classes": num_classes,
             "conditional": conditional, "input_shape": list(input_shape)}
    (folder / "config.json").write_text(json.dumps({"dataset": "unused", "model": model}))
    return str(folder)


def test_cli_writes_the_task_vectors_as_a_test_db(tmp_path, capsys):
    job = make_job(tmp_path / "job")
    out = tmp_path / "sweep"
    assert cli.main(["latent", "class-sweep", "--job", job, "--rows", "4", "--seed", "11",
                     "--out", str(out), "--quiet"]) == 0
    assert "12 vectors (grid 4x3, 4 frames, seed 11)" in capsys.readouterr().out
    reader = DatasetReader(str(out))
    x, y = reader.read_all("test_db")
    assert reader.stages == ["test_db"] and y is None
    assert x.shape == (12, 1, 5 + 3, 1) and x.dtype == np.float32  # DIGITS' (1, 1, D) items
    expected = run_task("class-sweep", jobdir.read_model_facts(job), seed=11, rows=4).vectors
    np.testing.assert_array_equal(x.reshape(12, -1), expected)
    latent = reader.meta["latent"]
    assert (latent["task"], latent["grid"], latent["seed"], latent["z_dim"], latent["num_classes"]) == \
        ("class-sweep", [4, 3], 11, 5, 3)
    assert latent["job"] == job


def test_cli_reports_bad_vectors_and_exits_2(tmp_path, capsys):
    job = make_job(tmp_path / "job")
    code = cli.main(["latent", "single", "--job", job, "--z", "[0.1, 0.2, abc, 0.4, 0.5]",
                     "--out", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.strip() == "digits-gan: error: z: 'abc' at position 3 is not a number"
    assert not (tmp_path / "out").exists()


def test_encode_list_writes_images_of_the_job_shape(tmp_path):
    job = make_job(tmp_path / "job", z_dim=None, input_shape=(8, 8, 3), conditional=False, num_classes=None)
    folder = tmp_path / "faces"
    for index in range(3):
        save_png(np.full((12, 16, 3), 40 * index + 10, np.uint8), folder / f"{index:06d}.png")
    out = tmp_path / "encode"
    assert cli.main(["latent", "encode-list", "--job", job, "--folder", str(folder), "--max-count", "2",
                     "--out", str(out), "--quiet"]) == 0
    x, _ = DatasetReader(str(out)).read_all("test_db")
    assert x.shape == (2, 8, 8, 3) and x.dtype == np.uint8
    assert x[1, 0, 0].tolist() == [50, 50, 50]


def test_plugin_is_registered_and_its_form_covers_every_task_option():
    assert available_plugins()["gan-inference"] is DataIngestion
    form = DataIngestion.get_dataset_form()
    names = {field.name for field in form}
    assert {"job", "task", "seed", "z", "zs", "source", "coefficients", "celeba_list"} <= names
    assert form.zs.widget.__class__.__name__ == "TextArea"
    template, context = DataIngestion.get_inference_template(form)
    html = jinja2.Template(template).render(**context)
    assert 'value="analogy"' in html and "textarea" in html


def test_plugin_needs_a_job_with_a_config(tmp_path):
    with pytest.raises(DataError, match="job"):
        DataIngestion(task="single")
    with pytest.raises(DataError, match="config.json"):
        DataIngestion(job=str(tmp_path), task="single")


def test_plugin_records_a_drawn_seed_and_only_fills_test_db(tmp_path):
    plugin = DataIngestion(job=make_job(tmp_path / "job", conditional=False, num_classes=None),
                           task="animation", count="3", transitions="2")
    assert plugin.itemize_entries("train_db") == []
    assert plugin.itemize_entries("test_db") == list(range(6))
    seed = plugin.latent_meta()["seed"]
    assert isinstance(seed, int) and plugin.get_user_data()["latent"]["seed"] == seed
    feature, label = plugin.encode_entry(5)
    assert feature.shape == (1, 1, 5) and feature.dtype == np.float32 and label.tolist() == [0]
