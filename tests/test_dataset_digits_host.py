"""Every data plugin driven the way DIGITS drives it (tests/digits_host/writer.py), and
the datasets DIGITS writes opened by this project's reader (no dataset.json)."""
import json
import os

import numpy as np
import pytest
from conftest import TINY_GAN, write_celeba_dir, write_mnist_idx_dir

from digits_gan_plugin import cli, latent
from digits_gan_plugin.data_plugins import available_plugins, class_label, no_label
from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.imaging import save_png
from digits_host.writer import create_generic_db, model_page_inference


def imagefolder_source(folder, classes=("cats", "dogs")):
    for class_index, name in enumerate(classes):
        for index in range(3):
            save_png(np.full((10, 12, 3), 40 * class_index + 10 * index, np.uint8), folder / name / f"{index}.png")
    return folder


def gan_job(folder, z_dim=4, num_classes=3):
    folder.mkdir(parents=True)
    model = {"z_dim": z_dim, "num_classes": num_classes, "conditional": True, "input_shape": [8, 8, 1]}
    (folder / "config.json").write_text(json.dumps({"dataset": "unused", "model": model}))
    return str(folder)


def plugin_cases(tmp_path):
    """(plugin id, options) of every shipped data plugin, with small sources."""
    write_mnist_idx_dir(tmp_path / "mnist", train_count=12, val_count=4)
    write_celeba_dir(tmp_path / "celeba", [(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90)])
    imagefolder_source(tmp_path / "pets")
    for index in range(4):
        save_png(np.full((9, 9, 3), 50 * index, np.uint8), tmp_path / "flat" / f"{index}.png")
    return [
        ("mnist", {"source": str(tmp_path / "mnist")}),
        ("celeba", {"source": str(tmp_path / "celeba"), "size": 16, "crop": 100, "val_fraction": 0.25}),
        ("imagefolder", {"source": str(tmp_path / "pets"), "size": 8, "val_fraction": 0.3}),
        ("imagefolder", {"source": str(tmp_path / "flat"), "size": 8, "channels": "grey", "val_fraction": 0.3}),
        ("gaussian", {"train_count": 10, "val_count": 3}),
        ("gan-inference", {"job": gan_job(tmp_path / "job"), "task": "class-sweep", "rows": 2, "seed": 1}),
        ("synthetic", {"classes": 3, "channels": 3, "train_count": 9, "val_count": 3}),
        ("synthetic", {"attributes": 5, "train_count": 6, "val_count": 2}),
        ("synthetic", {"train_count": 6, "val_count": 0, "pattern": "ramp", "step": 20}),
    ]


def test_every_plugin_gives_what_the_digits_writer_accepts_and_the_reader_opens_it(tmp_path):
    for number, (plugin_id, options) in enumerate(plugin_cases(tmp_path)):
        plugin_class = available_plugins()[plugin_id]
        ours = tmp_path / f"ours{number}"
        theirs = tmp_path / f"digits{number}"
        write_dataset(plugin_class(**options), ours, workers=1, progress=False)
        # One DIGITS job: the class built from the stored userdata, as create_generic_db does.
        userdata = plugin_class(**options).get_user_data()
        create_generic_db(plugin_class(**userdata), str(theirs), num_threads=1, feature_encoding="none")
        assert not (theirs / "dataset.json").exists()
        ours_reader, digits_reader = DatasetReader(ours), DatasetReader(theirs)
        assert digits_reader.stages == ours_reader.stages, plugin_id
        for stage in ours_reader.stages:
            assert digits_reader.count(stage) == ours_reader.count(stage)
            assert digits_reader.label_shape(stage) == ours_reader.label_shape(stage), (plugin_id, options)
            x_ours, y_ours = ours_reader.read_all(stage)
            x_digits, y_digits = digits_reader.read_all(stage)
            np.testing.assert_array_equal(x_digits, x_ours, err_msg=plugin_id)
            if y_ours is None:
                assert y_digits is None
            else:
                np.testing.assert_array_equal(y_digits, y_ours, err_msg=plugin_id)


def test_digits_writer_rejects_the_labels_digits_rejects(tmp_path):
    """The emulation is as strict as DIGITS: a 0-d scalar or None label fails there."""
    class Bad:
        def __init__(self, label):
            self.label = label

        def itemize_entries(self, stage):
            return [0] if stage == "train_db" else []

        def encode_entry(self, entry):
            return np.zeros((1, 2, 2), np.uint8), self.label

    for label, error in ((np.int64(3), "IndexError"), (None, "AttributeError"), (np.zeros(2), "ValueError")):
        with pytest.raises(RuntimeError, match=error):
            create_generic_db(Bad(label), str(tmp_path / str(error)))
    create_generic_db(Bad(class_label(3)), str(tmp_path / "ok"))
    create_generic_db(Bad(no_label()), str(tmp_path / "ok_unlabelled"))


def test_threads_keys_bgr_and_png_as_digits_writes_them(tmp_path):
    plugin_class = available_plugins()["synthetic"]
    options = {"classes": 4, "channels": 3, "train_count": 20, "val_count": 0, "size": 4}
    ours = tmp_path / "ours"
    write_dataset(plugin_class(**options), ours, workers=1, progress=False)
    x_ours, y_ours = DatasetReader(ours).read_all("train_db")
    for encoding in ("none", "png"):
        out = tmp_path / encoding
        written = create_generic_db(plugin_class(**options), str(out), batch_size=3, num_threads=3,
                                    feature_encoding=encoding)
        assert written["train_db"] == [b"%09d" % index for index in range(20)]
        reader = DatasetReader(out)
        assert reader.meta["encoding"] == encoding and reader.num_classes == 4
        x, y = reader.read_all("train_db")
        # Arrival order is not entry order with several threads: compare as sets of items.
        ours_items = sorted((x_ours[i].tobytes(), int(y_ours[i])) for i in range(20))
        assert sorted((x[i].tobytes(), int(y[i])) for i in range(20)) == ours_items
        np.testing.assert_allclose(reader.mean("train_db"), np.around(x_ours.mean(axis=0)), atol=0)


def test_dataset_info_opens_a_dataset_digits_wrote(tmp_path, capsys):
    write_mnist_idx_dir(tmp_path / "mnist", train_count=20, val_count=10)
    plugin_class = available_plugins()["mnist"]
    create_generic_db(plugin_class(source=str(tmp_path / "mnist")), str(tmp_path / "digits"))
    assert cli.main(["dataset", "info", str(tmp_path / "digits"), "--grid", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "train_db: 20 entries" in out and "val_db: 10 entries" in out and "class index, 10 classes" in out
    assert os.path.isfile(tmp_path / "grid.png")


def test_not_a_dataset_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["dataset", "info", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "not a dataset" in err and "Traceback" not in err


def test_model_page_handoff_with_a_digits_trained_model(tmp_path):
    """An MNIST dataset; the model trained in DIGITS (no config.json): the inference form
    comes from the mnist plugin itself, filled with what the set says, and the z
    vectors are DIGITS' GAN layout: (1, 1, z_dim + classes) floats, label [0]."""
    write_mnist_idx_dir(tmp_path / "mnist", train_count=10, val_count=2)
    plugin_class = available_plugins()["mnist"]
    training_userdata = plugin_class(source=str(tmp_path / "mnist")).get_user_data()
    form = {"task": "class-sweep", "rows": "2", "seed": "5", "z_dim": "6", "job": str(tmp_path)}
    html, written = model_page_inference(plugin_class, training_userdata, form, str(tmp_path / "inference"))
    assert 'name="z_dim"' in html and 'value="100"' in html  # DIGITS' z size, for the user to change
    assert 'name="model_classes"' in html and 'value="10"' in html
    assert list(written) == ["test_db"] and len(written["test_db"]) == 20
    reader = DatasetReader(tmp_path / "inference")
    x, y = reader.read_all("test_db")
    assert x.shape == (20, 1, 16, 1) and x.dtype == np.float32 and y is None
    facts = latent.ModelFacts(z_dim=6, num_classes=10, conditional=True, input_shape=(28, 28, 1))
    expected = latent.run_task("class-sweep", facts, seed=5, rows=2).vectors
    np.testing.assert_allclose(x.reshape(20, -1), expected, rtol=1e-6)


@pytest.mark.parametrize("plugin_id", ["mnist", "celeba", "imagefolder", "synthetic"])
def test_every_image_plugin_offers_the_gan_form_with_an_empty_userdata(plugin_id):
    """DIGITS passes an empty userdata for a dataset job without any."""
    plugin = available_plugins()[plugin_id](is_inference_db=True)
    assert plugin.is_inference_db and plugin.get_user_data()["is_inference_db"] is True
    form = plugin.get_inference_form()
    assert {"job", "task", "z_dim", "model_classes"} <= {field.name for field in form}


def test_model_page_handoff_with_a_digits_gan_job(tmp_path):
    imagefolder_source(tmp_path / "pets")
    plugin_class = available_plugins()["imagefolder"]
    userdata = plugin_class(source=str(tmp_path / "pets"), size=8).get_user_data()
    job = gan_job(tmp_path / "job", z_dim=3, num_classes=2)
    form = {"task": "single", "seed": "2", "label": "1", "job": job}
    _, written = model_page_inference(plugin_class, userdata, form, str(tmp_path / "inference"))
    x, y = DatasetReader(tmp_path / "inference").read_all("test_db")
    assert len(written["test_db"]) == 1 and x.shape == (1, 1, 5, 1) and y is None
    assert x[0, 0, 3:, 0].tolist() == [0.0, 1.0]  # the job's 2 classes, not the form's default


def test_train_and_infer_on_datasets_digits_wrote(tmp_path):
    """`train` on a training set DIGITS' writer made, then `infer` on z vectors built by
    DIGITS' model-page handoff (DIGITS' GAN layout, no dataset.json either time)."""
    plugin_class = available_plugins()["synthetic"]
    options = {"size": 8, "train_count": 16, "val_count": 0}
    create_generic_db(plugin_class(**options), str(tmp_path / "train_set"))
    network = tmp_path / "network-tiny.py"
    network.write_text(TINY_GAN)
    job = tmp_path / "job"
    assert cli.main(["train", "--dataset", str(tmp_path / "train_set"), "--network", str(network), "--epochs", "1",
                     "--batch-size", "8", "--max-steps", "1", "--seed", "0", "--out", str(job),
                     "--no-progress"]) == 0
    form = {"task": "animation", "count": "2", "transitions": "2", "seed": "3", "job": str(job)}
    model_page_inference(plugin_class, plugin_class(**options).get_user_data(), form, str(tmp_path / "z_set"))
    assert not (tmp_path / "z_set" / "dataset.json").exists()
    out = tmp_path / "result"
    assert cli.main(["infer", "--job", str(job), "--dataset", str(tmp_path / "z_set"), "--out", str(out)]) == 0
    from digits_gan_plugin.jobdir import InferenceResult

    result = InferenceResult(out)
    assert result.images.shape == (4, 8, 8, 1)


def test_an_inference_set_built_by_a_training_plugin_records_no_labels(tmp_path):
    """The z vectors' np.array([0]) labels are 'no label' whichever class wrote them."""
    write_mnist_idx_dir(tmp_path / "mnist", train_count=10, val_count=2)
    plugin = available_plugins()["mnist"](source=str(tmp_path / "mnist"), is_inference_db=True)
    plugin.userdata.update(job=gan_job(tmp_path / "job"), task="single", seed=1, label=2)
    meta = write_dataset(plugin, tmp_path / "z", workers=1, progress=False)
    assert meta["stages"]["test_db"]["label_shape"] is None
    assert DatasetReader(tmp_path / "z").read_all("test_db")[1] is None


def test_gan_inference_dataset_for_a_model_trained_on_digits_images_other(tmp_path):
    """A model trained in DIGITS on an "Images > Other" set (no plugin, no config.json):
    the gan-inference plugin's new-dataset form takes the model's z size and classes."""
    plugin_class = available_plugins()["gan-inference"]
    form = plugin_class.get_dataset_form()
    assert not form.job.flags.required and {"z_dim", "model_classes"} <= {field.name for field in form}
    userdata = plugin_class(task="class-sweep", rows=2, seed=4, z_dim=100, model_classes=10).get_user_data()
    create_generic_db(plugin_class(**userdata), str(tmp_path / "z"), feature_encoding="none", force_same_shape=0)
    x, y = DatasetReader(tmp_path / "z").read_all("test_db")
    assert x.shape == (20, 1, 110, 1) and y is None
    assert (x[:, 0, 100:, 0].sum(axis=1) > 0.99).all()  # each item ends with a (slerped) one-hot


def test_a_digits_classification_dataset_opens_as_digits_gan_example_reuses_it(tmp_path):
    """DIGITS' MNIST GAN walkthrough trains on the LMDB of its classification dataset
    ("New Dataset > Images > Other" pointing at it): <stage>/ is itself the LMDB, each
    Datum holds its class, labels.txt names the classes."""
    import lmdb

    from digits_host.writer import array_to_datum

    images = np.random.default_rng(0).integers(0, 256, (6, 3, 5, 5)).astype(np.uint8)
    env = lmdb.open(str(tmp_path / "train_db"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for index, image in enumerate(images):
            txn.put(b"%08d_%s" % (index, b"digit.png"), array_to_datum(image, index % 3, "png").SerializeToString())
    env.close()
    (tmp_path / "labels.txt").write_text("zero\none\ntwo\n")
    reader = DatasetReader(tmp_path)
    assert reader.stages == ["train_db"] and reader.label_names == ["zero", "one", "two"] and reader.num_classes == 3
    x, y = reader.read_all("train_db")
    np.testing.assert_array_equal(x, images.transpose(0, 2, 3, 1))
    assert y.tolist() == [0, 1, 2, 0, 1, 2]
    x_items, y_items = reader.read_items("train_db", [4, 1])  # by entry number, whatever the keys
    np.testing.assert_array_equal(x_items, x[[4, 1]])
    assert y_items.tolist() == [1, 1]
