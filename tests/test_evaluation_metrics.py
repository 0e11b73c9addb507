"""Known values of the sample-quality figures (feature_metrics: numpy only, no TensorFlow)."""
import numpy as np
import pytest

from digits_gan_plugin import feature_metrics as fm
from digits_gan_plugin.errors import DataError


def random_covariance(rng, size):
    a = rng.normal(size=(size, size))
    return a @ a.T / size + 0.1 * np.eye(size)


@pytest.mark.parametrize("use_scipy", [True, False])
def test_frechet_distance_identical_gaussians_is_zero(use_scipy):
    if use_scipy:
        pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), random_covariance(rng, 16)
    assert fm.frechet_distance(mu, sigma, mu, sigma, use_scipy=use_scipy) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("use_scipy", [True, False])
def test_frechet_distance_of_shifted_gaussian_is_squared_shift(use_scipy):
    if use_scipy:
        pytest.importorskip("scipy")
    rng = np.random.default_rng(1)
    mu, sigma = rng.normal(size=8), random_covariance(rng, 8)
    shift = np.array([3.0, -1.0, 0, 0, 0, 0, 0, 2.0])
    assert fm.frechet_distance(mu, sigma, mu + shift, sigma, use_scipy=use_scipy) == pytest.approx(14.0, rel=1e-6)


@pytest.mark.parametrize("use_scipy", [True, False])
def test_frechet_distance_of_isotropic_gaussians_matches_closed_form(use_scipy):
    if use_scipy:
        pytest.importorskip("scipy")
    # N(0, a^2 I) vs N(0, b^2 I) in d dims: d (a - b)^2.
    d, a, b = 5, 2.0, 0.5
    distance = fm.frechet_distance(np.zeros(d), a * a * np.eye(d), np.zeros(d), b * b * np.eye(d), use_scipy=use_scipy)
    assert distance == pytest.approx(d * (a - b) ** 2, rel=1e-6)


def test_frechet_distance_numpy_path_handles_singular_covariances():
    # Rank-deficient covariances (dead ReLU features) with rounding noise.
    rng = np.random.default_rng(2)
    features = np.zeros((200, 6))
    features[:, :3] = rng.normal(size=(200, 3))
    mu, sigma = fm.feature_statistics(features)
    sigma[4, 4] = -1e-12
    assert fm.frechet_distance(mu, sigma, mu, sigma, use_scipy=False) == pytest.approx(0, abs=1e-6)
    assert fm.frechet_distance(mu, sigma, mu + 1.0, sigma, use_scipy=False) == pytest.approx(6.0, abs=1e-6)


def test_features_frechet_distance_of_samples_from_same_distribution_is_small():
    rng = np.random.default_rng(3)
    same = fm.features_frechet_distance(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4)))
    shifted = fm.features_frechet_distance(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4)) + 1.0)
    assert same < 0.02
    assert shifted == pytest.approx(4.0, abs=0.15)


def test_sqrtm_psd_squares_back_and_clips_negative_eigenvalues():
    rng = np.random.default_rng(4)
    sigma = random_covariance(rng, 7)
    root = fm.sqrtm_psd(sigma)
    np.testing.assert_allclose(root @ root, sigma, atol=1e-10)
    np.testing.assert_allclose(fm.sqrtm_psd(np.diag([4.0, -1e-15, 0.0])), np.diag([2.0, 0, 0]), atol=1e-12)


def test_score_of_confident_uniform_predictions_equals_num_classes():
    probs = np.eye(10)[np.arange(1000) % 10]
    assert fm.classifier_score(probs) == pytest.approx(10.0)


def test_score_of_identical_predictions_is_one():
    probs = np.tile([0.7, 0.2, 0.1, 0.0], (50, 1))
    assert fm.classifier_score(probs) == pytest.approx(1.0)


def test_score_guards_zero_probabilities():
    # Zero entries must contribute 0 (p log p -> 0), not NaN.
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    marginal = probs.mean(axis=0)
    expected_kl = [np.log(1 / marginal[0]), 0.5 * np.log(0.5 / marginal[1]) + 0.5 * np.log(0.5 / marginal[2])]
    score = fm.classifier_score(probs)
    assert np.isfinite(score)
    assert score == pytest.approx(np.exp(np.mean(expected_kl)))


def test_score_rejects_empty_input():
    with pytest.raises(DataError, match="N,K"):
        fm.classifier_score(np.zeros((0, 10)))


def test_conditional_accuracy():
    probs = np.eye(3)[[0, 1, 2, 2]]
    assert fm.conditional_accuracy(probs, [0, 1, 2, 0]) == pytest.approx(0.75)


def test_mean_pairwise_distance_known_values():
    assert fm.mean_pairwise_distance(np.zeros((5, 3, 3))) == 0.0
    # Pairs of (0,0), (3,4), (6,8): distances 5, 10, 5.
    points = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert fm.mean_pairwise_distance(points) == pytest.approx(20 / 3)
    assert fm.mean_pairwise_distance(points[:1]) == 0.0


def test_diversity_of_identical_samples_is_zero_and_of_real_data_is_one():
    rng = np.random.default_rng(5)
    real = rng.integers(0, 256, size=(40, 6, 6, 1)).astype(np.uint8)
    labels = np.arange(40) % 2
    collapsed = np.repeat(real[:1], 40, axis=0)
    ratios = fm.diversity_ratios(collapsed, labels, real, labels, num_classes=2)
    assert ratios == [0.0, 0.0]
    assert fm.diversity_ratios(real, labels, real, labels, num_classes=2) == pytest.approx([1.0, 1.0])


def test_diversity_is_none_for_classes_without_samples():
    images = np.random.default_rng(6).normal(size=(6, 4, 4, 1))
    labels = np.array([0, 0, 0, 1, 1, 1])
    ratios = fm.diversity_ratios(images, labels, images, labels, num_classes=3)
    assert ratios[:2] == pytest.approx([1.0, 1.0]) and ratios[2] is None


# --- KID, improved precision / recall, density / coverage --------------------------

def gaussian(count, dim=8, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).standard_normal((count, dim)) * scale + shift


def test_kid_matches_the_unbiased_mmd_written_out_by_loops():
    x, y = gaussian(6, 3, seed=1), gaussian(6, 3, shift=0.5, seed=2)

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = fm.kernel_inception_distance(x, y, subsets=3, subset_size=6)
    assert mean == pytest.approx(xx + yy - 2 * xy) and std == pytest.approx(0, abs=1e-12)  # all rows each time


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    def kid(shift):
        return fm.kernel_inception_distance(gaussian(600, seed=1), gaussian(600, shift=shift, seed=2),
                                            subsets=20, subset_size=300)

    (same, same_std), (near, _), (far, _) = kid(0.0), kid(0.5), kid(2.0)
    assert abs(same) < 3 * same_std + 1e-3 and same_std > 0
    assert 10 * max(same, 1e-4) < near < far


def test_manifold_metrics_of_one_distribution():
    metrics = fm.manifold_metrics(gaussian(800, 4, seed=1), gaussian(800, 4, seed=2))
    assert metrics["precision"] > 0.8 and metrics["recall"] > 0.8
    assert 0.8 < metrics["density"] < 1.2 and metrics["coverage"] > 0.85


def test_manifold_metrics_see_mode_collapse_and_a_shift():
    real = gaussian(800, 4, seed=1)
    collapsed = fm.manifold_metrics(real, gaussian(800, 4, scale=0.05, seed=2))  # one tight mode at the centre
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.2
    shifted = fm.manifold_metrics(real, gaussian(800, 4, shift=10.0, seed=2))
    assert shifted == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    spread = fm.manifold_metrics(real, gaussian(800, 4, scale=3.0, seed=2))  # outliers lower precision only
    assert spread["precision"] < 0.5 and spread["recall"] > 0.8 and spread["density"] < 0.5


def test_knn_radii_and_bad_shapes():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(fm.knn_radii(points, 1), [1, 1, 2, 4])
    np.testing.assert_allclose(fm.knn_radii(points, 2), [3, 2, 3, 6])
    with pytest.raises(DataError, match="k is 4"):
        fm.knn_radii(points, 4)
    with pytest.raises(DataError, match="N >= 2"):
        fm.kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_label_and_majority_accuracies():
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.6], [0.1, 0.1]])
    labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], np.float32)
    np.testing.assert_allclose(fm.label_accuracies(probs, labels), [0.5, 1.0])
    assert fm.majority_accuracy(labels) == pytest.approx(0.5)  # both attributes are 50/50
    assert fm.majority_accuracy(np.array([[1.0], [1.0], [1.0], [0.0]])) == pytest.approx(0.75)
    assert fm.majority_accuracy(np.array([2, 2, 0, 1, 2])) == pytest.approx(0.6)
    with pytest.raises(DataError, match="label_accuracies"):
        fm.label_accuracies(probs, labels[:, :1])


def test_edit_effects_by_hand():
    before = np.array([[0.2, 0.5, 0.5], [0.6, 0.5, 0.1], [0.5, 0.2, 0.3], [0.9, 0.0, 1.0]])
    after = before + np.array([[0.3, 0.1, -0.1], [-0.2, 0.0, 0.0], [0.1, 0.2, 0.0], [0.05, 0.1, -0.3]])
    effects = fm.edit_effects(before, after, 0)
    assert effects["success_rate"] == pytest.approx(0.75)  # three of four rose
    assert effects["mean_rise"] == pytest.approx((0.3 - 0.2 + 0.1 + 0.05) / 4)
    assert effects["before"] == pytest.approx(0.55) and effects["after"] == pytest.approx(0.6125)
    assert effects["other_change"] == pytest.approx((0.1 + 0.1 + 0 + 0 + 0.2 + 0 + 0.1 + 0.3) / 8)
    assert fm.edit_effects(before[:, :1], after[:, :1], 0)["other_change"] == 0.0
    with pytest.raises(DataError, match="target 3"):
        fm.edit_effects(before, after, 3)
