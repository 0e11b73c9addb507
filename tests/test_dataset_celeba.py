"""CelebA plugin: JPEGs of known colours + a real-format attribute list read back exactly."""
import os

import lmdb
import numpy as np
import pytest

from conftest import CELEBA_ATTRIBUTES, write_celeba_dir
from digits_gan_plugin.data_plugins.celeba import DataIngestion
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.proto import Datum

COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (200, 200, 40), (30, 160, 220), (120, 60, 90)]


def build(tmp_path, **options):
    return write_dataset(DataIngestion(source=str(tmp_path / "src"), **options), tmp_path / "ds",
                         workers=2, progress=False)


def test_colours_attributes_and_partition(tmp_path):
    partition = [0, 0, 1, 0, 2, 1]
    attributes = np.where(np.random.default_rng(0).random((6, 40)) < 0.5, 1, -1)
    write_celeba_dir(tmp_path / "src", COLOURS, attributes=attributes, partition=partition)
    meta = build(tmp_path)
    assert {stage: m["count"] for stage, m in meta["stages"].items()} == {"train_db": 3, "val_db": 2, "test_db": 1}
    assert meta["stages"]["train_db"]["feature_shape"] == [3, 64, 64]
    assert meta["stages"]["train_db"]["label_shape"] == [1, 1, 40]
    assert meta["label_names"] == CELEBA_ATTRIBUTES and meta["num_classes"] is None

    reader = DatasetReader(tmp_path / "ds")
    for stage, indices in {"train_db": [0, 1, 3], "val_db": [2, 5], "test_db": [4]}.items():
        x, y = reader.read_all(stage)
        assert x.shape == (len(indices), 64, 64, 3) and y.shape == (len(indices), 1, 1, 40)
        for image, label, index in zip(x, y, indices):
            assert np.abs(image.astype(int) - COLOURS[index]).max() <= 4  # JPEG rounding
            np.testing.assert_array_equal(label[0, 0], attributes[index])
    x, _ = reader.read_all("train_db")
    np.testing.assert_allclose(reader.mean("train_db"), x.mean(axis=0), atol=1e-3)

    with lmdb.open(str(tmp_path / "ds" / "train_db" / "features"), readonly=True, lock=False) as env:
        with env.begin() as txn:
            datum = Datum.FromString(txn.get(b"000000000"))
    first_pixel_bgr = np.frombuffer(datum.data, np.uint8).reshape(3, 64, 64)[:, 0, 0]
    assert np.abs(first_pixel_bgr.astype(int) - COLOURS[0][::-1]).max() <= 4  # stored BGR


def test_crop_size_and_max_images_without_partition(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS)
    meta = build(tmp_path, crop=100, size=16, max_images=4, val_fraction=0.25)
    assert meta["stages"]["train_db"]["count"] == 3 and meta["stages"]["val_db"]["count"] == 1
    assert meta["stages"]["train_db"]["feature_shape"] == [3, 16, 16]
    assert meta["userdata"]["size"] == 16 and meta["userdata"]["strict"] is False


def test_unreadable_image_is_skipped_and_reported(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS)
    (tmp_path / "src" / "img_align_celeba" / "000003.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    os.remove(tmp_path / "src" / "img_align_celeba" / "000005.jpg")
    meta = build(tmp_path, val_fraction=0.0)
    assert meta["stages"]["train_db"]["count"] == 4 and meta["stages"]["train_db"]["skipped"] == 2
    assert sorted((tmp_path / "ds" / "skipped.txt").read_text().split()) == ["000003.jpg", "000005.jpg"]


def test_a_stage_with_every_image_skipped_says_why_the_first_was(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS)
    with pytest.raises(DataError, match=r"train_db: none of its \d+ entries could be encoded \(the first: "
                                        r".*\.jpg: image is 178x218, smaller than the 500px crop\)"):
        build(tmp_path, crop=500, val_fraction=0.0)
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_unreadable_image_with_strict_fails_naming_it(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS)
    (tmp_path / "src" / "img_align_celeba" / "000003.jpg").write_text("text, not a JPEG")
    with pytest.raises(DataError, match="000003.jpg: not a readable image"):
        build(tmp_path, strict=True)
    assert sorted(os.listdir(tmp_path)) == ["src"]


def rewrite_attributes(tmp_path, edit):
    path = tmp_path / "src" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize("edit, message", [
    (lambda lines: ["7"] + lines[1:], r"list_attr_celeba.txt: line 1 says 7 images, the file lists 6"),
    (lambda lines: lines[:4] + [lines[4].rsplit(" ", 1)[0]] + lines[5:],
     r"list_attr_celeba.txt: line 5 has 39 attribute values, the header \(line 2\) names 40"),
    (lambda lines: lines[:3] + [lines[3].replace("-1", " 0", 1)] + lines[4:],
     r"list_attr_celeba.txt: line 4: attribute values must be 1 or -1"),
    (lambda lines: ["six"] + lines[1:], r"list_attr_celeba.txt: line 1 must be the number of images"),
])
def test_attribute_list_disagreeing_with_header(tmp_path, edit, message):
    write_celeba_dir(tmp_path / "src", COLOURS)
    rewrite_attributes(tmp_path, edit)
    with pytest.raises(DataError, match=message):
        build(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_missing_attribute_file(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS)
    os.remove(tmp_path / "src" / "list_attr_celeba.txt")
    with pytest.raises(DataError, match="list_attr_celeba.txt: not found"):
        build(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_attribute_rows_parse_in_bulk_like_line_by_line(tmp_path):
    from digits_gan_plugin.data_plugins.celeba import _parse_rows_by_line, read_attributes

    attributes = np.where(np.random.default_rng(1).random((6, 40)) < 0.4, 1, -1)
    write_celeba_dir(tmp_path / "src", COLOURS, attributes=attributes)
    # ragged spacing, a tab, a blank line and a file name containing '1's, as real lists vary
    rewrite_attributes(tmp_path, lambda lines: lines[:3] + [lines[3].replace(" ", "   ", 5) + "  ", "",
                                                            lines[4].replace(" ", "\t", 1)] + lines[5:])
    path = tmp_path / "src" / "list_attr_celeba.txt"
    names, files, values = read_attributes(path)
    lines = path.read_text().splitlines()
    expected_files, expected_values = _parse_rows_by_line(path, [(n, line) for n, line in enumerate(lines[2:], 3)
                                                                 if line.strip()], 40)
    assert names == CELEBA_ATTRIBUTES and files == expected_files == [f"{i:06d}.jpg" for i in range(1, 7)]
    assert values.dtype == np.int8
    np.testing.assert_array_equal(values, attributes)
    np.testing.assert_array_equal(values, expected_values)


@pytest.mark.parametrize("edit, message", [
    # one value short on line 4, one extra on line 5: the total still matches the header
    (lambda lines: lines[:3] + [lines[3].rsplit(" ", 1)[0], lines[4] + "  1"] + lines[5:],
     r"list_attr_celeba.txt: line 4 has 39 attribute values, the header \(line 2\) names 40"),
    (lambda lines: lines[:5] + [lines[5].replace("-1", " x", 1)] + lines[6:],
     r"list_attr_celeba.txt: line 6: attribute values must be 1 or -1"),
    (lambda lines: lines[:2] + [lines[2].replace(" 1", "11", 1)] + lines[3:],
     r"list_attr_celeba.txt: line 3: attribute values must be 1 or -1"),
])
def test_attribute_errors_name_the_line_when_the_bulk_parse_cannot(tmp_path, edit, message):
    write_celeba_dir(tmp_path / "src", COLOURS)
    rewrite_attributes(tmp_path, edit)
    with pytest.raises(DataError, match=message):
        build(tmp_path)


def test_accurate_decode_option(tmp_path):
    write_celeba_dir(tmp_path / "src", COLOURS[:2])
    accurate = build(tmp_path, val_fraction=0.0)
    assert accurate["userdata"]["fast_decode"] is False
    x_accurate, _ = DatasetReader(tmp_path / "ds").read_all("train_db")
    fast = write_dataset(DataIngestion(source=str(tmp_path / "src"), val_fraction=0.0, fast_decode=True),
                         tmp_path / "ds2", workers=1, progress=False)
    assert fast["userdata"]["fast_decode"] is True
    x_fast, _ = DatasetReader(tmp_path / "ds2").read_all("train_db")
    assert np.abs(x_fast.astype(int) - x_accurate.astype(int)).mean() < 1.5
    for image, colour in zip(x_accurate, COLOURS):
        assert np.abs(image.astype(int) - colour).max() <= 4
