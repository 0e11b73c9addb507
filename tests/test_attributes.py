"""`digits-gan attributes`: per-attribute mean z with - without, checked against hand-computed
means of a tiny encoder job's z's; the .npz is what the `attributes` latent task reads;
TensorBoard projector files; one-line errors on bad input."""
import numpy as np
import pytest

from digits_gan_plugin import latent
from digits_gan_plugin.attributes import attribute_vectors, attributes_command
from digits_gan_plugin.cli import main
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.digits_api import DataIngestionInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.runtime.inference import load_generator
from digits_gan_plugin.runtime.trainer import TrainOptions, train

NAMES = ["Smiling", "Male", "Young"]


class TinyFaces(DataIngestionInterface):
    """10 train / 4 val random 3x16x16 images; labels 1x1x3 of +-1: Smiling and Male
    random, Young +1 for every image (so it has no 'without' side)."""

    label_names = NAMES

    @staticmethod
    def get_id():
        return "tiny-faces-attributes"

    def itemize_entries(self, stage):
        return {"train_db": list(range(10)), "val_db": list(range(10, 14))}.get(stage, [])

    def encode_entry(self, entry):
        rng = np.random.default_rng(entry)
        labels = np.array([rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0]), 1.0], np.float32)
        return rng.integers(0, 256, (3, 16, 16)).astype(np.uint8), labels.reshape(1, 1, 3)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """(dataset, encoder job): network-celebA-encoder trained one step (no GAN weights needed)."""
    root = tmp_path_factory.mktemp("attributes")
    write_dataset(TinyFaces(), root / "dataset", workers=1, progress=False)
    options = TrainOptions(dataset=str(root / "dataset"), network="network-celebA-encoder", epochs=1,
                           batch_size=8, max_steps=1, seed=0, threads=2)
    train(options, root / "encoder", progress=False)
    return root / "dataset", root / "encoder"


def hand_computed(dataset, encoder_job):
    """(z N x z_dim, labels N x 3) of train_db then val_db, encoded one image at a time."""
    reader = DatasetReader(dataset)
    images, labels = zip(*(reader.read_all(stage) for stage in ("train_db", "val_db")))
    images, labels = np.concatenate(images), np.concatenate(labels).reshape(-1, 3)
    with load_generator(encoder_job) as encoder:
        z = np.concatenate([encoder.run(image[None])["z"] for image in images])
    return z.astype(np.float64), labels


def test_attribute_vectors_match_hand_computed_means(faces, tmp_path):
    dataset, encoder_job = faces
    out = tmp_path / "vectors.npz"
    result, npz_path, projector = attributes_command(encoder_job, dataset, out=out, embed=5, progress=False)
    assert npz_path == out and result.skipped == ["Young"]
    z, labels = hand_computed(dataset, encoder_job)
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["count_with", "count_without", "names", "skipped", "vectors"]
        assert list(archive["names"]) == ["Smiling", "Male"] and list(archive["skipped"]) == ["Young"]
        vectors = archive["vectors"]
        assert vectors.shape == (2, 100) and vectors.dtype == np.float32
        for row, column in enumerate((0, 1)):
            with_it, without = z[labels[:, column] > 0], z[labels[:, column] < 0]
            np.testing.assert_allclose(vectors[row], with_it.mean(0) - without.mean(0), rtol=1e-4, atol=1e-5)
            assert archive["count_with"][row] == len(with_it) and archive["count_without"][row] == len(without)
    # The latent `attributes` task reads the file as written.
    loaded = latent.load_attribute_vectors(str(out), 100)
    assert sorted(loaded) == ["Male", "Smiling"]
    np.testing.assert_array_equal(loaded["Smiling"], vectors[0])

    assert projector == tmp_path / "vectors_projector"
    embedded = np.loadtxt(projector / "vectors.tsv", delimiter="\t")
    np.testing.assert_allclose(embedded, z[:5], rtol=1e-5, atol=1e-6)
    metadata = (projector / "metadata.tsv").read_text().splitlines()
    assert metadata[0].split("\t") == ["index"] + NAMES and len(metadata) == 6
    assert [float(v) for v in metadata[3].split("\t")[1:]] == list(labels[2])
    config = (projector / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "vectors.tsv"' in config and 'metadata_path: "metadata.tsv"' in config


def test_max_images_and_no_embedding(faces, tmp_path):
    dataset, encoder_job = faces
    result, npz_path, projector = attributes_command(encoder_job, dataset, out=tmp_path / "a.npz", embed=0,
                                                     max_images=12, progress=False)
    assert projector is None and not (tmp_path / "a_projector").exists()
    assert all(w + wo == 12 for w, wo in zip(result.count_with, result.count_without))


def test_attribute_vectors_math():
    z = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    labels = np.array([[1, -1], [1, -1], [-1, -1]])
    result = attribute_vectors(z, labels, ["a", "b"])
    assert result.names == ["a"] and result.skipped == ["b"]
    np.testing.assert_allclose(result.vectors[0], [2.0 - 5.0, 1.0 - 4.0])


def test_bad_inputs_give_one_line_errors(faces, tiny_mnist_dataset, tmp_path, capsys):
    dataset, encoder_job = faces
    with pytest.raises(DataError, match="expected a path ending in .npz"):
        attributes_command(encoder_job, dataset, out=tmp_path / "vectors.pkl")
    with pytest.raises(DataError, match="--embed -1"):
        attributes_command(encoder_job, dataset, embed=-1)
    with pytest.raises(DataError, match="has no attribute labels"):
        attributes_command(encoder_job, tiny_mnist_dataset, out=tmp_path / "x.npz")
    assert main(["attributes", "--encoder-job", str(encoder_job), "--dataset", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("digits-gan: error:") and "\n" not in error


def test_batch_size_and_unwritable_out_are_one_line(faces, tmp_path, capsys):
    dataset, encoder_job = faces
    with pytest.raises(DataError, match="--batch-size 0: expected an integer >= 1"):
        attributes_command(encoder_job, dataset, batch_size=0)
    (tmp_path / "a-file").write_text("")
    assert main(["attributes", "--encoder-job", str(encoder_job), "--dataset", str(dataset),
                 "--out", str(tmp_path / "a-file" / "vectors.npz"), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert "a-file" in error and "cannot write the attribute vectors" in error and "\n" not in error


def test_written_vectors_are_finite_and_read_back(faces, tmp_path):
    dataset, encoder_job = faces
    result, out, _ = attributes_command(encoder_job, dataset, out=tmp_path / "v.npz", embed=0, progress=False)
    loaded = latent.load_attribute_vectors(out, result.vectors.shape[1])
    assert list(loaded) == result.names and all(np.isfinite(v).all() for v in loaded.values())
