"""Judges and the sample-quality evaluation of GAN jobs.

A judge is a small CNN trained once on a dataset's own labels and cached by the
dataset's fingerprint: class labels (MNIST digits, imagefolder class sub-folders) get a
softmax over the classes, attribute labels (CelebA's 1 x 1 x 40) one sigmoid per
attribute. Any image size and channel count (images over JUDGE_SIDE pixels are
average-pooled to about that first).

`evaluate` samples a generator job whose dataset has a judge and compares the samples
with real held-out images (the dataset's ``val_db``) in the judge's penultimate-layer
feature space (feature_metrics): Frechet distance, KID (mean and std over subsets),
improved precision / recall and density / coverage, each beside its real floor (real
held-out against real train images). Where the dataset has classes: the MNIST score
(the Inception score with the judge), and for conditional generators the conditional
accuracy and the per-class diversity (mode-collapse indicator). With attribute vectors
(``digits-gan attributes``): the attribute-edit rates.

TensorFlow/Keras is imported inside the functions that train or run a judge or a generator.
"""
import hashlib
import json
import os
import shutil
import sys
import zipfile
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from . import jobdir
from .errors import DataError, os_error_reason
from .feature_metrics import (classifier_score, conditional_accuracy, diversity_ratios, edit_effects,
                              features_frechet_distance, kernel_inception_distance, label_accuracies,
                              majority_accuracy, manifold_metrics)
from .files import recover_staged, staging_dir, write_json_atomic

TRAIN_STAGE = "train_db"
HELD_OUT_STAGE = "val_db"

# -------------------------------------------------------------------------- the judge

CLASSES, ATTRIBUTES = "classes", "attributes"
# Images larger than this are average-pooled to about this side first: attributes are
# visible at 32 px and the judge stays a CPU-minute model.
JUDGE_SIDE = 32


@dataclass(frozen=True)
class ClassifierSettings:
    """Architecture and training budget of the judge CNN (part of its cache key).

    [average-pool to ~JUDGE_SIDE px] - conv(width, 5x5) - pool - conv(2*width, 5x5) - pool
    - dense(feature_dim) - logits, trained with Adam on at most `max_images` train images
    (a seeded random subset of a larger split) for `epochs` passes or `max_steps` batches,
    whichever ends first, with random shifts of up to `shift` pixels.
    """
    epochs: int = 6
    batch_size: int = 64
    width: int = 32
    feature_dim: int = 128
    learning_rate: float = 1e-3
    shift: int = 2
    seed: int = 0
    max_steps: Optional[int] = None
    max_images: int = 20000

    def check(self, labels=None):
        """self; DataError naming the first count below 1 (by labels {field: flag} when given)."""
        for name in ("epochs", "max_steps", "max_images", "batch_size", "width", "feature_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DataError(f"{(labels or {}).get(name, 'judge ' + name)} {value}: expected an integer >= 1")
        return self


DEFAULT_CLASSIFIER = ClassifierSettings()
# A judge that trains in seconds, for smoke runs (--quick); its figures mean little.
QUICK_CLASSIFIER = ClassifierSettings(epochs=1, width=8, feature_dim=32)


def cache_root():
    """Root of the on-disk cache: $DIGITS_GAN_CACHE, default ~/.cache/digits-gan."""
    return os.environ.get("DIGITS_GAN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "digits-gan")


def dataset_fingerprint(dataset_dir, settings):
    """Hex digest (16 chars) of dataset.json, the LMDB data file sizes/mtimes and the
    classifier settings: any rebuilt dataset or changed setting gets its own classifier."""
    digest = hashlib.sha256()
    meta_path = os.path.join(dataset_dir, "dataset.json")
    try:
        with open(meta_path, "rb") as handle:
            digest.update(handle.read())
    except OSError as error:
        raise DataError(f"{meta_path}: cannot read dataset metadata ({error.strerror})") from None
    for root, dirs, files in sorted(os.walk(dataset_dir)):
        dirs.sort()
        for name in sorted(files):
            if name == "data.mdb":  # lock.mdb changes whenever a reader opens the LMDB
                path = os.path.join(root, name)
                stat = os.stat(path)
                digest.update(f"{os.path.relpath(path, dataset_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def dataset_labels(reader):
    """(kind, label names or None) of a dataset's labels, checked to be what a judge trains
    on: labelled train_db and val_db splits with class ids (kind 'classes': MNIST digits,
    imagefolder class sub-folders) or 1 x 1 x K attribute values (kind 'attributes',
    label > 0 = has it: CelebA's 40). DataError naming the dataset otherwise."""
    where = reader.dataset_dir
    for stage in (TRAIN_STAGE, HELD_OUT_STAGE):
        if stage not in reader.stages:
            raise DataError(f"{where}: dataset has no {stage} split (a judge needs labelled "
                            f"{TRAIN_STAGE} and {HELD_OUT_STAGE} images)")
    shape = reader.label_shape(TRAIN_STAGE)
    if shape is None:
        raise DataError(f"{where}: dataset has no labels; a judge needs class labels (e.g. MNIST digits, "
                        f"imagefolder class sub-folders) or attribute labels (e.g. CelebA's 40 attributes)")
    if shape != reader.label_shape(HELD_OUT_STAGE):
        raise DataError(f"{where}/dataset.json: {TRAIN_STAGE} labels are {shape}, {HELD_OUT_STAGE} labels are "
                        f"{reader.label_shape(HELD_OUT_STAGE)}; a judge needs the same labels in both")
    names = reader.label_names
    if shape == []:
        return CLASSES, [str(name) for name in names] if names else None
    count = int(np.prod(shape))
    return ATTRIBUTES, [str(name) for name in names] if names and len(names) == count else \
        [f"attr{index}" for index in range(count)]


def _read_labelled(reader, stage, kind, limit, seed):
    """(images uint8 N,H,W,C, labels) of a stage, at most `limit` of them (a seeded random
    subset, in key order): int64 (N,) class ids, or float32 N,K of 0/1 attribute values."""
    count = reader.count(stage)
    if count > limit:
        x, y = reader.read_items(stage, np.sort(np.random.default_rng(seed).choice(count, limit, replace=False)))
    else:
        x, y = reader.read_all(stage)
    if kind == CLASSES:
        return x, np.asarray(y, dtype=np.int64)
    return x, (np.asarray(y).reshape(len(y), -1) > 0).astype(np.float32)


def _progress_enabled(progress):
    return bool(progress) and sys.stderr.isatty()


def _build_classifier(input_shape, num_classes, settings):
    """(trainer, model): Keras models sharing weights, image float N,H,W,C in 0..255 ->
    logits N,K (trainer) and -> [logits N,K, features N,feature_dim] (model)."""
    import keras
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Rescaling(1.0 / 255)(inputs)
    factor = -(-max(input_shape[:2]) // JUDGE_SIDE)
    if factor > 1:
        x = layers.AveragePooling2D(factor, padding="same")(x)
    x = layers.Conv2D(settings.width, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(2 * settings.width, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    features = layers.Dense(settings.feature_dim, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits), keras.Model(inputs, [logits, features])


def _random_shifts(images, max_shift, rng):
    """Each image N,H,W,C rolled by independent integer shifts in [-max_shift, max_shift]
    with zero fill (MNIST backgrounds are 0)."""
    if max_shift <= 0:
        return images
    shifted = np.zeros_like(images)
    height, width = images.shape[1:3]
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        shifted[i, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            images[i, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return shifted


class Judge:
    """A dataset's judge CNN: label `probabilities`, penultimate `features`, or both (`predict`).

    Attributes: kind ('classes': softmax over num_classes classes; 'attributes': one
    sigmoid per attribute, num_classes of them), label_names (or None), input_shape
    [H,W,C], val_accuracy (on the held-out split; the mean over attributes),
    majority_accuracy (the same for always answering the most frequent label: the floor
    val_accuracy must clear), label_accuracy (per attribute, or None), fingerprint (cache
    key), directory (cache entry), settings, info (its classifier.json), trained_now (True
    when this instance was trained rather than loaded from the cache).
    """

    WEIGHTS = "classifier.weights.npz"  # model.get_weights() in order (arr_0, arr_1, ...)
    INFO = "classifier.json"

    def __init__(self, model, info, directory, trained_now):
        self._model = model
        self.info = info
        self.directory = directory
        self.trained_now = trained_now
        self.fingerprint = info["fingerprint"]
        self.kind = info.get("kind", CLASSES)  # judges cached before attribute judges existed
        self.label_names = info.get("label_names")
        self.num_classes = info["num_classes"]
        self.input_shape = info["input_shape"]
        self.settings = ClassifierSettings(**info["settings"])

    val_accuracy = property(lambda self: self.info["val_accuracy"])
    majority_accuracy = property(lambda self: self.info.get("majority_accuracy"))
    label_accuracy = property(lambda self: self.info.get("label_accuracy"))

    def predict(self, images, batch_size=500):
        """images uint8/float N,H,W,C in 0..255 -> (probs float64 N,K, features float64 N,F)."""
        import tensorflow as tf
        images = np.asarray(images, dtype=np.float32)
        if list(images.shape[1:]) != list(self.input_shape):
            raise DataError(f"the judge expects images of shape N,{','.join(map(str, self.input_shape))}, "
                            f"got {images.shape}")
        to_probs = tf.nn.softmax if self.kind == CLASSES else tf.sigmoid
        probs, features = [], []
        for start in range(0, len(images), batch_size):
            logits, batch_features = self._model(images[start:start + batch_size], training=False)
            probs.append(to_probs(logits).numpy())
            features.append(np.asarray(batch_features))
        return (np.concatenate(probs).astype(np.float64), np.concatenate(features).astype(np.float64))

    def probabilities(self, images):
        """float64 N,K: class probabilities (rows sum to 1) or per-attribute probabilities."""
        return self.predict(images)[0]

    def features(self, images):
        """float64 N,F penultimate-layer features (the space of the Frechet distance, KID...)."""
        return self.predict(images)[1]

    def feature_tensor(self, images):
        """Penultimate features (a differentiable TF tensor N,F) of a float tensor
        N,H,W,C of images in 0..255: for losses that backpropagate through the judge."""
        return self._model(images, training=False)[1]

    def describe(self):
        """Lines for the terminal: what it judges, how well, where it is cached."""
        info = self.info
        labels = (f"{self.num_classes} classes (softmax)" if self.kind == CLASSES
                  else f"{self.num_classes} attributes (one sigmoid each)")
        mean = " (mean over the attributes)" if self.kind == ATTRIBUTES else ""
        majority = f"; always-majority {self.majority_accuracy:.2%}" if self.majority_accuracy is not None else ""
        lines = [f"judge of {info['dataset']}: {labels}, images {' x '.join(map(str, self.input_shape))}",
                 f"held-out accuracy {self.val_accuracy:.2%}{mean} on {info.get('val_images', '?')} images{majority}"]
        if info.get("train_images") is not None:
            lines.append(f"trained on {info['train_images']} of {info['train_count']} train images, "
                         f"{info['steps']} batches of {self.settings.batch_size}")
        lines.append(f"cache: {self.directory}")
        return lines


def _train_classifier(x_train, y_train, kind, num_classes, settings, progress):
    """The feature model of _build_classifier trained on uint8 N,H,W,C images and their
    labels (int64 N class ids, or float32 N,K of 0/1) -> (model, batches run)."""
    import keras
    from tqdm import tqdm

    keras.utils.set_random_seed(settings.seed)
    trainer, model = _build_classifier(x_train.shape[1:], num_classes, settings)
    loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True) if kind == CLASSES
            else keras.losses.BinaryCrossentropy(from_logits=True))
    trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=loss)
    rng = np.random.default_rng(settings.seed)
    total = settings.epochs * -(-len(x_train) // settings.batch_size)
    total = min(total, settings.max_steps) if settings.max_steps else total
    done = 0
    with tqdm(total=total, desc="judge", unit="batch", disable=not _progress_enabled(progress)) as bar:
        while done < total:
            order = rng.permutation(len(x_train))
            x_epoch = _random_shifts(x_train[order], settings.shift, rng).astype(np.float32)
            for start in range(0, len(order), settings.batch_size):
                stop = start + settings.batch_size
                logs = trainer.train_on_batch(x_epoch[start:stop], y_train[order[start:stop]],
                                              return_dict=True)
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
                bar.update()
                done += 1
                if done == total:
                    break
    return model, done


def _cache_entry(dataset_dir, settings):
    fingerprint = dataset_fingerprint(dataset_dir, settings)
    return fingerprint, os.path.join(cache_root(), "classifiers", fingerprint)


def cached_classifier(dataset_dir, settings=None):
    """The cached Judge of `dataset_dir` for `settings` (default DEFAULT_CLASSIFIER), or None."""
    settings = (settings or DEFAULT_CLASSIFIER).check()
    _, directory = _cache_entry(dataset_dir, settings)
    info_path = os.path.join(directory, Judge.INFO)
    if not os.path.isfile(info_path):
        return None
    try:
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
        _, model = _build_classifier(info["input_shape"], info["num_classes"], settings)
        with np.load(os.path.join(directory, Judge.WEIGHTS), allow_pickle=False) as arrays:
            model.set_weights([arrays[f"arr_{index}"] for index in range(len(arrays.files))])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged, or from an older release
        shutil.rmtree(directory, ignore_errors=True)  # so that the judge trained instead takes its place
        return None
    return Judge(model, info, directory, trained_now=False)


def load_or_train_classifier(dataset_dir, settings=None, progress=True):
    """The cached Judge of `dataset_dir`, training it first if the cache has none.

    Cache entry: <cache_root()>/classifiers/<fingerprint>/ with classifier.weights.npz and
    classifier.json (settings, label kind and names, held-out accuracies); written to a
    temp dir and renamed into place. settings: ClassifierSettings, default DEFAULT_CLASSIFIER.
    Raises DataError when the dataset has no labelled train/val images (see dataset_labels).
    """
    from .dataset_io import DatasetReader

    settings = (settings or DEFAULT_CLASSIFIER).check()
    found = cached_classifier(dataset_dir, settings)
    if found is not None:
        return found
    fingerprint, directory = _cache_entry(dataset_dir, settings)
    reader = DatasetReader(dataset_dir)
    kind, names = dataset_labels(reader)
    x_train, y_train = _read_labelled(reader, TRAIN_STAGE, kind, settings.max_images, settings.seed)
    x_val, y_val = _read_labelled(reader, HELD_OUT_STAGE, kind, settings.max_images, settings.seed)
    if kind == CLASSES:
        num_classes = reader.num_classes or int(max(y_train.max(), y_val.max()) + 1)
    else:
        num_classes = y_train.shape[1]
    model, steps = _train_classifier(x_train, y_train, kind, num_classes, settings, progress)
    judge = Judge(model, {
        "fingerprint": fingerprint,
        "dataset": os.path.abspath(dataset_dir),
        "settings": asdict(settings),
        "kind": kind,
        "label_names": names,
        "num_classes": num_classes,
        "input_shape": list(x_train.shape[1:]),
        "train_images": len(x_train), "train_count": reader.count(TRAIN_STAGE), "steps": steps,
        "val_images": len(x_val),
    }, directory, trained_now=True)
    probs = judge.probabilities(x_val)
    if kind == CLASSES:
        judge.info.update(val_accuracy=conditional_accuracy(probs, y_val), label_accuracy=None)
    else:
        per_label = label_accuracies(probs, y_val)
        judge.info.update(val_accuracy=float(per_label.mean()), label_accuracy=per_label.tolist())
    judge.info["majority_accuracy"] = majority_accuracy(y_val, num_classes)

    try:
        _write_cache_entry(model, judge.info, directory)
    except OSError as error:  # the judge is still good for this run
        print(f"digits-gan: cannot cache the judge in {directory} ({os_error_reason(error)}); "
              f"it is trained again next time", file=sys.stderr)
    return judge


def _write_cache_entry(model, info, directory):
    """Write the judge's weights and classifier.json (`info`) to a staging folder beside `directory`,
    then rename it into place (a concurrent writer that finished first wins). Staging folders
    of killed earlier writers are removed first."""
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    recover_staged(directory)
    staging = staging_dir(directory)
    try:
        os.mkdir(staging)
        np.savez(os.path.join(staging, Judge.WEIGHTS), *model.get_weights())
        with open(os.path.join(staging, Judge.INFO), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
        try:
            os.rename(staging, directory)
        except OSError:
            if not os.path.isfile(os.path.join(directory, Judge.INFO)):  # not a concurrent writer finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -------------------------------------------------------------------------- evaluation

MIN_SAMPLES = 10  # the k-NN figures need more samples than their k (5)
MAX_SAMPLES = 1_000_000  # generated images evaluate keeps in memory at once (and hours of CPU beyond)
REAL_LIMIT = 10000  # real images per split judged for the references (a seeded subset beyond)


def read_job(job_dir):
    """(config dict, latent.ModelFacts) of a job, checked to be a generator (z input)
    trained on a dataset."""
    config = jobdir.read_config(job_dir)
    facts = jobdir.model_facts_from_config(job_dir, config)
    where = jobdir.JobPaths(job_dir).config
    if facts.inference_input != "z":
        raise DataError(f"{where}: the model encodes images (inference input {facts.inference_input!r}); "
                        f"evaluate needs a generator (z input)")
    if not config.get("dataset"):
        raise DataError(f"{where}: no 'dataset' path")
    return config, facts


def judge(classifier, images, labels, x_val, y_val, x_train, seed=0):
    """The judge's figures -> (generated, real) dicts: generated images (with the int
    class ids they were asked for, or None for an unconditional generator) against real
    held-out images x_val (labels y_val); the held-out images against the train images
    x_train give the floors. Class figures (classifier score, accuracies) only for a judge
    of classes."""
    gen_probs, gen_features = classifier.predict(images)
    val_probs, val_features = classifier.predict(x_val)
    train_features = classifier.features(x_train)
    kid, kid_std = kernel_inception_distance(gen_features, val_features, seed=seed)
    kid_floor, kid_floor_std = kernel_inception_distance(val_features, train_features, seed=seed)
    generated = {
        "frechet_distance": features_frechet_distance(gen_features, val_features),
        "kid": kid, "kid_std": kid_std,
        **manifold_metrics(val_features, gen_features, seed=seed),
    }
    real = {
        "count": int(len(x_val)),
        "accuracy": (conditional_accuracy(val_probs, y_val) if classifier.kind == CLASSES
                     else float(label_accuracies(val_probs, y_val).mean())),
        "frechet_distance_floor": features_frechet_distance(val_features, train_features),
        "kid_floor": kid_floor, "kid_floor_std": kid_floor_std,
        "manifold_floor": manifold_metrics(val_features, train_features, seed=seed),
    }
    if classifier.kind == CLASSES:
        generated["mnist_score"] = classifier_score(gen_probs)
        real["mnist_score"] = classifier_score(val_probs)
        if labels is not None:
            predicted = np.argmax(gen_probs, axis=1)
            generated["conditional_accuracy"] = conditional_accuracy(gen_probs, labels)
            generated["per_class_accuracy"] = [float(np.mean(predicted[labels == k] == k))
                                               for k in range(classifier.num_classes)]
    return generated, real


def _edit_targets(vectors, names, path):
    """{vector name: judge label index} of the attribute vectors the judge has a label for,
    and the names it has none for; DataError when none match."""
    index = {name: k for k, name in enumerate(names or [])}
    targets = {name: index[name] for name in vectors if name in index}
    if not targets:
        raise DataError(f"{path}: none of its attribute vectors ({', '.join(sorted(vectors))}) is a label of the "
                        f"judge (labels: {', '.join(names or ['none named'])})")
    return targets, sorted(set(vectors) - set(targets))


def _generate(job_dir, facts, checkpoint, samples, seed, edits=None, progress=True):
    """Images from the job's generator -> (images uint8 N,H,W,C, class ids int64 N or
    None, edit images or None, weights 'ema' | 'raw': see runtime.ema). Conditional:
    samples // num_classes of each class (class-major); unconditional: `samples` z's.
    edits: None, or (vectors {name: z_dim}, count, scale): `count` other z's (random
    classes for conditional models) drawn once -> edit images (unedited, {name: with
    scale * vector added to every z})."""
    from tqdm import tqdm

    from .runtime.inference import class_vectors, load_generator

    with load_generator(job_dir, checkpoint) as generator:
        if facts.conditional:
            inputs, labels = class_vectors(facts, range(facts.num_classes), samples // facts.num_classes, seed)
        else:
            inputs, labels = facts.sample(samples, np.random.default_rng(seed)), None
        images = generator.generate(inputs)
        if edits is None:
            return images, labels, None, generator.weights
        vectors, count, scale = edits
        rng = np.random.default_rng([seed, 1])
        z = facts.sample(count, rng)
        classes = rng.integers(facts.num_classes, size=count) if facts.conditional else None

        def edited(delta):
            return generator.generate(facts.with_labels(z + delta, classes) if facts.conditional else z + delta)

        unedited = edited(0)
        results = {name: edited(scale * vectors[name])
                   for name in tqdm(vectors, desc="attribute edits", unit="vector",
                                    disable=not _progress_enabled(progress))}
    return images, labels, (unedited, results), generator.weights


def evaluate(job_dir, samples=10000, seed=0, checkpoint=None, classifier_settings=None, progress=True,
             attributes=None, edit_samples=1000, edit_scale=1.0, real_limit=REAL_LIMIT):
    """Evaluate a generator job whose dataset has labels for a judge; writes
    JOBDIR/eval.json and returns its dict.

    samples: generated samples (conditional models: split equally over the classes,
    rounded down to a multiple of num_classes, at least 2 per class); seed fixes z;
    checkpoint: 'best', 'last' or None (best when the job kept one by its --best-metric,
    else last). The judge is trained on the dataset's train split on first use and cached
    (load_or_train_classifier). Real held-out images (val split, at most real_limit) are
    the reference; held-out against train images give the floors.
    attributes: an attribute-vector .npz (digits-gan attributes): for each vector the judge
    has a label for, edit_samples z's with and without edit_scale * vector -> the
    attribute-edit rates (feature_metrics.edit_effects) in eval.json's attribute_edits.
    Everything is checked before a model is built.
    """
    from .dataset_io import DatasetReader
    from .latent import load_attribute_vectors

    if checkpoint not in (None, "best", "last"):
        raise DataError(f"checkpoint {checkpoint!r}: expected 'best' or 'last'")
    config, facts = read_job(job_dir)
    if checkpoint is None:
        checkpoint = "best" if config.get("best_metric") else "last"
    samples, per_class = int(samples), int(samples) // (facts.num_classes if facts.conditional else 1)
    if facts.conditional and per_class < 2:
        raise DataError(f"--samples {samples}: need at least 2 per class ({2 * facts.num_classes} "
                        f"for {facts.num_classes} classes)")
    if not MIN_SAMPLES <= samples <= MAX_SAMPLES:
        raise DataError(f"--samples {samples}: expected {MIN_SAMPLES} to {MAX_SAMPLES:,}")
    if not 1 <= int(edit_samples) <= MAX_SAMPLES:  # refused even unused: a typo should not pass unseen
        raise DataError(f"--edit-samples {edit_samples}: expected 1 to {MAX_SAMPLES:,}")
    if not np.isfinite(edit_scale):
        raise DataError(f"--edit-scale {edit_scale}: expected a finite number")
    dataset_dir = config["dataset"]
    reader = DatasetReader(dataset_dir)
    kind, names = dataset_labels(reader)
    where = jobdir.JobPaths(job_dir).config
    if facts.conditional and kind != CLASSES:
        raise DataError(f"{where}: the model is conditional on {facts.num_classes} classes, but {dataset_dir} has "
                        f"attribute labels; evaluate judges conditional models by class")
    edits = targets = unmatched = None
    if attributes is not None:
        vectors = load_attribute_vectors(str(attributes), facts.z_dim)
        targets, unmatched = _edit_targets(vectors, names, attributes)
        edits = ({name: vectors[name] for name in targets}, int(edit_samples), float(edit_scale))

    classifier = load_or_train_classifier(dataset_dir, classifier_settings, progress)
    if list(classifier.input_shape) != list(facts.input_shape):
        raise DataError(f"{dataset_dir}: the judge takes images {classifier.input_shape}, the model makes "
                        f"{list(facts.input_shape)}")
    if facts.conditional and classifier.num_classes != facts.num_classes:
        raise DataError(f"{dataset_dir}: classifier has {classifier.num_classes} classes, job has {facts.num_classes}")
    count = per_class * facts.num_classes if facts.conditional else samples
    images, labels, edit_images, weights = _generate(job_dir, facts, checkpoint, count, seed, edits, progress)
    x_val, y_val = _read_labelled(reader, HELD_OUT_STAGE, kind, real_limit, seed)
    x_train, _ = _read_labelled(reader, TRAIN_STAGE, kind, real_limit, seed)

    generated, real = judge(classifier, images, labels, x_val, y_val, x_train, seed)
    if facts.conditional:
        diversity = diversity_ratios(images, labels, x_val, y_val, facts.num_classes, seed=seed)
        known = [(ratio, k) for k, ratio in enumerate(diversity) if ratio is not None]
        collapse = {"per_class": diversity, "overall": None, "min": min(known)[0] if known else None,
                    "min_class": min(known)[1] if known else None}
    else:
        overall = diversity_ratios(images, np.zeros(len(images)), x_val, np.zeros(len(x_val)), 1, seed=seed)[0]
        collapse = {"per_class": [], "overall": overall, "min": overall, "min_class": None}
    result = {
        "job_dir": os.path.abspath(job_dir),
        "dataset": os.path.abspath(dataset_dir),
        "settings": {"samples": count, "per_class": per_class if facts.conditional else None, "seed": int(seed),
                     "checkpoint": checkpoint, "weights": weights, "real_limit": int(real_limit)},
        "classifier": {"fingerprint": classifier.fingerprint, "kind": classifier.kind,
                       "val_accuracy": classifier.val_accuracy, "majority_accuracy": classifier.majority_accuracy,
                       "directory": classifier.directory, "settings": asdict(classifier.settings)},
        "generated": generated,
        "real": real,
        "ratios": {
            "accuracy": generated["conditional_accuracy"] / real["accuracy"]
            if "conditional_accuracy" in generated and real["accuracy"] else None,
            "mnist_score": generated["mnist_score"] / real["mnist_score"] if "mnist_score" in generated else None,
        },
        "mode_collapse": collapse,
    }
    if edit_images is not None:
        unedited, edited = edit_images
        before = classifier.probabilities(unedited)
        result["attribute_edits"] = {
            "file": os.path.abspath(attributes), "samples": int(edit_samples), "scale": float(edit_scale),
            "attributes": {name: edit_effects(before, classifier.probabilities(edited[name]), target)
                           for name, target in targets.items()},
            "unmatched": unmatched,
        }
    result["summary"] = summarize(result)
    write_json_atomic(jobdir.JobPaths(job_dir).eval_json, result)
    return result


# ------------------------------------------------------------------ reading a result

def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def figure_rows(result):
    """(figure, generated, real) text rows of an evaluate() result dict (eval.json),
    for the gallery and the web UI (templates/results/metrics.html). Figures an older
    eval.json lacks are left out."""
    generated, real = result.get("generated", {}), result.get("real", {})
    rows = []
    if "conditional_accuracy" in generated:
        rows.append(("conditional accuracy", _fmt(generated["conditional_accuracy"]), _fmt(real.get("accuracy"))))
    elif real.get("accuracy") is not None:
        rows.append(("judge accuracy", "", _fmt(real["accuracy"])))
    if "mnist_score" in generated:
        rows.append(("MNIST score (classifier score)", _fmt(generated["mnist_score"], 2),
                     _fmt(real.get("mnist_score"), 2)))
    if "frechet_distance" in generated:
        rows.append(("Frechet distance", _fmt(generated["frechet_distance"], 2),
                     "floor " + _fmt(real.get("frechet_distance_floor"), 2)))
    if "kid" in generated:
        rows.append(("KID", f"{generated['kid']:.4f} \u00b1 {generated['kid_std']:.4f}",
                     f"floor {real['kid_floor']:.4f} \u00b1 {real['kid_floor_std']:.4f}"))
        for name in ("precision", "recall", "density", "coverage"):
            rows.append((name, _fmt(generated[name]), _fmt(real["manifold_floor"][name])))
    collapse = result.get("mode_collapse") or {}
    for index, value in enumerate(collapse.get("per_class") or []):
        rows.append((f"diversity vs real, class {index}", _fmt(value), "1"))
    if collapse.get("overall") is not None:
        rows.append(("diversity vs real", _fmt(collapse["overall"]), "1"))
    return rows


def edit_rows(result):
    """(attribute, success rate, mean rise, before -> after, other change) text rows of
    eval.json's attribute_edits, or [] without them."""
    edits = (result.get("attribute_edits") or {}).get("attributes") or {}
    return [(name, f"{e['success_rate']:.1%}", f"{e['mean_rise']:+.3f}", f"{e['before']:.3f} \u2192 {e['after']:.3f}",
             f"{e['other_change']:.3f}") for name, e in edits.items()]


def metrics_context(result, where="eval.json"):
    """The context of templates/results/metrics.html for an eval.json dict; DataError
    naming `where` when it is not what evaluate writes."""
    try:
        settings = result.get("settings", {})
        edits = result.get("attribute_edits")
        note = ", ".join(f"{key} {settings[key]}" for key in ("samples", "seed", "checkpoint") if key in settings)
        edit_note = edits and (f"{edits['samples']} samples, each without and with {edits['scale']:g} x the vector "
                               f"added to z" + (f"; the judge has no label for {', '.join(edits['unmatched'])}"
                                                if edits.get("unmatched") else ""))
        return {"figures": figure_rows(result), "edits": edit_rows(result), "note": note, "edit_note": edit_note}
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{where}: not an evaluation result as digits-gan evaluate writes it "
                        f"({type(error).__name__}: {error})") from None


def summarize(result):
    """A few human-readable lines from an evaluate() result dict."""
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    collapse = result["mode_collapse"]
    settings = result["settings"]
    weights = " with the EMA weights" if settings.get("weights") == "ema" else ""
    lines = [f"{settings['samples']} samples ({settings['checkpoint']} checkpoint{weights}, seed {settings['seed']}) "
             f"vs {real['count']} real held-out images"]
    if "conditional_accuracy" in generated:
        ratio = f", ratio {ratios['accuracy']:.3f}" if ratios.get("accuracy") is not None else ""
        lines.append(f"conditional accuracy {generated['conditional_accuracy']:.2%} "
                     f"(real {real['accuracy']:.2%}{ratio})")
    else:
        lines.append(f"judge accuracy on real held-out images {real['accuracy']:.2%}")
    if "mnist_score" in generated:
        lines.append(f"MNIST score {generated['mnist_score']:.3f} (real {real['mnist_score']:.3f}, "
                     f"ratio {ratios['mnist_score']:.3f})")
    lines.append(f"Frechet distance {generated['frechet_distance']:.3f} "
                 f"(real floor {real['frechet_distance_floor']:.3f})")
    if "kid" in generated:  # eval.json files written before these figures lack them
        floor = real["manifold_floor"]
        lines += [
            f"KID {generated['kid']:.4f} +- {generated['kid_std']:.4f} (real floor {real['kid_floor']:.4f})",
            "precision {precision:.3f}  recall {recall:.3f}  density {density:.3f}  coverage {coverage:.3f}"
            .format(**generated) + " (real: {precision:.3f} / {recall:.3f} / {density:.3f} / {coverage:.3f})"
            .format(**floor),
        ]
    if collapse["min"] is not None:
        where = f" (class {collapse['min_class']})" if collapse.get("min_class") is not None else ""
        lines.append(f"diversity vs real: {'min ' if where else ''}{collapse['min']:.3f}{where}"
                     f"{'  <- possible mode collapse' if collapse['min'] < 0.5 else ''}")
    edits = result.get("attribute_edits")
    if edits:
        lines.append(f"attribute edits ({edits['samples']} samples, scale {edits['scale']:g}): share whose "
                     f"probability rose, mean rise, mean |change| of the others")
        lines += [f"  {name}: {rate} {rise}  others {other}" for name, rate, rise, _, other in edit_rows(result)]
    return "\n".join(lines)
