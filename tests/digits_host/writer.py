"""DIGITS' generic-dataset writer (digits/tools/create_generic_db.py) and the model
page's inference-dataset handoff (digits/model/images/generic/views.py), re-implemented
from ../shared/DIGITS_CONTRACT.md so that tests hold the data plugins to what DIGITS
itself does with them:

- `itemize_entries(stage)` on the calling (main) thread; a stage without entries is
  skipped; the entries are cut into batches of `batch_size`;
- `encode_entry(entry)` from `num_threads` encoder threads; a (feature, label) pair or
  a list of pairs;
- each feature must be a 3-D ndarray and each label an ndarray that is 3-D or of size
  1, checked exactly as DIGITS checks them (`label.ndim`, `label.size`, then
  `label[0]`: None and 0-d scalars fail here as they fail in DIGITS);
- unencoded: 3-channel arrays (features and 3-D labels) swapped RGB->BGR, then Caffe's
  array_to_datum (uint8 -> `data`, anything else -> `float_data`); png: H,W,C (grey
  H,W) image file with `encoded` set;
- one writer thread puts batches under `'%09d' % seqn` keys in the order they reach it;
  a `labels` LMDB is created at the first array label;
- with force_same_shape, mean.binaryproto = np.around(mean) as uint8, BGR, BlobProto
  fields num, channels, height, width, data (no shape);
- no dataset.json.
"""
import os
import queue
import threading

import lmdb
import numpy as np

from digits_gan_plugin.proto import BlobProto, Datum

STAGES = ("train_db", "val_db", "test_db")


def array_to_datum(data, label, encoding):
    """The Datum DIGITS' LmdbWriter.array_to_datum builds from a C,H,W array."""
    if data.ndim != 3:
        raise ValueError("Invalid number of dimensions: %d" % data.ndim)
    if encoding == "none":
        if data.shape[0] == 3:
            data = data[[2, 1, 0], ...]  # RGB to BGR
        datum = Datum(channels=data.shape[0], height=data.shape[1], width=data.shape[2])
        if data.dtype == np.uint8:
            datum.data = data.tobytes()
        else:
            datum.float_data.extend(data.astype(float).flat)
        datum.label = label
        return datum
    import io

    from PIL import Image

    pixels = data.transpose((1, 2, 0))
    datum = Datum(height=pixels.shape[0], width=pixels.shape[1], channels=pixels.shape[2])
    datum.label = label
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format={"png": "PNG", "jpg": "JPEG"}[encoding])
    datum.data = buffer.getvalue()
    datum.encoded = True
    return datum


class _Writer(threading.Thread):
    """DIGITS' LmdbWriter: the only thread that touches the LMDBs."""

    def __init__(self, stage_dir):
        super().__init__(daemon=True)
        os.makedirs(stage_dir, exist_ok=True)
        self.stage_dir = stage_dir
        self.features = lmdb.open(os.path.join(stage_dir, "features"), map_async=True, max_dbs=0)
        self.labels = None
        self.batches = queue.Queue(10)
        self.seqn = 0
        self.done = False
        self.keys_in_arrival_order = []

    def run(self):
        while True:
            try:
                batch = self.batches.get(timeout=0.05)
            except queue.Empty:
                if self.done:
                    return
                continue
            feature_items, label_items = [], []
            for feature, label in batch:
                key = ("%09d" % self.seqn).encode()
                if label is not None:
                    if self.labels is None:
                        self.labels = lmdb.open(os.path.join(self.stage_dir, "labels"), map_async=True, max_dbs=0)
                    label_items.append((key, label))
                feature_items.append((key, feature))
                self.keys_in_arrival_order.append(key)
                self.seqn += 1
            _put(self.features, feature_items)
            if label_items:
                _put(self.labels, label_items)

    def close(self):
        self.features.close()
        if self.labels is not None:
            self.labels.close()


def _put(env, items):
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in items:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)


class _Encoder(threading.Thread):
    """DIGITS' Encoder thread: encode_entry, the shape and label checks, the sum."""

    def __init__(self, batches, writer, extension, errors, force_same_shape, encoding, label_encoding):
        super().__init__(daemon=True)
        self.batches, self.writer, self.extension, self.errors = batches, writer, extension, errors
        self.force_same_shape, self.encoding, self.label_encoding = force_same_shape, encoding, label_encoding
        self.feature_shape = self.label_shape = self.feature_sum = None
        self.processed_count = self.sample_count = 0

    def run(self):
        while True:
            try:
                batch = self.batches.get_nowait()
            except queue.Empty:
                return
            try:
                self.writer.batches.put(self._encode(batch))
            except Exception as error:  # DIGITS reports the error and stops the thread
                self.errors.put("%s: %s" % (type(error).__name__, error))
                return

    def _encode(self, batch):
        data = []
        for entry in batch:
            value = self.extension.encode_entry(entry)
            for feature, label in value if isinstance(value, list) else [value]:
                self._check_shapes(feature, label)
                data.append(self._datums(feature, label))
                self.sample_count += 1
            self.processed_count += 1
        return data

    def _check_shapes(self, feature, label):
        if self.feature_shape is None:
            self.feature_shape = feature.shape
        if self.label_shape is None:
            self.label_shape = label.shape
        if self.force_same_shape:
            if self.feature_shape != feature.shape:
                raise ValueError("Feature shape mismatch (last:%r, previous:%r)" % (feature.shape, self.feature_shape))
            if self.label_shape != label.shape:
                raise ValueError("Label shape mismatch (last:%r, previous:%r)" % (label.shape, self.label_shape))
            if self.feature_sum is None:
                self.feature_sum = np.zeros(self.feature_shape, dtype=np.float64)
            self.feature_sum += feature

    def _datums(self, feature, label):
        if feature.ndim != 3:
            raise ValueError("LMDB/Caffe expect 3D data - ndim=%d" % feature.ndim)
        if not (label.ndim == 3 or label.size == 1):
            raise ValueError("LMDB/Caffe expect 3D or scalar label - ndim=%d" % label.ndim)
        if label.size > 1:
            label_datum = array_to_datum(label, 0, self.label_encoding)
            label = 0
        else:
            label = label[0]
            label_datum = None
        feature_datum = array_to_datum(feature, label, self.encoding)
        return feature_datum.SerializeToString(), label_datum.SerializeToString() if label_datum else None


def save_mean(feature_sum, count, stage_dir):
    data = np.around(feature_sum / count).astype(np.uint8)
    if data.ndim == 3 and data.shape[0] == 3:
        data = data[[2, 1, 0], ...]
    blob = BlobProto(num=1, channels=data.shape[0], height=data.shape[1], width=data.shape[2])
    blob.data.extend(data.astype(float).flat)
    with open(os.path.join(stage_dir, "mean.binaryproto"), "wb") as handle:
        handle.write(blob.SerializeToString())


def create_generic_db(extension, dataset_dir, stages=STAGES, batch_size=4, num_threads=2,
                      feature_encoding="png", label_encoding="none", force_same_shape=True):
    """Write every stage of `extension` as DIGITS does; returns {stage: keys in the
    order they were written}. Raises RuntimeError with DIGITS' error text when an
    encoder thread failed (DIGITS marks the job failed with it)."""
    written = {}
    for stage in stages:
        entries = extension.itemize_entries(stage)
        if len(entries) == 0:
            continue
        written[stage] = _create_stage(extension, entries, os.path.join(dataset_dir, stage), batch_size,
                                       num_threads, feature_encoding, label_encoding, force_same_shape)
    return written


def _create_stage(extension, entries, stage_dir, batch_size, num_threads, encoding, label_encoding, same_shape):
    batches, errors = queue.Queue(), queue.Queue()
    for start in range(0, len(entries), batch_size):
        batches.put(entries[start:start + batch_size])
    writer = _Writer(stage_dir)
    writer.start()
    encoders = [_Encoder(batches, writer, extension, errors, same_shape, encoding, label_encoding)
                for _ in range(num_threads)]
    for encoder in encoders:
        encoder.start()
    for encoder in encoders:
        encoder.join()
    writer.done = True
    writer.join()
    writer.close()
    if not errors.empty():
        raise RuntimeError(errors.get())
    processed = sum(encoder.processed_count for encoder in encoders)
    if processed != len(entries):
        raise ValueError("Number of processed entries (%d) does not match entry count (%d)" % (processed, len(entries)))
    sums = [encoder.feature_sum for encoder in encoders if encoder.feature_sum is not None]
    if same_shape and sums:
        save_mean(np.sum(sums, axis=0), sum(encoder.sample_count for encoder in encoders), stage_dir)
    return writer.keys_in_arrival_order


def model_page_inference(plugin_class, training_userdata, form_data, dataset_dir):
    """What DIGITS does when a model's page offers its dataset plugin's inference form
    and the user submits it: returns (form HTML, {stage: keys} of the inference set).

    The training dataset's plugin class is built with its userdata (an empty dict for a
    dataset job without any) plus is_inference_db=True; `get_inference_form()` is
    rendered with flask.render_template_string; on submit the form is validated
    (validate_on_submit), its data added to the userdata, and a generic dataset is
    built from the class and that userdata alone: feature_encoding 'none', batch 1,
    1 thread, force_same_shape 0."""
    import flask

    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY="digits-host", WTF_CSRF_ENABLED=False)
    userdata = dict(training_userdata or {})
    userdata.update({"is_inference_db": True})
    with app.test_request_context("/models/show"):
        extension = plugin_class(**userdata)
        form = extension.get_inference_form()
        if form is None:
            raise RuntimeError(f"{plugin_class.get_id()}: offers no inference form")
        template, context = extension.get_inference_template(form)
        html = flask.render_template_string(template, **context)
    with app.test_request_context("/models/images/generic/infer_extension", method="POST", data=form_data):
        extension = plugin_class(**userdata)
        form = extension.get_inference_form()
        if not form.validate_on_submit():
            raise RuntimeError("inference form invalid: %r" % (form.errors,))
        extension.userdata.update(form.data)
        inference_userdata = extension.get_user_data()
    written = create_generic_db(plugin_class(**inference_userdata), dataset_dir, feature_encoding="none",
                                batch_size=1, num_threads=1, force_same_shape=0)
    return html, written
