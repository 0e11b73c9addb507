"""`digits-gan latent project`: Adam on z lowers the reconstruction error, never ends
worse than its start (the encoder's z), keeps z in the model's distribution, writes a
z file that `digits-gan infer --z` turns into the same reconstruction; class search;
wrong-size images resized with a warning or refused; the benchmark's --quick mode."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.cli import main
from digits_gan_plugin.dataset_io import DatasetReader
from digits_gan_plugin.imaging import save_png
from digits_gan_plugin.jobdir import InferenceResult
from digits_gan_plugin.latent import read_arrays
from digits_gan_plugin.runtime.export import freeze
from digits_gan_plugin.runtime.projector import (DiscriminatorFeatures, JudgeFeatures, Projector, ProjectorSettings,
                                                 encoder_start)
from tiny_jobs import tiny_jobs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jobs(tiny_mnist_dataset, tmp_path_factory):
    return tiny_jobs(tmp_path_factory, tiny_mnist_dataset)


@pytest.fixture(scope="module")
def digits(tiny_mnist_dataset):
    """Four held-out digits (uint8 4,28,28,1) and their labels."""
    images, labels = DatasetReader(tiny_mnist_dataset).read_all("val_db")
    return images[:4], np.asarray(labels[:4])


@pytest.fixture(scope="module")
def gan_tower(jobs):
    return freeze(jobs["gan"])


@pytest.fixture(scope="module")
def projector(gan_tower):
    return Projector(gan_tower, ProjectorSettings(steps=8, search_steps=2, learning_rate=0.1))


def pixel_mse(images, targets):
    return np.mean(np.square(images / 255.0 - targets / 255.0), axis=(1, 2, 3))


def test_projection_lowers_the_error_and_keeps_z_in_range(projector, digits):
    targets, labels = digits
    projection = projector.project(targets, labels=labels, z=np.zeros((4, 100)))
    assert projection.z.shape == (4, 100) and projection.vectors.shape == (4, 110)
    assert np.all(np.abs(projection.z) <= 1.0)  # uniform z: U(-1, 1)
    at_zero = pixel_mse(projection.frames[0], targets)  # the first snapshot: z = 0
    assert np.all(projection.mse <= at_zero) and projection.mse.mean() < at_zero.mean()
    np.testing.assert_allclose(projection.mse, pixel_mse(projection.reconstructions, targets), atol=1e-12)
    assert len(projection.frames) >= 2  # snapshots for the GIF


def test_class_search_picks_a_class_per_image(projector, digits):
    targets, _ = digits
    projection = projector.project(targets)
    assert projection.labels.shape == (4,) and projection.labels.dtype == np.int64
    assert np.all((projection.labels >= 0) & (projection.labels < 10))
    np.testing.assert_array_equal(projection.vectors[:, 100:], np.eye(10)[projection.labels])


def test_encoder_start_is_never_made_worse(jobs, projector, digits):
    targets, _ = digits
    z, classes, encoded = encoder_start(jobs["encoder"], targets)
    projection = projector.project(targets, z=z, labels=classes)
    encoder_mse = pixel_mse(encoded, targets)
    assert np.all(projection.mse <= encoder_mse + 1e-6)
    np.testing.assert_array_equal(projection.labels, classes)


def test_project_command_writes_a_z_file_infer_reproduces(jobs, digits, tmp_path, capsys):
    targets, labels = digits
    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(targets):
        save_png(image, folder / f"digit{index}.png")
    out = tmp_path / "projection"
    assert main(["latent", "project", str(folder), "--job", str(jobs["gan"]), "--encoder", str(jobs["encoder"]),
                 "--steps", "5", "--out", str(out)]) == 0
    assert "s per image" in capsys.readouterr().out
    arrays = read_arrays(out / "z.npz")
    assert arrays["z"].shape == (4, 110) and arrays["latent"].shape == (4, 100) and arrays["labels"].shape == (4,)
    info = json.loads((out / "projection.json").read_text())
    assert info["start"] == "encoder" and len(info["mse"]) == 4 and info["seconds_per_image"] > 0
    with Image.open(out / "optimisation.gif") as gif:
        assert gif.n_frames >= 2
    grid = np.asarray(Image.open(out / "reconstruction.png"))
    assert grid.shape[:2] == (2 * 30 + 2, 4 * 30 + 2)  # targets above reconstructions
    assert main(["infer", "--job", str(jobs["gan"]), "--z", str(out / "z.npz"), "--out", str(tmp_path / "r")]) == 0
    reconstructions = InferenceResult(tmp_path / "r").images
    np.testing.assert_allclose(pixel_mse(reconstructions, targets), info["mse"], atol=1e-12)


def test_wrong_size_images_are_resized_with_a_warning_or_refused(jobs, tmp_path, capsys):
    Image.new("RGB", (40, 36), (200, 200, 200)).save(tmp_path / "big.png")
    out = tmp_path / "out"
    assert main(["latent", "project", str(tmp_path / "big.png"), "--job", str(jobs["simple"]), "--steps", "2",
                 "--out", str(out)]) == 0
    assert "36x40x3 (RGB) converted to 28x28x1" in capsys.readouterr().err
    assert read_arrays(out / "z.npz")["z"].shape == (1, 100)  # unconditional: z only
    assert main(["latent", "project", str(tmp_path / "big.png"), "--job", str(jobs["simple"]), "--no-resize",
                 "--out", str(tmp_path / "refused")]) == 2
    message = capsys.readouterr().err.strip()
    assert "big.png: image is 36x40x3, the model expects 28x28x1" in message and "\n" not in message
    Image.new("RGB", (28, 28), (9, 9, 9)).save(tmp_path / "colour.png")  # right size, 3 channels
    assert main(["latent", "project", str(tmp_path / "colour.png"), "--job", str(jobs["simple"]), "--steps", "1",
                 "--out", str(tmp_path / "colour")]) == 0
    assert "28x28x3 (RGB) converted to 28x28x1" in capsys.readouterr().err
    (tmp_path / "text.png").write_text("not an image")
    assert main(["latent", "project", str(tmp_path / "text.png"), "--job", str(jobs["simple"]),
                 "--out", str(tmp_path / "bad")]) == 2
    assert "text.png: not a readable image" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--label", "3"], "needs a class-conditional model"),
    (["--steps", "0"], "--steps 0"),
    (["--search-steps", "5", "--steps", "5"], "--search-steps 5"),
])
def test_bad_options_one_line_exit_2(jobs, tmp_path, capsys, argv, expected):
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    assert main(["latent", "project", str(tmp_path / "a.png"), "--job", str(jobs["simple"]), "--out",
                 str(tmp_path / "out"), *argv]) == 2
    message = capsys.readouterr().err.strip()
    assert expected in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_missing_image_and_class_out_of_range(jobs, tmp_path, capsys):
    assert main(["latent", "project", str(tmp_path / "none.png"), "--job", str(jobs["gan"]), "--out",
                 str(tmp_path / "o")]) == 2
    assert "none.png: no such image file or folder" in capsys.readouterr().err
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    assert main(["latent", "project", str(tmp_path / "a.png"), "--job", str(jobs["gan"]), "--label", "10",
                 "--out", str(tmp_path / "o")]) == 2
    assert "class is 10, expected 0..9" in capsys.readouterr().err


def test_perceptual_term_with_the_judge(jobs, gan_tower, digits, tiny_mnist_dataset, tmp_path, monkeypatch):
    from digits_gan_plugin import evaluation

    monkeypatch.setenv("DIGITS_GAN_CACHE", str(tmp_path / "cache"))
    judge = evaluation.load_or_train_classifier(tiny_mnist_dataset, evaluation.QUICK_CLASSIFIER, progress=False)
    targets, labels = digits
    settings = ProjectorSettings(steps=4, perceptual_weight=1.0)
    projection = Projector(gan_tower, settings, JudgeFeatures(judge, gan_tower.facts)).project(targets, labels=labels)
    assert np.all(np.isfinite(projection.mse)) and projection.z.shape == (4, 100)


def test_discriminator_features_are_ds_activations_on_the_image(jobs, gan_tower, digits):
    import tensorflow as tf

    features = DiscriminatorFeatures(jobs["gan"])
    assert len(features.names) == 2 and all("discriminator" in name for name in features.names)  # conv1, conv2
    targets, labels = digits
    images, classes = tf.constant(targets.astype(np.float32)), tf.constant(labels.astype(np.int64))
    first, second = features(images, classes)
    assert first.shape[:3] == (4, 14, 14) and second.shape[:3] == (4, 7, 7)
    again = features(images, classes)[1].numpy()
    np.testing.assert_array_equal(second.numpy(), again)  # deterministic: no random op, no batch statistics
    assert not np.allclose(features(images, tf.constant((labels + 1) % 10))[1].numpy(), again)  # D reads the class
    settings = ProjectorSettings(steps=4, perceptual_weight=1.0, perceptual="discriminator")
    projection = Projector(gan_tower, settings, features).project(targets, labels=labels)
    assert np.all(np.isfinite(projection.mse))


def test_discriminator_features_of_a_model_without_one(jobs):
    from digits_gan_plugin.errors import ModelDefinitionError

    with pytest.raises(ModelDefinitionError, match="no 4-D activations of the discriminator"):
        DiscriminatorFeatures(jobs["encoder"])


def test_benchmark_quick_mode(jobs, tiny_mnist_dataset, capsys):
    spec = importlib.util.spec_from_file_location("projector_quality", ROOT / "benchmarks" / "projector_quality.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    results = benchmark.main(["--quick", "--gan-job", str(jobs["gan"]), "--encoder-job", str(jobs["encoder"])])
    assert list(results) == ["encoder alone", "projector alone", "encoder + projector"]
    assert results["encoder + projector"]["mse"] <= results["encoder alone"]["mse"] + 1e-6
    printed = capsys.readouterr().out
    assert "encoder + projector vs encoder alone" in printed and "s/image" in printed
