"""dataset_io: the DIGITS-layout writer and reader, with small in-test plugins."""
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import lmdb
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from digits_gan_plugin.dataset_io import DatasetReader, write_dataset
from digits_gan_plugin.digits_api import DataIngestionInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.proto import BlobProto, Datum

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rgb_feature(index):
    """3,2,4 uint8 RGB feature: R = index, G = 100 + column, B = 200 + row."""
    feature = np.empty((3, 2, 4), np.uint8)
    feature[0] = index
    feature[1] = 100 + np.arange(4)[None, :]
    feature[2] = 200 + np.arange(2)[:, None]
    return feature


class ColourPlugin(DataIngestionInterface):
    """train_db: `count` RGB features with scalar labels index % 3; val_db: 4 of them."""

    label_names = ["a", "b", "c"]

    def __init__(self, count=20, interrupt_at=None, fail_at=None, skip=(), **kwargs):
        super().__init__(count=count, **kwargs)
        self.interrupt_at, self.fail_at, self.skip = interrupt_at, fail_at, set(skip)

    @staticmethod
    def get_id():
        return "colours"

    def itemize_entries(self, stage):
        return {"train_db": list(range(self.count)), "val_db": list(range(100, 104))}.get(stage, [])

    def encode_entry(self, entry):
        if entry == self.interrupt_at:
            raise KeyboardInterrupt()
        if entry == self.fail_at:
            raise DataError(f"entry {entry} is broken")
        if entry in self.skip:
            return []
        return rgb_feature(entry % 100), np.array([entry % 3])


class AttributePlugin(DataIngestionInterface):
    """Grey uint8 features with 1,1,5 float attribute labels; or float features."""

    def __init__(self, float_features=False):
        super().__init__(float_features=float_features)

    @staticmethod
    def get_id():
        return "attributes"

    def itemize_entries(self, stage):
        return list(range(6)) if stage == "train_db" else []

    def encode_entry(self, entry):
        label = np.where(np.arange(5) == entry % 5, 1.0, -1.0).reshape(1, 1, 5)
        if self.float_features:
            return np.arange(4, dtype=np.float32).reshape(1, 1, 4) * entry, label
        return np.full((1, 3, 3), entry * 10, np.uint8), label


def raw_values(path):
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return list(txn.cursor())


def leftovers(parent):
    return sorted(name for name in os.listdir(parent) if name.startswith("."))


@pytest.mark.parametrize("workers", [1, 2])
def test_rgb_dataset_roundtrip_bgr_keys_labels_mean(tmp_path, workers):
    out = tmp_path / "ds"
    meta = write_dataset(ColourPlugin(count=20), out, workers=workers, progress=False)
    assert meta["stages"]["train_db"] == {
        "count": 20, "feature_shape": [3, 2, 4], "feature_dtype": "uint8", "label_shape": [], "skipped": 0
    }
    assert meta["plugin_id"] == "colours" and meta["userdata"] == {"count": 20}
    assert meta["label_names"] == ["a", "b", "c"] and meta["num_classes"] == 3
    assert json.loads((out / "dataset.json").read_text()) == meta
    assert sorted(os.listdir(out / "train_db")) == ["features", "mean.binaryproto"]

    items = raw_values(out / "train_db" / "features")
    assert [key for key, _ in items] == [b"%09d" % index for index in range(20)]
    datum = Datum.FromString(items[5][1])
    assert (datum.channels, datum.height, datum.width, datum.label, datum.encoded) == (3, 2, 4, 2, False)
    stored = np.frombuffer(datum.data, np.uint8).reshape(3, 2, 4)
    np.testing.assert_array_equal(stored, rgb_feature(5)[::-1])  # BGR on disk

    reader = DatasetReader(out)
    assert reader.stages == ["train_db", "val_db"] and reader.count("val_db") == 4
    x, y = reader.read_all("train_db")
    assert x.shape == (20, 2, 4, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x[7], rgb_feature(7).transpose(1, 2, 0))  # RGB in memory
    np.testing.assert_array_equal(y, np.arange(20) % 3)

    blob = BlobProto.FromString((out / "train_db" / "mean.binaryproto").read_bytes())
    assert list(blob.shape.dim) == [1, 3, 2, 4] and (blob.num, blob.channels) == (1, 3)
    mean_rgb = np.mean([rgb_feature(i) for i in range(20)], axis=0)
    np.testing.assert_allclose(np.reshape(blob.data, (3, 2, 4)), mean_rgb[::-1], rtol=1e-6)
    np.testing.assert_allclose(reader.mean("train_db"), mean_rgb.transpose(1, 2, 0), rtol=1e-6)


def test_stored_datum_decodes_with_a_message_defined_from_field_numbers(tmp_path):
    write_dataset(ColourPlugin(count=3), tmp_path / "ds", workers=1, progress=False)
    fdp = descriptor_pb2.FileDescriptorProto(name="test_datum.proto", package="t", syntax="proto2")
    message = fdp.message_type.add(name="PlainDatum")
    T = descriptor_pb2.FieldDescriptorProto
    for name, number, ftype, label in [
        ("channels", 1, T.TYPE_INT32, T.LABEL_OPTIONAL), ("height", 2, T.TYPE_INT32, T.LABEL_OPTIONAL),
        ("width", 3, T.TYPE_INT32, T.LABEL_OPTIONAL), ("data", 4, T.TYPE_BYTES, T.LABEL_OPTIONAL),
        ("label", 5, T.TYPE_INT32, T.LABEL_OPTIONAL), ("float_data", 6, T.TYPE_FLOAT, T.LABEL_REPEATED),
        ("encoded", 7, T.TYPE_BOOL, T.LABEL_OPTIONAL),
    ]:
        message.field.add(name=name, number=number, type=ftype, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    PlainDatum = message_factory.GetMessageClass(pool.FindMessageTypeByName("t.PlainDatum"))

    key, value = raw_values(tmp_path / "ds" / "train_db" / "features")[2]
    datum = PlainDatum.FromString(value)
    assert key == b"000000002"
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 2, 4, 2)
    assert datum.data == rgb_feature(2)[::-1].tobytes()
    assert not datum.encoded and len(datum.float_data) == 0


def test_array_labels_go_to_labels_lmdb_with_same_keys(tmp_path):
    meta = write_dataset(AttributePlugin(), tmp_path / "ds", workers=2, progress=False)
    assert meta["stages"]["train_db"]["label_shape"] == [1, 1, 5] and meta["num_classes"] is None
    features = raw_values(tmp_path / "ds" / "train_db" / "features")
    labels = raw_values(tmp_path / "ds" / "train_db" / "labels")
    assert [k for k, _ in features] == [k for k, _ in labels] == [b"%09d" % i for i in range(6)]
    label = Datum.FromString(labels[3][1])
    assert (label.channels, label.height, label.width) == (1, 1, 5)
    assert list(label.float_data) == [-1, -1, -1, 1, -1]
    x, y = DatasetReader(tmp_path / "ds").read_all("train_db")
    assert x.shape == (6, 3, 3, 1) and x[4, 1, 1, 0] == 40
    assert y.shape == (6, 1, 1, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0, 0].argmax(axis=1), np.arange(6) % 5)
    x_some, y_some = DatasetReader(tmp_path / "ds").read_items("train_db", [5, 1, 3])
    np.testing.assert_array_equal(x_some, x[[5, 1, 3]])
    np.testing.assert_array_equal(y_some, y[[5, 1, 3]])


def test_float_features_use_float_data(tmp_path):
    write_dataset(AttributePlugin(float_features=True), tmp_path / "ds", workers=1, progress=False)
    datum = Datum.FromString(raw_values(tmp_path / "ds" / "train_db" / "features")[2][1])
    assert datum.data == b"" and list(datum.float_data) == [0, 2, 4, 6]
    reader = DatasetReader(tmp_path / "ds")
    x, _ = reader.read_all("train_db")
    assert x.dtype == np.float32 and x.shape == (6, 1, 4, 1)
    np.testing.assert_array_equal(x[3, 0, :, 0], [0, 3, 6, 9])
    np.testing.assert_allclose(reader.mean("train_db")[0, :, 0], np.arange(4) * 2.5)


def test_png_encoding_roundtrip(tmp_path):
    meta = write_dataset(ColourPlugin(count=5), tmp_path / "ds", encoding="png", workers=2, progress=False)
    assert meta["encoding"] == "png"
    datum = Datum.FromString(raw_values(tmp_path / "ds" / "train_db" / "features")[1][1])
    assert datum.encoded and datum.data[:8] == b"\x89PNG\r\n\x1a\n"
    x, y = DatasetReader(tmp_path / "ds").read_all("train_db")
    np.testing.assert_array_equal(x[3], rgb_feature(3).transpose(1, 2, 0))
    np.testing.assert_array_equal(y, np.arange(5) % 3)


def test_skipped_entries_are_listed(tmp_path):
    meta = write_dataset(ColourPlugin(count=10, skip=(2, 7)), tmp_path / "ds", workers=2, progress=False)
    assert meta["stages"]["train_db"]["count"] == 8 and meta["stages"]["train_db"]["skipped"] == 2
    assert (tmp_path / "ds" / "skipped.txt").read_text() == "2\n7\n"
    x, _ = DatasetReader(tmp_path / "ds").read_all("train_db")
    assert x[:, 0, 0, 0].tolist() == [0, 1, 3, 4, 5, 6, 8, 9]


def test_existing_dataset_needs_overwrite_and_is_replaced(tmp_path):
    write_dataset(ColourPlugin(count=5), tmp_path / "ds", workers=1, progress=False)
    with pytest.raises(DataError, match="ds: directory exists and is not empty"):
        write_dataset(ColourPlugin(count=6), tmp_path / "ds", workers=1, progress=False)
    write_dataset(ColourPlugin(count=6), tmp_path / "ds", workers=1, progress=False, overwrite=True)
    assert DatasetReader(tmp_path / "ds").count("train_db") == 6
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_midway_leaves_nothing(tmp_path, workers):
    with pytest.raises(KeyboardInterrupt):
        write_dataset(ColourPlugin(count=3000, interrupt_at=2000), tmp_path / "ds", workers=workers, progress=False)
    assert os.listdir(tmp_path) == []


def test_worker_error_propagates_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match="entry 13 is broken"):
        write_dataset(ColourPlugin(count=30, fail_at=13), tmp_path / "ds", workers=2, progress=False)
    assert os.listdir(tmp_path) == []


KILL_A_WORKER = textwrap.dedent("""
    import os, signal, sys
    from digits_gan_plugin.data_plugins.synthetic import DataIngestion
    from digits_gan_plugin.dataset_io import write_dataset

    class Dying(DataIngestion):
        def encode_entry(self, entry):
            if entry[1] == 1500 and os.getpid() != main:
                os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer ends a worker
            return super().encode_entry(entry)

    main = os.getpid()
    write_dataset(Dying(size=8, channels=1, train_count=3000, val_count=0), sys.argv[1], workers=2, progress=False)
""")


def test_a_worker_killed_midway_is_an_error_naming_it_not_a_wait_forever(tmp_path):
    # a fresh interpreter: with TensorFlow imported (as in the suite) builds run in-process
    done = subprocess.run([sys.executable, "-c", KILL_A_WORKER, str(tmp_path / "ds")], capture_output=True,
                          text=True, timeout=60)
    assert "DataError: stage train_db: a dataset build worker ended unexpectedly (killed by signal 9" in done.stderr
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_dataset(tmp_path):
    write_dataset(ColourPlugin(count=5), tmp_path / "ds", workers=1, progress=False)
    with pytest.raises(DataError):
        write_dataset(ColourPlugin(count=30, fail_at=13), tmp_path / "ds", workers=1, progress=False, overwrite=True)
    assert DatasetReader(tmp_path / "ds").count("train_db") == 5 and leftovers(tmp_path) == []


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="nowhere: not a dataset"):
        DatasetReader(tmp_path / "nowhere")


@pytest.fixture
def colour_dataset(tmp_path):
    write_dataset(ColourPlugin(count=10), tmp_path / "ds", workers=1, progress=False)
    return tmp_path / "ds"


def test_batches_shuffle_each_epoch_and_cover_everything(colour_dataset):
    reader = DatasetReader(colour_dataset)
    batches = reader.batches("train_db", 5, seed=3)
    epochs = [np.concatenate([next(batches)[0][:, 0, 0, 0] for _ in range(2)]) for _ in range(3)]
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(10))
    assert epochs[0].tolist() != epochs[1].tolist()
    again = DatasetReader(colour_dataset).batches("train_db", 5, seed=3)
    assert next(again)[0][:, 0, 0, 0].tolist() == epochs[0][:5].tolist()


def test_batches_remainder_and_small_datasets(colour_dataset):
    reader = DatasetReader(colour_dataset)
    sizes = [len(x) for x, _ in reader.batches("train_db", 4, shuffle=False, repeat=False)]
    assert sizes == [4, 4]
    sizes = [len(x) for x, _ in reader.batches("train_db", 4, shuffle=False, repeat=False, drop_remainder=False)]
    assert sizes == [4, 4, 2]
    x, y = next(reader.batches("train_db", 25, seed=0))  # bigger than the dataset: epochs concatenated
    assert x.shape == (25, 2, 4, 3) and y.shape == (25,)
    np.testing.assert_array_equal(x[:, 0, 0, 0] % 3, y)


def test_batches_read_from_lmdb_when_over_memory_budget(colour_dataset):
    in_memory = DatasetReader(colour_dataset).batches("train_db", 3, seed=1)
    streamed = DatasetReader(colour_dataset, memory_budget=0).batches("train_db", 3, seed=1)
    for _ in range(5):
        (x1, y1), (x2, y2) = next(in_memory), next(streamed)
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_tf_dataset_yields_float_batches(tiny_mnist_dataset):
    # In a subprocess: importing TensorFlow here would make every later build in this
    # pytest process encode in-process (write_dataset does not fork once TF is loaded).
    probe = (
        "import sys, numpy as np\n"
        "from digits_gan_plugin.dataset_io import DatasetReader\n"
        "reader = DatasetReader(sys.argv[1])\n"
        "x, y = next(iter(reader.tf_dataset('train_db', 16, seed=0)))\n"
        "assert x.shape == (16, 28, 28, 1) and x.dtype.name == 'float32' and y.dtype.name == 'int64'\n"
        "expected_x, expected_y = next(reader.batches('train_db', 16, seed=0))\n"
        "np.testing.assert_array_equal(x.numpy(), expected_x.astype(np.float32))\n"
        "np.testing.assert_array_equal(y.numpy(), expected_y)\n"
        "print('ok')\n"
    )
    result = _run_probe(probe, tiny_mnist_dataset)
    assert result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def _run_probe(probe, dataset):
    """Run the Python source `probe` with the dataset path as argv[1] in a subprocess."""
    return subprocess.run([sys.executable, "-c", probe, str(dataset)], cwd=ROOT, capture_output=True, text=True)


def test_re_initializing_a_finished_tf_dataset_iterator_does_not_wait(tiny_mnist_dataset):
    # The trainer re-initializes its one-pass val_db iterator every epoch. With tf.data's
    # autotuning, re-initializing an iterator that had reached its end often waited for
    # the autotuner's next wake-up (its period doubles up to 10 s): 0.5-1 s in half of
    # these cycles, 0-10 s per epoch in training.
    probe = (
        "import sys, time\n"
        "import tensorflow.compat.v1 as tf\n"
        "from digits_gan_plugin.dataset_io import DatasetReader\n"
        "tf.disable_eager_execution()\n"
        "iterator = tf.data.make_initializable_iterator(\n"
        "    DatasetReader(sys.argv[1]).tf_dataset('val_db', 8, shuffle=False, repeat=False))\n"
        "batch = iterator.get_next()\n"
        "waits, batches = [], 0\n"
        "with tf.Session() as session:\n"
        "    for cycle in range(5):\n"
        "        start = time.perf_counter()\n"
        "        session.run(iterator.initializer)\n"
        "        waits.append(time.perf_counter() - start)\n"
        "        while True:\n"
        "            try:\n"
        "                session.run(batch)\n"
        "                batches += 1\n"
        "            except tf.errors.OutOfRangeError:\n"
        "                break\n"
        "        time.sleep(3)\n"
        "print(batches, max(waits[1:]))\n"
    )
    result = _run_probe(probe, tiny_mnist_dataset)
    assert result.returncode == 0, result.stderr[-2000:]
    batches, longest = result.stdout.split()
    assert int(batches) == 5 * 5  # 40 val digits in batches of 8, 5 passes
    assert float(longest) < 0.3


def test_no_fork_once_tensorflow_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setattr(multiprocessing, "get_context", lambda *a: pytest.fail("forked with TF loaded"))
    write_dataset(ColourPlugin(count=5), tmp_path / "ds", workers=2, progress=False)
    assert DatasetReader(tmp_path / "ds").count("train_db") == 5


def test_tiny_mnist_fixture_is_a_labelled_dataset(tiny_mnist_dataset):
    reader = DatasetReader(tiny_mnist_dataset)
    assert (reader.count("train_db"), reader.count("val_db"), reader.num_classes) == (160, 40, 10)
    assert reader.feature_shape == (1, 28, 28)
    x, y = reader.read_all("val_db")
    assert x.shape == (40, 28, 28, 1) and sorted(set(y.tolist())) == list(range(10))
