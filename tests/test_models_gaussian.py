"""The AYLIEN 1-D Gaussian toy: the `gaussian` data plugin, and network-gaussian-1d.py
learning N(4, 0.5) through `digits-gan train`, sampled through the runtime's inference."""
import time

import numpy as np
import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.data_plugins import get_plugin
from digits_gan_plugin.errors import DataError

# The recipe of network-gaussian-1d.py's docstring.
RECIPE = ["--network", "network-gaussian-1d", "--epochs", "20", "--batch-size", "64", "--solver", "sgd",
          "--lr", "0.03", "--lr-policy", "step", "--gamma", "0.85", "--step-size", "150"]


def test_plugin_draws_seeded_float_samples():
    plugin_class = get_plugin("gaussian")
    plugin = plugin_class(train_count=4000, val_count=50, seed=3)
    train = plugin.itemize_entries("train_db")
    assert train == plugin_class(train_count=4000, val_count=50, seed=3).itemize_entries("train_db")
    assert train != plugin_class(train_count=4000, val_count=50, seed=4).itemize_entries("train_db")
    val = plugin.itemize_entries("val_db")
    assert len(train) == 4000 and len(val) == 50 and val != train[:50]
    assert plugin.itemize_entries("test_db") == []
    assert np.mean(train) == pytest.approx(4.0, abs=0.05) and np.std(train) == pytest.approx(0.5, abs=0.03)
    feature, label = plugin.encode_entry(train[0])
    assert feature.shape == (1, 1, 1) and feature.dtype == np.float32
    assert label.tolist() == [0] and not plugin.has_labels  # DIGITS' np.array([0]): no label
    assert feature[0, 0, 0] == np.float32(train[0])


def test_plugin_rejects_a_negative_std():
    with pytest.raises(DataError, match="std"):
        get_plugin("gaussian")(std=-1.0)


def test_gan_learns_the_gaussian_with_minibatch_discrimination(tmp_path):
    from digits_gan_plugin.runtime.inference import load_generator

    dataset, job = tmp_path / "gaussian", tmp_path / "job"
    assert main(["dataset", "create", "gaussian", "--out", str(dataset), "--val-count", "256", "--quiet"]) == 0
    cpu_started = time.process_time()
    assert main(["train", "--dataset", str(dataset), *RECIPE, "--seed", "0", "--threads", "1",
                 "--no-progress", "--out", str(job)]) == 0
    cpu_seconds = time.process_time() - cpu_started
    with load_generator(job) as generator:
        assert generator.z_dim == 1 and not generator.conditional
        z = np.random.default_rng(0).uniform(-1.0, 1.0, (20000, 1)).astype(np.float32)
        samples = generator.run(z)["images"]
    assert samples.shape == (20000, 1, 1, 1) and samples.dtype == np.float32
    assert abs(samples.mean() - 4.0) < 0.15, samples.mean()
    assert abs(samples.std() - 0.5) < 0.15, samples.std()
    assert cpu_seconds < 60, cpu_seconds
