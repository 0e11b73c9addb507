"""Sample-quality evaluation of conditional MNIST-family GAN jobs.

A small CNN classifier, trained once per dataset and cached, judges generated digits:

- conditional accuracy: the classifier's argmax equals the class the generator was asked for;
- MNIST score: ``exp(mean_x KL(p(y|x) || p(y)))``, the Inception score with the digit
  classifier (``num_classes`` for confident, class-balanced samples; 1 for uninformative ones);
- Frechet distance between Gaussians fitted to the classifier's penultimate-layer features
  of generated and real held-out digits (FID with the digit classifier);
- a mode-collapse indicator: per class, the mean pairwise pixel distance of generated samples
  divided by that of real held-out samples (1.0 = as diverse as real data, ~0 = collapse);
- in the same feature space: KID (unbiased MMD^2, cubic kernel, mean and std over subsets),
  improved precision / recall (k-NN manifolds, k = 3) and density / coverage (k = 5).

Real held-out digits (the dataset's ``val_db``) give the ceiling for each figure.
The metric functions use numpy only; TensorFlow/Keras is imported inside the functions
that train or run the classifier.
"""
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from . import jobdir
from .errors import DataError
from .files import write_json_atomic

TRAIN_STAGE = "train_db"
HELD_OUT_STAGE = "val_db"

# ----------------------------------------------------------------------------- metrics

def conditional_accuracy(probs, requested):
    """Fraction of samples whose argmax class equals the requested class.

    probs: float N,K class probabilities (or logits); requested: int N class ids.
    """
    probs = np.asarray(probs)
    requested = np.asarray(requested)
    if probs.shape[0] == 0:
        raise DataError("conditional_accuracy: no samples")
    return float(np.mean(np.argmax(probs, axis=1) == requested))


def classifier_score(probs):
    """MNIST/Inception score ``exp(mean_x KL(p(y|x) || p(y)))``.

    probs: float N,K, rows are probability distributions (>= 0, summing to 1).
    p(y) is the marginal over the N rows. Zero probabilities contribute 0 to the KL
    (the limit of p log p), so one-hot predictions are fine. Returns a float in [1, K].
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise DataError(f"classifier_score: expected N,K probabilities with N > 0, got shape {probs.shape}")
    marginal = probs.mean(axis=0, keepdims=True)
    # Where p(y|x) > 0 the marginal is > 0 too, so the masked log never sees 0.
    positive = probs > 0
    log_ratio = np.zeros_like(probs)
    log_ratio[positive] = np.log(probs[positive]) - np.log(np.broadcast_to(marginal, probs.shape)[positive])
    kl = np.sum(probs * log_ratio, axis=1)
    return float(np.exp(np.mean(kl)))


def feature_statistics(features):
    """Mean (F,) and covariance (F,F) in float64 of features float N,F (N >= 2)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise DataError(f"feature_statistics: expected N,F features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def sqrtm_psd(matrix):
    """Principal square root of a symmetric positive semi-definite matrix (F,F float64).

    Symmetrizes first (covariances carry rounding asymmetry) and clips the tiny negative
    eigenvalues that rounding produces to 0.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def trace_sqrt_product(sigma1, sigma2, use_scipy=None):
    """``tr(sqrtm(sigma1 @ sigma2))`` for symmetric PSD sigma1, sigma2 (F,F).

    With scipy (use_scipy None = when importable) this is scipy.linalg.sqrtm of the product;
    without it, the product's eigenvalues equal those of the symmetric PSD matrix
    ``sqrt(sigma1) sigma2 sqrt(sigma1)``, so the trace is the sum of the square roots of
    that matrix's (clipped) eigenvalues.
    """
    if use_scipy is None:
        use_scipy = importlib.util.find_spec("scipy") is not None
    if use_scipy:
        import warnings
        import scipy.linalg
        with warnings.catch_warnings():  # singular covariances (dead ReLU features) are expected
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            root = scipy.linalg.sqrtm(np.asarray(sigma1) @ np.asarray(sigma2))
        if np.all(np.isfinite(root)):
            return float(np.real(np.trace(root)))
        # Singular products can make sqrtm fail; the symmetric form below cannot.
    root1 = sqrtm_psd(sigma1)
    middle = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eigenvalues, 0, None))))


def frechet_distance(mu1, sigma1, mu2, sigma2, use_scipy=None):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``, a float >= 0."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise DataError(f"frechet_distance: shapes differ: mu {mu1.shape} vs {mu2.shape}, "
                        f"sigma {sigma1.shape} vs {sigma2.shape}")
    distance = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                - 2 * trace_sqrt_product(sigma1, sigma2, use_scipy))
    return float(max(distance, 0.0))


def features_frechet_distance(features1, features2):
    """Frechet distance between Gaussians fitted to two feature sets (float N1,F and N2,F)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def mean_pairwise_distance(samples):
    """Mean L2 distance over all pairs i < j of samples (N,...) flattened; 0.0 when N < 2."""
    flat = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    count = len(flat)
    if count < 2:
        return 0.0
    squared_norms = np.sum(flat ** 2, axis=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2 * flat @ flat.T
    upper = np.triu_indices(count, k=1)
    return float(np.mean(np.sqrt(np.clip(squared[upper], 0, None))))


def diversity_ratios(generated, generated_labels, real, real_labels, num_classes,
                     max_per_class=300, seed=0):
    """Mode-collapse indicator per class.

    generated, real: images N,H,W,C (any numeric dtype, same scale); *_labels: int N.
    For each class k: mean pairwise distance of generated class-k samples divided by that
    of real class-k samples, each class subsampled (fixed seed) to at most max_per_class.
    Returns a list of K floats, None for a class with fewer than 2 samples on either side.
    """
    rng = np.random.default_rng(seed)
    generated_labels = np.asarray(generated_labels)
    real_labels = np.asarray(real_labels)

    def spread(images, labels, k):
        index = np.flatnonzero(labels == k)
        if len(index) > max_per_class:
            index = rng.choice(index, max_per_class, replace=False)
        return mean_pairwise_distance(images[index]) if len(index) >= 2 else None

    ratios = []
    for k in range(num_classes):
        generated_spread = spread(generated, generated_labels, k)
        real_spread = spread(real, real_labels, k)
        if generated_spread is None or not real_spread:
            ratios.append(None)
        else:
            ratios.append(generated_spread / real_spread)
    return ratios


# Offline metrics in the judge's feature space: KID (Binkowski et al. 2018), improved
# precision / recall (Kynkaanniemi et al. 2019), density / coverage (Naeem et al. 2020).

def _features(features, what):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise DataError(f"{what}: expected N,F features with N >= 2, got shape {features.shape}")
    return features


def _mmd2_unbiased(x, y):
    """Unbiased MMD^2 of samples x, y (m,F each) with k(a, b) = (a.b / F + 1)^3."""
    m, dim = len(x), x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(features1, features2, subsets=50, subset_size=1000, seed=0):
    """KID: the unbiased MMD^2 between two feature sets (N1,F and N2,F) with the cubic
    polynomial kernel, averaged over `subsets` random subsets of `subset_size` rows of
    each (at most min(N1, N2)) -> (mean, std over the subsets). ~0 for one distribution."""
    x, y = _features(features1, "kid"), _features(features2, "kid")
    size = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = [_mmd2_unbiased(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(max(1, int(subsets)))]
    return float(np.mean(values)), float(np.std(values))


def _distances(a, b):
    """Euclidean distances a (N,F) x b (M,F) -> N,M float64."""
    squared = np.sum(a ** 2, axis=1)[:, None] + np.sum(b ** 2, axis=1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))


def _chunks(count, size=1024):
    return (slice(start, start + size) for start in range(0, count, size))


def knn_radii(features, k):
    """Distance of each row of features (N,F) to its k-th nearest other row (N,)."""
    if not 1 <= k < len(features):
        raise DataError(f"k-NN radius: k is {k}, expected 1..{len(features) - 1}")
    radii = np.empty(len(features))
    for rows in _chunks(len(features)):
        # column k of the sorted distances: index 0 is the row itself (distance 0)
        radii[rows] = np.partition(_distances(features[rows], features), k, axis=1)[:, k]
    return radii


def _ball_counts(points, centres, radii):
    """For each point (N,F): how many of the balls (centres M,F, radii M) hold it -> (N,) int."""
    counts = np.empty(len(points), dtype=np.int64)
    for rows in _chunks(len(points)):
        counts[rows] = np.sum(_distances(points[rows], centres) <= radii[None, :], axis=1)
    return counts


def _subsample(features, max_samples, rng):
    return features if len(features) <= max_samples else features[rng.choice(len(features), max_samples,
                                                                             replace=False)]


def manifold_metrics(real, generated, k_pr=3, k_dc=5, max_samples=5000, seed=0):
    """Improved precision / recall (k = k_pr) and density / coverage (k = k_dc) of
    generated features (M,F) against real ones (N,F), each subsampled to max_samples.

    precision: fraction of generated samples inside some real sample's k-NN ball;
    recall: fraction of real samples inside some generated sample's k-NN ball;
    density: mean number of real balls holding a generated sample, divided by k (~1 when
    both follow one distribution); coverage: fraction of real samples whose ball holds a
    generated sample. All in [0, 1] except density (>= 0). Returns a dict."""
    rng = np.random.default_rng(seed)
    real = _subsample(_features(real, "manifold_metrics real"), max_samples, rng)
    generated = _subsample(_features(generated, "manifold_metrics generated"), max_samples, rng)
    real_pr, generated_pr, real_dc = knn_radii(real, k_pr), knn_radii(generated, k_pr), knn_radii(real, k_dc)
    coverage = np.empty(len(real), dtype=bool)
    for rows in _chunks(len(real)):
        coverage[rows] = _distances(real[rows], generated).min(axis=1) <= real_dc[rows]
    return {
        "precision": float(np.mean(_ball_counts(generated, real, real_pr) > 0)),
        "recall": float(np.mean(_ball_counts(real, generated, generated_pr) > 0)),
        "density": float(np.mean(_ball_counts(generated, real, real_dc)) / k_dc),
        "coverage": float(np.mean(coverage)),
    }


# -------------------------------------------------------------------------- classifier

@dataclass(frozen=True)
class ClassifierSettings:
    """Architecture and training budget of the judge CNN (part of its cache key).

    conv(width, 5x5) - pool - conv(2*width, 5x5) - pool - dense(feature_dim) - logits,
    trained with Adam on the train split, with random shifts of up to `shift` pixels.
    """
    epochs: int = 6
    batch_size: int = 64
    width: int = 32
    feature_dim: int = 128
    learning_rate: float = 1e-3
    shift: int = 2
    seed: int = 0


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


def _progress_enabled(progress):
    return bool(progress) and sys.stderr.isatty()


def _build_classifier(input_shape, num_classes, settings):
    """(trainer, model): Keras models sharing weights, image float N,H,W,C in 0..255 ->
    logits N,K (trainer) and -> [logits N,K, features N,feature_dim] (model)."""
    import keras
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(settings.width, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(2 * settings.width, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
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


class DigitClassifier:
    """The judge CNN. `predict` gives class probabilities and penultimate features.

    Attributes: fingerprint (cache key), directory (cache entry), val_accuracy (on the
    dataset's held-out split), num_classes, input_shape [H,W,C], settings,
    trained_now (True when this instance was trained rather than loaded from the cache).
    """

    WEIGHTS = "classifier.weights.h5"
    INFO = "classifier.json"

    def __init__(self, model, info, directory, trained_now):
        self._model = model
        self.info = info
        self.directory = directory
        self.trained_now = trained_now
        self.fingerprint = info["fingerprint"]
        self.val_accuracy = info["val_accuracy"]
        self.num_classes = info["num_classes"]
        self.input_shape = info["input_shape"]
        self.settings = ClassifierSettings(**info["settings"])

    def predict(self, images, batch_size=500):
        """images uint8/float N,H,W,C in 0..255 -> (probs float64 N,K, features float64 N,F)."""
        import tensorflow as tf
        images = np.asarray(images, dtype=np.float32)
        if list(images.shape[1:]) != list(self.input_shape):
            raise DataError(f"classifier expects images of shape N,{','.join(map(str, self.input_shape))}, "
                            f"got {images.shape}")
        probs, features = [], []
        for start in range(0, len(images), batch_size):
            logits, batch_features = self._model(images[start:start + batch_size], training=False)
            probs.append(tf.nn.softmax(logits).numpy())
            features.append(np.asarray(batch_features))
        return (np.concatenate(probs).astype(np.float64), np.concatenate(features).astype(np.float64))


def _train_classifier(x_train, y_train, num_classes, settings, progress):
    """The feature model of _build_classifier trained on uint8 N,H,W,C images, int64 labels."""
    import keras
    from tqdm import tqdm

    keras.utils.set_random_seed(settings.seed)
    trainer, model = _build_classifier(x_train.shape[1:], num_classes, settings)
    trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(settings.seed)
    steps = -(-len(x_train) // settings.batch_size)
    with tqdm(total=settings.epochs * steps, desc="classifier", unit="batch",
              disable=not _progress_enabled(progress)) as bar:
        for _ in range(settings.epochs):
            order = rng.permutation(len(x_train))
            x_epoch = _random_shifts(x_train[order], settings.shift, rng).astype(np.float32)
            for start in range(0, len(order), settings.batch_size):
                stop = start + settings.batch_size
                logs = trainer.train_on_batch(x_epoch[start:stop], y_train[order[start:stop]],
                                              return_dict=True)
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
                bar.update()
    return model


def load_or_train_classifier(dataset_dir, settings=None, progress=True):
    """The cached DigitClassifier for `dataset_dir`, training it first if the cache has none.

    Cache entry: <cache_root()>/classifiers/<fingerprint>/ with classifier.weights.h5 and
    classifier.json (settings, val accuracy); written to a temp dir and renamed into place.
    settings: ClassifierSettings, default DEFAULT_CLASSIFIER.
    Raises DataError when the dataset has no labelled train/val images.
    """
    from .dataset_io import DatasetReader

    settings = settings or DEFAULT_CLASSIFIER
    fingerprint = dataset_fingerprint(dataset_dir, settings)
    classifiers_dir = os.path.join(cache_root(), "classifiers")
    directory = os.path.join(classifiers_dir, fingerprint)
    info_path = os.path.join(directory, DigitClassifier.INFO)
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
        _, model = _build_classifier(info["input_shape"], info["num_classes"], settings)
        model.load_weights(os.path.join(directory, DigitClassifier.WEIGHTS))
        return DigitClassifier(model, info, directory, trained_now=False)

    reader = DatasetReader(dataset_dir)
    x_train, y_train = _labelled_split(reader, TRAIN_STAGE, dataset_dir)
    x_val, y_val = _labelled_split(reader, HELD_OUT_STAGE, dataset_dir)
    num_classes = reader.num_classes or int(max(y_train.max(), y_val.max()) + 1)
    input_shape = list(x_train.shape[1:])

    model = _train_classifier(x_train, y_train, num_classes, settings, progress)
    classifier = DigitClassifier(model, {
        "fingerprint": fingerprint,
        "dataset": os.path.abspath(dataset_dir),
        "settings": asdict(settings),
        "num_classes": num_classes,
        "input_shape": input_shape,
        "val_accuracy": None,
    }, directory, trained_now=True)
    probs, _ = classifier.predict(x_val)
    classifier.val_accuracy = classifier.info["val_accuracy"] = conditional_accuracy(probs, y_val)

    os.makedirs(classifiers_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{fingerprint}.", dir=classifiers_dir)
    try:
        model.save_weights(os.path.join(staging, DigitClassifier.WEIGHTS))
        with open(os.path.join(staging, DigitClassifier.INFO), "w", encoding="utf-8") as handle:
            json.dump(classifier.info, handle, indent=2)
        try:
            os.rename(staging, directory)
        except OSError:
            if not os.path.isfile(info_path):  # not a concurrent writer finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return classifier


def _labelled_split(reader, stage, dataset_dir):
    if stage not in reader.stages:
        raise DataError(f"{dataset_dir}: dataset has no {stage} split (the classifier needs labelled "
                        f"{TRAIN_STAGE} and {HELD_OUT_STAGE} images)")
    x, y = reader.read_all(stage)
    if y is None or np.asarray(y).ndim != 1:
        raise DataError(f"{dataset_dir}: {stage} needs scalar class labels, got "
                        f"{'none' if y is None else 'shape ' + str(np.asarray(y).shape)}")
    return x, np.asarray(y, dtype=np.int64)


# -------------------------------------------------------------------------- evaluation

def read_job(job_dir):
    """(config dict, latent.ModelFacts) of a job, checked to be a conditional 28x28x1
    MNIST-family job with a dataset."""
    config = jobdir.read_config(job_dir)
    facts = jobdir.model_facts_from_config(job_dir, config)
    where = jobdir.JobPaths(job_dir).config
    if not facts.conditional:
        raise DataError(f"{where}: the model is not conditional ({facts.describe()}); evaluate needs a "
                        f"conditional model with class labels (MNIST-family)")
    if facts.input_shape != (28, 28, 1):
        raise DataError(f"{where}: model.input_shape is {list(facts.input_shape)}; evaluate needs "
                        f"[28, 28, 1] (MNIST-family digits)")
    if not config.get("dataset"):
        raise DataError(f"{where}: no 'dataset' path")
    return config, facts


def _generate(job_dir, num_classes, per_class, seed, checkpoint):
    """(images uint8 N,28,28,1, labels int64 N) from the job's generator, per_class of each class."""
    from .runtime.inference import generate_classes
    return generate_classes(job_dir, list(range(num_classes)), per_class, seed, checkpoint=checkpoint)


def judge(classifier, images, labels, x_val, y_val, x_train, seed=0):
    """The judge's figures -> (generated, real) dicts: generated images (with the int
    labels they were asked for) against real held-out digits x_val / y_val; the real
    held-out digits against the train digits x_train give the floors."""
    gen_probs, gen_features = classifier.predict(images)
    val_probs, val_features = classifier.predict(x_val)
    _, train_features = classifier.predict(x_train)
    gen_predicted = np.argmax(gen_probs, axis=1)
    kid, kid_std = kernel_inception_distance(gen_features, val_features, seed=seed)
    kid_floor, kid_floor_std = kernel_inception_distance(val_features, train_features, seed=seed)
    generated = {
        "conditional_accuracy": conditional_accuracy(gen_probs, labels),
        "per_class_accuracy": [float(np.mean(gen_predicted[labels == k] == k)) for k in range(classifier.num_classes)],
        "mnist_score": classifier_score(gen_probs),
        "frechet_distance": features_frechet_distance(gen_features, val_features),
        "kid": kid, "kid_std": kid_std,
        **manifold_metrics(val_features, gen_features, seed=seed),
    }
    real = {
        "count": int(len(x_val)),
        "accuracy": conditional_accuracy(val_probs, y_val),
        "mnist_score": classifier_score(val_probs),
        "frechet_distance_floor": features_frechet_distance(val_features, train_features),
        "kid_floor": kid_floor, "kid_floor_std": kid_floor_std,
        "manifold_floor": manifold_metrics(val_features, train_features, seed=seed),
    }
    return generated, real


def evaluate(job_dir, samples=10000, seed=0, checkpoint=None, classifier_settings=None, progress=True):
    """Evaluate a conditional MNIST-family job; writes JOBDIR/eval.json and returns its dict.

    samples: total generated samples, split equally over the classes (rounded down to a
    multiple of num_classes, at least 2 per class); seed fixes z; checkpoint: 'best', 'last'
    or None (best when the job kept one by its --best-metric, else last).
    The classifier is trained on the job dataset's train split on first use and cached
    (see load_or_train_classifier). Real held-out digits (val split) give the ceilings;
    the Frechet floor compares real held-out and real train features.
    """
    from .dataset_io import DatasetReader

    if checkpoint not in (None, "best", "last"):
        raise DataError(f"checkpoint {checkpoint!r}: expected 'best' or 'last'")
    config, facts = read_job(job_dir)
    if checkpoint is None:
        checkpoint = "best" if config.get("best_metric") else "last"
    num_classes = facts.num_classes
    per_class = int(samples) // num_classes
    if per_class < 2:
        raise DataError(f"--samples {samples}: need at least 2 per class ({2 * num_classes} for {num_classes} classes)")
    dataset_dir = config["dataset"]

    images, labels = _generate(job_dir, num_classes, per_class, seed, checkpoint)
    classifier = load_or_train_classifier(dataset_dir, classifier_settings, progress)
    if classifier.num_classes != num_classes:
        raise DataError(f"{dataset_dir}: classifier has {classifier.num_classes} classes, job has {num_classes}")
    reader = DatasetReader(dataset_dir)
    x_val, y_val = _labelled_split(reader, HELD_OUT_STAGE, dataset_dir)
    x_train, _ = _labelled_split(reader, TRAIN_STAGE, dataset_dir)

    generated, real = judge(classifier, images, labels, x_val, y_val, x_train, seed)
    diversity = diversity_ratios(images, labels, x_val, y_val, num_classes, seed=seed)
    known = [(ratio, k) for k, ratio in enumerate(diversity) if ratio is not None]
    result = {
        "job_dir": os.path.abspath(job_dir),
        "dataset": os.path.abspath(dataset_dir),
        "settings": {"samples": per_class * num_classes, "per_class": per_class, "seed": int(seed),
                     "checkpoint": checkpoint},
        "classifier": {"fingerprint": classifier.fingerprint, "val_accuracy": classifier.val_accuracy,
                       "directory": classifier.directory, "settings": asdict(classifier.settings)},
        "generated": generated,
        "real": real,
        "ratios": {
            "accuracy": generated["conditional_accuracy"] / real["accuracy"] if real["accuracy"] else None,
            "mnist_score": generated["mnist_score"] / real["mnist_score"],
        },
        "mode_collapse": {
            "per_class": diversity,
            "min": min(known)[0] if known else None,
            "min_class": min(known)[1] if known else None,
        },
    }
    result["summary"] = summarize(result)
    write_json_atomic(jobdir.JobPaths(job_dir).eval_json, result)
    return result


def summarize(result):
    """A few human-readable lines from an evaluate() result dict."""
    generated, real, ratios = result["generated"], result["real"], result["ratios"]
    collapse = result["mode_collapse"]
    lines = [
        f"{result['settings']['samples']} samples ({result['settings']['checkpoint']} checkpoint, "
        f"seed {result['settings']['seed']}) vs {real['count']} real held-out digits",
        f"conditional accuracy {generated['conditional_accuracy']:.2%} "
        f"(real {real['accuracy']:.2%}, ratio {ratios['accuracy']:.3f})"
        if ratios["accuracy"] is not None else
        f"conditional accuracy {generated['conditional_accuracy']:.2%} (real {real['accuracy']:.2%})",
        f"MNIST score {generated['mnist_score']:.3f} (real {real['mnist_score']:.3f}, "
        f"ratio {ratios['mnist_score']:.3f})",
        f"Frechet distance {generated['frechet_distance']:.3f} (real floor {real['frechet_distance_floor']:.3f})",
    ]
    if "kid" in generated:  # eval.json files written before these figures lack them
        floor = real["manifold_floor"]
        lines += [
            f"KID {generated['kid']:.4f} +- {generated['kid_std']:.4f} (real floor {real['kid_floor']:.4f})",
            "precision {precision:.3f}  recall {recall:.3f}  density {density:.3f}  coverage {coverage:.3f}"
            .format(**generated) + " (real: {precision:.3f} / {recall:.3f} / {density:.3f} / {coverage:.3f})"
            .format(**floor),
        ]
    if collapse["min"] is not None:
        lines.append(f"diversity vs real: min {collapse['min']:.3f} (class {collapse['min_class']})"
                     f"{'  <- possible mode collapse' if collapse['min'] < 0.5 else ''}")
    return "\n".join(lines)
