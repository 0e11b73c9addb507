"""The shipped synthetic data plugin: deterministic small sets for smoke runs and tests."""
import numpy as np
import pytest

from digits_gan_plugin import cli
from digits_gan_plugin.data_plugins.synthetic import DataIngestion
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.errors import DataError


def read(tmp_path, name, workers=1, **options):
    write_dataset(DataIngestion(**options), tmp_path / name, workers=workers, progress=False)
    return DatasetReader(tmp_path / name)


def test_same_seed_same_set_with_any_worker_count(tmp_path):
    one = read(tmp_path, "one", classes=4, channels=3, size=6, train_count=40, seed=3)
    two = read(tmp_path, "two", workers=2, classes=4, channels=3, size=6, train_count=40, seed=3)
    other = read(tmp_path, "other", classes=4, channels=3, size=6, train_count=40, seed=4)
    for stage in ("train_db", "val_db"):
        for a, b in zip(one.read_all(stage), two.read_all(stage)):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one.read_all("train_db")[0], other.read_all("train_db")[0])
    x, y = one.read_all("train_db")
    assert x.shape == (40, 6, 6, 3) and y.tolist() == [index % 4 for index in range(40)]
    assert one.num_classes == 4 and one.label_names == ["0", "1", "2", "3"]


def test_patterns_labels_and_names(tmp_path):
    ramp = read(tmp_path, "ramp", pattern="ramp", step=30, train_count=10, val_count=0)
    x, y = ramp.read_all("train_db")
    assert y is None and [int(image[0, 0, 0]) for image in x] == [(30 * i) % 256 for i in range(10)]
    assert (x == x[:, :1, :1]).all()  # flat images
    faces = read(tmp_path, "faces", attributes=3, names="Smiling,Male,Young", test_count=2)
    assert faces.label_shape("train_db") == [1, 1, 3] and faces.label_names == ["Smiling", "Male", "Young"]
    assert set(np.unique(faces.read_all("test_db")[1])) <= {-1.0, 1.0}
    classes = read(tmp_path, "classes", pattern="classes", classes=2, train_count=20)
    x, y = classes.read_all("train_db")
    assert x[y == 0].max() < x[y == 1].min()  # class 1 is brighter than class 0


def test_bad_options(tmp_path):
    with pytest.raises(DataError, match="give one of them"):
        DataIngestion(classes=2, attributes=2)
    with pytest.raises(DataError, match="option names: 1 names for 2 classes"):
        DataIngestion(classes=2, names="cat")
    with pytest.raises(DataError, match="option pattern"):
        DataIngestion(pattern="stripes")


def test_cli_smoke_run(tmp_path, capsys):
    out = tmp_path / "smoke"
    assert cli.main(["dataset", "create", "synthetic", "--size", "16", "--channels", "3", "--classes", "10",
                     "--out", str(out), "--quiet"]) == 0
    assert "train_db: 64 entries, feature 3x16x16 uint8" in capsys.readouterr().out
    assert DatasetReader(out).meta["plugin_id"] == "synthetic"
