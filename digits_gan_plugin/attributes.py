"""Attribute vectors: directions in a GAN's z space, found by encoding a labelled dataset.

For each attribute k of the dataset (CelebA: 40 ±1 labels, names from dataset.json
``label_names``) the vector is ``mean z of the images with k  -  mean z of those without``
(with = label > 0), where z is what an encoder job (e.g. network-celebA-encoder) gives
each image. Adding a multiple of it to a z moves the generated face towards the attribute.

Output ``.npz`` (read by the ``attributes`` latent task, ``latent.load_attribute_vectors``;
never pickled: strings are numpy unicode arrays):
    names          str (K,)          attribute names having images with and without
    vectors        float32 K x z_dim mean z with - mean z without, rows in `names` order
    count_with     int64 (K,)        images with each attribute
    count_without  int64 (K,)        images without it
    skipped        str (S,)          attributes left out: all images had it, or none
Embedding view (``--embed N``, in ``<out stem>_projector/`` beside the .npz): the z's of the
first N images as TensorBoard projector files: ``vectors.tsv`` (N rows of z_dim numbers),
``metadata.tsv`` (header ``index`` + attribute names, then each image's label values) and
``projector_config.pbtxt``; view with ``tensorboard --logdir <that folder>`` (Projector
tab), or load the two .tsv files at projector.tensorflow.org.
"""
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset_io import DatasetReader
from . import jobdir
from .files import move_into_place
from .errors import DataError, os_error_reason
from .latent import check_finite, save_arrays

DEFAULT_FILENAME = "attribute_vectors.npz"
STAGES = ("train_db", "val_db", "test_db")


@dataclass
class AttributeVectors:
    """names: list of K str; vectors float32 K x z_dim; count_with / count_without int64
    (K,); skipped: names of attributes without images on one side."""

    names: list
    vectors: np.ndarray
    count_with: np.ndarray
    count_without: np.ndarray
    skipped: list

    def arrays(self):
        """The .npz arrays (see the module docstring)."""
        return {
            "names": np.asarray(self.names, dtype=str),
            "vectors": self.vectors.astype(np.float32),
            "count_with": self.count_with.astype(np.int64),
            "count_without": self.count_without.astype(np.int64),
            "skipped": np.asarray(self.skipped, dtype=str),
        }


def attribute_vectors(z, labels, names):
    """z float N x z_dim, labels float N x K (label > 0 = has the attribute), names K str
    -> AttributeVectors (attributes that every image or no image has are skipped)."""
    z = np.asarray(z, np.float64)
    has = np.asarray(labels).reshape(len(z), -1) > 0
    if has.shape[1] != len(names):
        raise DataError(f"labels have {has.shape[1]} attributes, label_names has {len(names)}")
    count_with = has.sum(axis=0)
    count_without = len(z) - count_with
    kept = np.flatnonzero((count_with > 0) & (count_without > 0))
    sum_with = has.T.astype(np.float64) @ z                            # K x z_dim
    sum_without = z.sum(axis=0) - sum_with
    vectors = (sum_with[kept] / count_with[kept, None]) - (sum_without[kept] / count_without[kept, None])
    return AttributeVectors(
        names=[names[k] for k in kept], vectors=vectors.astype(np.float32),
        count_with=count_with[kept], count_without=count_without[kept],
        skipped=[name for k, name in enumerate(names) if k not in kept],
    )


def _dataset_batches(reader, batch_size, max_images):
    """(x uint8 N,H,W,C, labels float32 N x K) batches over train_db, val_db, test_db in
    that order, at most `max_images` images in all (None: every image)."""
    left = max_images
    for stage in STAGES:
        if stage not in reader.stages:
            continue
        for x, y in reader.batches(stage, batch_size, shuffle=False, repeat=False, drop_remainder=False):
            if left is not None:
                x, y = x[:left], y[:left]
                left -= len(x)
            yield x, y.reshape(len(y), -1)
            if left == 0:
                return


def _check_dataset(reader, dataset_dir):
    """The dataset's attribute names; DataError unless it has array labels named by label_names."""
    names = reader.label_names
    stage = next(s for s in STAGES if s in reader.stages)
    label_shape = reader.label_shape(stage)
    if not label_shape:
        raise DataError(f"{dataset_dir}: dataset has no attribute labels (label_shape {label_shape}); "
                        f"expected e.g. CelebA's 1 x 1 x 40")
    if not names or len(names) != int(np.prod(label_shape)):
        raise DataError(f"{dataset_dir}/dataset.json: label_names has {len(names or [])} names, "
                        f"the labels have {int(np.prod(label_shape))} values")
    return [str(name) for name in names]


def encode_dataset(encoder_job, dataset_dir, max_images=None, batch_size=256, checkpoint="last", progress=True):
    """Encode every image of `dataset_dir` (train_db, val_db, test_db; at most `max_images`)
    with the encoder job -> (z float32 N x z_dim, labels float32 N x K, names K str)."""
    from tqdm import tqdm

    from .runtime.inference import load_generator

    reader = DatasetReader(dataset_dir)
    names = _check_dataset(reader, dataset_dir)
    total = sum(reader.count(s) for s in STAGES if s in reader.stages)
    total = min(total, max_images) if max_images is not None else total
    if total < 1:
        raise DataError(f"{dataset_dir}: no images to encode")
    zs, labels = [], []
    with load_generator(encoder_job, checkpoint) as encoder:
        if encoder.facts.inference_input != "image":
            raise DataError(f"{encoder_job}: not an encoder job (its model's inference input is "
                            f"{encoder.facts.inference_input!r}, expected 'image')")
        if "z" not in encoder.outputs:
            raise DataError(f"{encoder.facts.network}: the inference op has no 'z' output "
                            f"(outputs: {', '.join(encoder.outputs)})")
        with tqdm(total=total, unit="img", desc="encoding", disable=not progress or not sys.stderr.isatty()) as bar:
            for x, y in _dataset_batches(reader, batch_size, max_images):
                zs.append(encoder.run(x, batch_size)["z"].reshape(len(x), -1))
                labels.append(y)
                bar.update(len(x))
    return np.concatenate(zs).astype(np.float32), np.concatenate(labels).astype(np.float32), names


def write_projector(folder, z, labels, names):
    """TensorBoard projector files for z float N x z_dim and labels N x K into `folder`
    (vectors.tsv, metadata.tsv, projector_config.pbtxt), written to a temporary folder
    beside it and renamed into place (replacing an older one)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="." + folder.name + ".", dir=folder.parent))
    try:
        np.savetxt(staging / "vectors.tsv", z, delimiter="\t", fmt="%.6g")
        rows = ["\t".join(["index"] + names)]
        rows += ["\t".join([str(i)] + [f"{v:g}" for v in row]) for i, row in enumerate(labels)]
        (staging / "metadata.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (staging / "projector_config.pbtxt").write_text(
            'embeddings {\n  tensor_name: "encoded_z"\n  tensor_path: "vectors.tsv"\n'
            '  metadata_path: "metadata.tsv"\n}\n', encoding="utf-8")
        move_into_place(str(staging), str(folder))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def attributes_command(encoder_job, dataset_dir, out=None, embed=500, max_images=None, batch_size=256,
                       checkpoint="last", progress=True):
    """``digits-gan attributes``: encode the dataset, write the attribute-vector .npz
    (default ENCODER_JOB/attributes/attribute_vectors.npz) and, for embed > 0, the
    projector folder beside it -> (AttributeVectors, npz path, projector folder or None)."""

    if embed < 0:
        raise DataError(f"--embed {embed}: expected a number of images >= 0")
    if max_images is not None and max_images < 1:
        raise DataError(f"--max-images {max_images}: expected a number of images >= 1")
    if batch_size < 1:
        raise DataError(f"--batch-size {batch_size}: expected an integer >= 1")
    out = Path(out) if out else jobdir.JobPaths(encoder_job).attributes / DEFAULT_FILENAME
    if out.suffix.lower() != ".npz":
        raise DataError(f"--out {out}: expected a path ending in .npz")
    z, labels, names = encode_dataset(encoder_job, dataset_dir, max_images, batch_size, checkpoint, progress)
    result = attribute_vectors(z, labels, names)
    if not result.names:
        raise DataError(f"{dataset_dir}: no attribute has images both with and without it "
                        f"({len(z)} images encoded)")
    check_finite(z, f"{encoder_job}: the encoded z's")
    projector = None
    try:
        save_arrays(out, result.arrays())
        if embed:
            projector = write_projector(out.with_name(out.stem + "_projector"), z[:embed], labels[:embed], names)
    except OSError as error:
        raise DataError(f"{error.filename or out}: cannot write the attribute vectors "
                        f"({os_error_reason(error)})") from None
    return result, out, projector
