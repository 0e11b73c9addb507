"""Image-folder plugin: flat folders (no labels) and class sub-folders, grey or RGB."""
import os

import pytest
from PIL import Image

from digits_gan_plugin.data_plugins.imagefolder import DataIngestion
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.errors import DataError


def build(tmp_path, **options):
    return write_dataset(DataIngestion(source=str(tmp_path / "src"), **options), tmp_path / "ds",
                         workers=2, progress=False)


def write_png(path, colour, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_class_subfolders_become_sorted_labels(tmp_path):
    colours = {"cats": (200, 0, 0), "dogs": (0, 200, 0), "birds": (0, 0, 200)}
    for name, colour in colours.items():
        for index in range(4):
            write_png(tmp_path / "src" / name / f"{index}.png", colour)
    meta = build(tmp_path, size=8, val_fraction=0.25)
    assert meta["label_names"] == ["birds", "cats", "dogs"] and meta["num_classes"] == 3
    assert meta["stages"]["train_db"]["count"] == 9 and meta["stages"]["val_db"]["count"] == 3
    x, y = DatasetReader(tmp_path / "ds").read_all("train_db")
    assert x.shape == (9, 8, 8, 3)
    for image, label in zip(x, y):
        assert (image == colours[meta["label_names"][label]]).all()


def test_flat_folder_grey_without_labels(tmp_path):
    for index, value in enumerate((10, 90, 170)):
        write_png(tmp_path / "src" / f"{index}.png", (value, value, value))
    (tmp_path / "src" / "notes.txt").write_text("ignored: not an image suffix")
    meta = build(tmp_path, size=5, channels="grey", val_fraction=0.0)
    assert meta["stages"]["train_db"]["label_shape"] is None and meta["label_names"] is None
    reader = DatasetReader(tmp_path / "ds")
    x, y = reader.read_all("train_db")
    assert y is None and x.shape == (3, 5, 5, 1)
    assert sorted(x[:, 0, 0, 0].tolist()) == [10, 90, 170]
    assert next(reader.batches("train_db", 2))[1] is None


def test_bad_options_and_inputs(tmp_path):
    with pytest.raises(DataError, match="option channels: 'cmyk' is not one of grey, rgb"):
        DataIngestion(source=str(tmp_path), channels="cmyk")
    with pytest.raises(DataError, match="option source: a value is required"):
        DataIngestion()
    (tmp_path / "src").mkdir()
    with pytest.raises(DataError, match="src: no images"):
        build(tmp_path)
    (tmp_path / "src" / "fake.png").write_text("not a png")
    with pytest.raises(DataError, match="fake.png: not a readable image"):
        build(tmp_path, val_fraction=0.0)
    assert sorted(os.listdir(tmp_path)) == ["src"]
