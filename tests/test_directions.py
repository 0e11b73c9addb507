"""`digits-gan latent directions`: SeFa equals the eigenvectors of the first layer's
z weights read from the checkpoint; GANSpace's first direction moves the first
principal component most; InterFaceGAN boundaries recover a known separating direction
and are fitted per class (one-vs-rest) on a class-labelled dataset;
the .npz feeds `latent attributes`; sweep grids and GIFs; one-line errors; the
measurement benchmark's --quick mode."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.cli import main
from digits_gan_plugin.dataset_io import DatasetReader
from digits_gan_plugin.latent import load_attribute_vectors, read_arrays
from digits_gan_plugin.runtime import directions
from digits_gan_plugin.runtime.export import freeze
from tiny_jobs import tiny_jobs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jobs(tiny_mnist_dataset, tmp_path_factory):
    return tiny_jobs(tmp_path_factory, tiny_mnist_dataset)


@pytest.fixture(scope="module")
def found(jobs, tmp_path_factory):
    """The CLI's directions of the conditional GAN: 3 SeFa + 3 GANSpace, 5 steps x 2 rows."""
    out = tmp_path_factory.mktemp("directions") / "out"
    assert main(["latent", "directions", "--job", str(jobs["gan"]), "--out", str(out), "--count", "3",
                 "--samples", "300", "--steps", "5", "--rows", "2"]) == 0
    return out


def test_sefa_is_the_eigenvectors_of_the_first_layers_z_weights(jobs, found):
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.jobdir import find_checkpoint

    weights = tf.train.load_checkpoint(find_checkpoint(jobs["gan"])).get_tensor("generator/fc1/weights")
    a = weights[:100].astype(np.float64)  # rows of z (the one-hot's 10 rows follow)
    values, vectors = np.linalg.eigh(a @ a.T)
    expected = vectors[:, np.argsort(values)[::-1][:3]].T
    arrays = read_arrays(found / "directions.npz")
    sefa = arrays["vectors"][:3]
    assert list(arrays["names"][:3]) == ["sefa_0", "sefa_1", "sefa_2"]
    np.testing.assert_allclose(np.abs(np.sum(sefa * expected, axis=1)), 1.0, atol=1e-4)  # same up to sign
    assert np.all(np.diff(arrays["score"][:3]) <= 0)


def test_ganspace_first_direction_moves_the_first_component_most(jobs):
    tower = freeze(jobs["simple"])
    layer = directions.FirstLayer(tower)
    try:
        found = directions.ganspace(layer, 3, 500, np.random.default_rng(2))
        z = tower.facts.sample(500, np.random.default_rng(2))  # the samples it drew: the same components
        rng = np.random.default_rng(1)
        activations = layer.run(layer.activation, z)
        _, _, components = np.linalg.svd(activations - activations.mean(axis=0), full_matrices=False)
        random = rng.standard_normal(100)

        def shift_along_pc0(direction):
            direction = direction / np.linalg.norm(direction)
            moved = layer.run(layer.activation, (z + 0.5 * direction).astype(np.float32))
            return abs(np.mean((moved - activations) @ components[0]))

        assert shift_along_pc0(found.vectors[0]) > 3 * shift_along_pc0(random)
    finally:
        layer.close()
    np.testing.assert_allclose(np.linalg.norm(found.vectors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(found.score) <= 0) and found.score.sum() <= 1.0


def test_boundaries_recover_a_separating_direction():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 20))
    truth = rng.standard_normal(20)
    truth /= np.linalg.norm(truth)
    labels = np.stack([np.where(z @ truth > 0.2, 1.0, -1.0), np.ones(400)], axis=1)  # the 2nd: every image has it
    found = directions.fit_boundaries(z, labels, ["Smiling", "Everyone"])
    assert found.names == ["boundary_Smiling", "meandiff_Smiling"]
    assert found.vectors[0] @ truth > 0.95 and found.vectors[1] @ truth > 0.9
    assert found.score[0] > 0.85  # held-out accuracy


def test_boundaries_per_class_from_the_encoder(jobs, tiny_mnist_dataset, tmp_path):
    z, labels, names = directions.labelled_codes(jobs["encoder"], tiny_mnist_dataset)
    _, classes = DatasetReader(tiny_mnist_dataset).read_all("train_db")
    assert z.shape == (200, 100) and names == [f"class_{k}" for k in range(10)]
    np.testing.assert_array_equal(np.argmax(labels[:160], axis=1), classes)  # one-vs-rest: +1 for its class only
    assert np.all(labels.sum(axis=1) == 2 - 10)
    out = tmp_path / "boundary"
    assert main(["latent", "directions", "--job", str(jobs["gan"]), "--out", str(out), "--method", "boundary",
                 "--encoder", str(jobs["encoder"]), "--dataset", str(tiny_mnist_dataset), "--index", "0,10",
                 "--steps", "3", "--rows", "1"]) == 0
    arrays = read_arrays(out / "directions.npz")
    assert list(arrays["names"]) == ["boundary_class_0", "meandiff_class_0"]
    assert list(arrays["method"]) == ["boundary", "meandiff"] and 0 <= arrays["score"][0] <= 1
    np.testing.assert_allclose(np.linalg.norm(arrays["vectors"], axis=1), 1.0, atol=1e-5)


def test_npz_grids_and_gifs(jobs, found, tmp_path, capsys):
    arrays = read_arrays(found / "directions.npz")
    assert list(arrays["names"]) == [f"sefa_{k}" for k in range(3)] + [f"ganspace_{k}" for k in range(3)]
    assert arrays["vectors"].shape == (6, 100) and list(arrays["method"]) == ["sefa"] * 3 + ["ganspace"] * 3
    np.testing.assert_allclose(np.linalg.norm(arrays["vectors"], axis=1), 1.0, atol=1e-5)
    assert set(load_attribute_vectors(found / "directions.npz", 100)) == set(arrays["names"])
    info = json.loads((found / "directions.json").read_text())
    assert [d["name"] for d in info["directions"]] == list(arrays["names"]) and info["extent"] > 0
    grid = np.asarray(Image.open(found / "sefa_0.png"))
    assert grid.shape[:2] == (2 * 30 + 2, 5 * 30 + 2)  # rows x steps
    with Image.open(found / "ganspace_1.gif") as gif:
        assert gif.n_frames == 2 * 5 - 2  # forth and back
    # `latent attributes` edits along a direction
    out = tmp_path / "edit"
    assert main(["latent", "attributes", "--job", str(jobs["gan"]), "--attributes-file", str(found / "directions.npz"),
                 "--coefficients", "sefa_0=2 | ganspace_0=-2", "--steps", "3", "--out", str(out), "--quiet"]) == 0
    assert DatasetReader(out).count("test_db") == 2 * 3


def test_index_selection_and_unconditional_job(jobs, tmp_path):
    out = tmp_path / "simple"
    assert main(["latent", "directions", "--job", str(jobs["simple"]), "--out", str(out), "--method", "sefa",
                 "--count", "4", "--index", "1,3", "--steps", "3", "--rows", "1"]) == 0
    arrays = read_arrays(out / "directions.npz")
    assert list(arrays["names"]) == ["sefa_1", "sefa_3"]
    assert sorted(path.name for path in out.glob("*.png")) == ["sefa_1.png", "sefa_3.png"]


@pytest.mark.parametrize("argv, expected", [
    (["--method", "sefa", "--count", "2", "--index", "5"], "--index 5: out of range, expected 0..1"),
    (["--method", "pca"], "--method pca: expected one of sefa, ganspace, boundary"),
    (["--method", "boundary"], "--method boundary needs --encoder JOBDIR and --dataset DIR"),
    (["--steps", "1"], "--steps 1: expected an integer >= 2"),
])
def test_bad_input_one_line_exit_2(jobs, tmp_path, capsys, argv, expected):
    assert main(["latent", "directions", "--job", str(jobs["simple"]), "--out", str(tmp_path / "out"), *argv]) == 2
    message = capsys.readouterr().err.strip()
    assert expected in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_benchmark_quick_mode(jobs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIGITS_GAN_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("direction_effects", ROOT / "benchmarks" / "direction_effects.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    rows = benchmark.main(["--quick", "--gan-job", str(jobs["gan"]), "--steps", "5"])
    assert [row[0] for row in rows] == ["sefa_0", "sefa_1", "ganspace_0", "ganspace_1"]
    assert all(-1 <= row[2] <= 1 and -1 <= row[3] <= 1 and 0 <= row[4] <= 1 for row in rows)
    assert "slant r" in capsys.readouterr().out
    # the measures themselves: a right-leaning bar has a positive slant, more ink more mass
    bar = np.zeros((1, 28, 28, 1), np.uint8)
    for row in range(28):
        bar[0, row, 14 + (14 - row) // 3, 0] = 255
    assert benchmark.slant(bar)[0] > 0.2 and benchmark.slant(bar[:, :, ::-1])[0] < -0.2
    assert benchmark.ink_mass(np.full((1, 4, 4, 1), 255, np.uint8))[0] == 1.0


def test_more_directions_than_z_has_dimensions_are_capped_with_a_note(jobs, tmp_path, capsys):
    z_dim = freeze(jobs["simple"]).facts.z_dim
    out = tmp_path / "many"
    assert main(["latent", "directions", "--job", str(jobs["simple"]), "--out", str(out), "--count", "99999999",
                 "--samples", "300", "--steps", "2", "--rows", "1"]) == 0
    assert (f"--count 99999999: a {z_dim}-dimensional z has at most {z_dim} directions per method; "
            f"finding {z_dim}") in capsys.readouterr().err
    names = list(read_arrays(out / "directions.npz")["names"])
    assert len(names) <= 2 * z_dim and sum(name.startswith("ganspace") for name in names) <= z_dim
