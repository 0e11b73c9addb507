"""One listing of labelled images (imaging.list_labelled_images) behind the imagefolder
and mnist plugins and encode-list: folder names -> class ids, one suffix list."""
import json

import numpy as np
import pytest

from digits_gan_plugin import jobdir, latent
from digits_gan_plugin.data_plugins import available_plugins
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.imaging import IMAGE_SUFFIXES, list_labelled_images, save_png


def image(path, value=100):
    save_png(np.full((6, 6, 3), value, np.uint8), path)


def test_names_sorted_numbers_by_value_and_top_level_images(tmp_path):
    for name in ("dogs", "cats"):
        image(tmp_path / "pets" / name / "a.png")
    image(tmp_path / "pets" / "loose.png")
    (tmp_path / "pets" / "empty").mkdir()
    paths, labels, names = list_labelled_images(str(tmp_path / "pets"))
    assert names == ["cats", "dogs"] and labels == [-1, 0, 1]
    assert paths[0].endswith("loose.png")
    for name in ("2", "10", "0"):
        image(tmp_path / "digits" / name / "a.png")
    _, labels, names = list_labelled_images(str(tmp_path / "digits"))
    assert labels == [0, 2, 10] and names[10] == "10" and len(names) == 11


def test_given_class_names_and_an_unknown_folder(tmp_path):
    image(tmp_path / "pets" / "dogs" / "a.png")
    _, labels, names = list_labelled_images(str(tmp_path / "pets"), ["cats", "dogs"])
    assert labels == [1] and names == ["cats", "dogs"]
    with pytest.raises(DataError, match="dogs: sub-folder is not one of the classes birds"):
        list_labelled_images(str(tmp_path / "pets"), ["birds"])
    with pytest.raises(DataError, match="image folder not found"):
        list_labelled_images(str(tmp_path / "missing"))


def test_one_suffix_list_for_every_caller():
    import inspect

    assert not hasattr(latent, "IMAGE_EXTENSIONS") and ".tif" in IMAGE_SUFFIXES
    assert "list_labelled_images" in inspect.getsource(latent.list_images)


def test_a_set_trained_from_cats_and_dogs_is_encoded_with_its_classes(tmp_path):
    """dataset.json keeps the class names; encode-list maps folder names through them."""
    for name in ("dogs", "cats"):
        for index in range(2):
            image(tmp_path / "train" / name / f"{index}.png", 40 + index)
    meta = write_dataset(available_plugins()["imagefolder"](source=str(tmp_path / "train"), size=6),
                         tmp_path / "ds", workers=1, progress=False)
    assert meta["label_names"] == ["cats", "dogs"]
    job = tmp_path / "job"
    job.mkdir()
    model = {"z_dim": None, "num_classes": 2, "conditional": True, "input_shape": [6, 6, 3],
             "class_names": meta["label_names"]}
    (job / "config.json").write_text(json.dumps({"dataset": str(tmp_path / "ds"), "model": model}))
    image(tmp_path / "new" / "dogs" / "x.png")  # only dogs to encode: still class 1
    batch = latent.run_task("encode-list", jobdir.read_model_facts(str(job)), seed=0, folder=str(tmp_path / "new"))
    assert batch.image_labels == [1]
