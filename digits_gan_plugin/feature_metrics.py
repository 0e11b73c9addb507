"""The figures of a set of generated samples against real ones, numpy only.

From a judge classifier's outputs (see evaluation.py): class probabilities give the
conditional accuracy and the MNIST/Inception-style classifier score; penultimate-layer
features give the Frechet distance, KID (Binkowski et al. 2018), improved precision /
recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020); pixels give
the per-class diversity (mode-collapse indicator); label probabilities before and after an
edit of z give the attribute-edit rates.
"""
import importlib.util

import numpy as np

from .errors import DataError


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


def label_accuracies(probs, labels):
    """Per-label accuracy of independent label probabilities probs (N,K, sigmoid outputs)
    thresholded at 0.5 against 0/1 labels (N,K) -> float64 (K,)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.shape != labels.shape or probs.ndim != 2 or len(probs) == 0:
        raise DataError(f"label_accuracies: expected N,K probabilities and labels with N > 0, "
                        f"got {probs.shape} and {labels.shape}")
    return np.mean((probs > 0.5) == (labels > 0.5), axis=0)


def majority_accuracy(labels, num_classes=None):
    """Accuracy of always answering the most frequent value: for int class ids (N,) the
    top class's share; for 0/1 labels (N,K) the mean over labels of max(share, 1 - share).
    The floor a judge's held-out accuracy must clear to mean anything."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise DataError("majority_accuracy: no labels")
    if labels.ndim == 1:
        return float(np.bincount(labels.astype(np.int64), minlength=num_classes or 0).max() / len(labels))
    share = np.mean(labels > 0.5, axis=0)
    return float(np.mean(np.maximum(share, 1 - share)))


def edit_effects(before, after, target):
    """What adding an attribute vector to z did to the judge's label probabilities.

    before, after: float N,K probabilities of the same N samples without and with the edit;
    target: the index of the label the vector is meant to raise. Returns a dict:
    success_rate (share of samples whose target probability rose), mean_rise (mean of
    after - before for the target), before / after (mean target probability), and
    other_change (mean |after - before| over the other labels and the samples; 0.0 when
    K == 1): small when the edit leaves the other attributes alone.
    """
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if before.shape != after.shape or before.ndim != 2 or len(before) == 0:
        raise DataError(f"edit_effects: expected two N,K probability arrays with N > 0, "
                        f"got {before.shape} and {after.shape}")
    if not 0 <= target < before.shape[1]:
        raise DataError(f"edit_effects: target {target} is outside 0..{before.shape[1] - 1}")
    change = after - before
    others = np.delete(np.abs(change), target, axis=1)
    return {
        "success_rate": float(np.mean(change[:, target] > 0)),
        "mean_rise": float(np.mean(change[:, target])),
        "before": float(np.mean(before[:, target])),
        "after": float(np.mean(after[:, target])),
        "other_change": float(np.mean(others)) if others.size else 0.0,
    }
