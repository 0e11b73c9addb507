"""The judge classifier (training, caching) and `digits-gan evaluate` end to end on tiny data."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digits_gan_plugin import cli
from digits_gan_plugin import evaluation as ev
from digits_gan_plugin import jobdir
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.digits_api import DataIngestionInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.files import staging_dir

TINY_CLASSIFIER = ev.ClassifierSettings(epochs=4, batch_size=32, width=4, feature_dim=16, learning_rate=1e-2, shift=0)


class SquareDigits(DataIngestionInterface):
    """28x28x1 'digits': class k is a bright 5x5 square at one of 10 places, jittered, noisy."""

    label_names = [str(k) for k in range(10)]
    counts = {"train_db": 200, "val_db": 100}

    @staticmethod
    def get_id():
        return "test-square-digits"

    def itemize_entries(self, stage):
        return [(stage, i) for i in range(self.counts.get(stage, 0))]

    def encode_entry(self, entry):
        stage, index = entry
        rng = np.random.default_rng([index, len(stage)])
        label = index % 10
        image = rng.integers(0, 40, size=(28, 28)).astype(np.uint8)
        top = 3 + 13 * (label // 5) + rng.integers(-1, 2)
        left = 1 + 5 * (label % 5) + rng.integers(0, 2)
        image[top:top + 5, left:left + 5] = 255
        return image[None], np.array([label])


@pytest.fixture(scope="module")
def digits_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "digits"
    write_dataset(SquareDigits(), str(out), workers=1, progress=False)
    return str(out)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITS_GAN_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def tiny_job(digits_dataset, tmp_path_factory):
    """network-mnist trained for 3 steps on the square digits."""
    job = str(tmp_path_factory.mktemp("jobs") / "job")
    assert cli.main(["train", "--dataset", digits_dataset, "--network", "network-mnist", "--out", job,
                     "--epochs", "1", "--max-steps", "3", "--batch-size", "16", "--seed", "0",
                     "--no-progress"]) == 0
    return job


def test_classifier_is_trained_once_then_loaded_from_cache(digits_dataset, cache):
    # Start from an empty cache entry whatever ran before in this module.
    entry = cache / "classifiers" / ev.dataset_fingerprint(digits_dataset, TINY_CLASSIFIER)
    shutil.rmtree(entry, ignore_errors=True)
    killed_writer = subprocess.Popen([sys.executable, "-c", ""])
    killed_writer.wait()
    left_by_a_killed_writer = Path(staging_dir(entry, pid=killed_writer.pid))
    left_by_a_killed_writer.mkdir(parents=True)
    (left_by_a_killed_writer / ev.Judge.WEIGHTS).write_bytes(b"half")
    first = ev.load_or_train_classifier(digits_dataset, TINY_CLASSIFIER, progress=False)
    assert first.trained_now
    assert first.val_accuracy > 0.9
    weights = os.path.join(first.directory, ev.Judge.WEIGHTS)
    assert os.path.dirname(first.directory) == str(cache / "classifiers")
    mtime = os.stat(weights).st_mtime_ns
    assert first.fingerprint in os.listdir(cache / "classifiers")
    assert not [name for name in os.listdir(cache / "classifiers") if name.startswith(".")]  # no temp left

    second = ev.load_or_train_classifier(digits_dataset, TINY_CLASSIFIER, progress=False)
    assert not second.trained_now
    assert os.stat(weights).st_mtime_ns == mtime
    assert second.val_accuracy == first.val_accuracy

    images = np.zeros((3, 28, 28, 1), np.uint8)
    probs_1, features_1 = first.predict(images)
    probs_2, features_2 = second.predict(images)
    assert probs_1.shape == (3, 10) and features_1.shape == (3, 16)
    np.testing.assert_allclose(probs_1.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs_2, probs_1, rtol=1e-5)
    np.testing.assert_allclose(features_2, features_1, rtol=1e-5)


def test_a_judge_that_cannot_be_cached_is_still_used_and_a_damaged_cache_entry_is_trained_again(
        digits_dataset, cache, monkeypatch, capsys):
    classifiers = cache / "classifiers"
    entry = classifiers / ev.dataset_fingerprint(digits_dataset, TINY_CLASSIFIER)
    shutil.rmtree(entry, ignore_errors=True)

    def full_disk(path, *arrays):
        open(path, "wb").close()
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(ev.np, "savez", full_disk)
        judge = ev.load_or_train_classifier(digits_dataset, TINY_CLASSIFIER, progress=False)
    assert judge.trained_now and judge.val_accuracy > 0.9
    assert capsys.readouterr().err == (f"digits-gan: cannot cache the judge in {entry} (No space left on device); "
                                       f"it is trained again next time\n")
    assert not entry.exists() and not [name for name in os.listdir(classifiers) if name.startswith(".")]

    ev.load_or_train_classifier(digits_dataset, TINY_CLASSIFIER, progress=False)
    (entry / ev.Judge.WEIGHTS).write_bytes(b"cut short")  # a damaged entry (or an older release's .h5 only)
    assert ev.cached_classifier(digits_dataset, TINY_CLASSIFIER) is None
    again = ev.load_or_train_classifier(digits_dataset, TINY_CLASSIFIER, progress=False)
    assert again.trained_now and not ev.cached_classifier(digits_dataset, TINY_CLASSIFIER).trained_now


def test_fingerprint_changes_with_settings_and_dataset(digits_dataset, tmp_path):
    base = ev.dataset_fingerprint(digits_dataset, TINY_CLASSIFIER)
    assert base == ev.dataset_fingerprint(digits_dataset, TINY_CLASSIFIER)
    assert base != ev.dataset_fingerprint(digits_dataset, ev.DEFAULT_CLASSIFIER)
    other = tmp_path / "other"
    SquareDigits.counts = {"train_db": 20, "val_db": 10}
    try:
        write_dataset(SquareDigits(), str(other), workers=1, progress=False)
    finally:
        SquareDigits.counts = {"train_db": 200, "val_db": 100}
    assert base != ev.dataset_fingerprint(str(other), TINY_CLASSIFIER)


def test_classifier_needs_a_held_out_split(tmp_path, cache):
    SquareDigits.counts = {"train_db": 20}
    try:
        write_dataset(SquareDigits(), str(tmp_path / "train_only"), workers=1, progress=False)
    finally:
        SquareDigits.counts = {"train_db": 200, "val_db": 100}
    with pytest.raises(DataError, match="no val_db split"):
        ev.load_or_train_classifier(str(tmp_path / "train_only"), TINY_CLASSIFIER, progress=False)


def test_evaluate_rejects_encoder_jobs_and_missing_configs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"dataset": "x", "model": {"z_dim": None, "num_classes": 10, "conditional": False,
                                   "input_shape": [28, 28, 1], "inference_input": "image"}}))
    with pytest.raises(DataError, match="evaluate needs a generator"):
        ev.evaluate(str(tmp_path))
    with pytest.raises(DataError, match="config.json"):
        ev.evaluate(str(tmp_path / "missing"))


def test_evaluate_end_to_end_writes_eval_json(tiny_job, cache, capsys, monkeypatch):
    monkeypatch.setattr(ev, "DEFAULT_CLASSIFIER", TINY_CLASSIFIER)  # what the CLI uses
    assert cli.main(["evaluate", tiny_job, "--samples", "25", "--seed", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "conditional accuracy" in printed and "eval.json" in printed

    with open(jobdir.JobPaths(tiny_job).eval_json, encoding="utf-8") as handle:
        result = json.load(handle)
    # The job tracks no --best-metric, so the default checkpoint is the last one.
    assert {key: result["settings"][key] for key in ("samples", "per_class", "seed", "checkpoint", "real_limit")} \
        == {"samples": 20, "per_class": 2, "seed": 1, "checkpoint": "last", "real_limit": ev.REAL_LIMIT}
    assert result["settings"]["weights"] == "raw" and "EMA" not in printed
    assert result["classifier"]["fingerprint"] == ev.dataset_fingerprint(result["dataset"], TINY_CLASSIFIER)
    assert 0.9 < result["classifier"]["val_accuracy"] <= 1.0
    generated, real = result["generated"], result["real"]
    assert 0.0 <= generated["conditional_accuracy"] <= 1.0
    assert len(generated["per_class_accuracy"]) == 10
    assert 1.0 <= generated["mnist_score"] <= 10.0 and 1.0 <= real["mnist_score"] <= 10.0
    assert generated["frechet_distance"] >= 0.0 and real["frechet_distance_floor"] >= 0.0
    assert real["count"] == 100 and real["accuracy"] == result["classifier"]["val_accuracy"]
    assert result["ratios"]["mnist_score"] == pytest.approx(generated["mnist_score"] / real["mnist_score"])
    diversity = result["mode_collapse"]
    assert len(diversity["per_class"]) == 10 and all(isinstance(r, float) for r in diversity["per_class"])
    assert diversity["min"] == min(diversity["per_class"])
    assert diversity["per_class"][diversity["min_class"]] == diversity["min"]
    assert isinstance(result["summary"], str)
    assert not [name for name in os.listdir(tiny_job) if name.startswith(".eval.json")]
    # KID and the k-NN manifold figures in the judge's feature space, with the real floors
    assert generated["kid_std"] >= 0 and real["kid_floor_std"] >= 0 and np.isfinite(generated["kid"])
    for name in ("precision", "recall", "coverage"):
        assert 0.0 <= generated[name] <= 1.0 and 0.0 <= real["manifold_floor"][name] <= 1.0
    assert generated["density"] >= 0.0
    assert "KID" in printed and "precision" in printed and "coverage" in printed


def test_evaluate_is_reproducible_for_a_seed(tiny_job, cache):
    first = ev.evaluate(tiny_job, samples=20, seed=3, checkpoint="last", classifier_settings=TINY_CLASSIFIER,
                        progress=False)
    second = ev.evaluate(tiny_job, samples=20, seed=3, checkpoint="last", classifier_settings=TINY_CLASSIFIER,
                         progress=False)
    assert first["generated"] == second["generated"]


def test_evaluate_judges_the_ema_weights_and_says_so(digits_dataset, cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ev, "DEFAULT_CLASSIFIER", TINY_CLASSIFIER)
    job = str(tmp_path / "ema-job")
    assert cli.main(["train", "--dataset", digits_dataset, "--network", "network-mnist", "--out", job, "--epochs", "1",
                     "--max-steps", "2", "--batch-size", "16", "--seed", "0", "--ema-decay", "0.5",
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", job, "--samples", "20", "--no-progress"]) == 0
    assert "with the EMA weights" in capsys.readouterr().out
    with open(jobdir.JobPaths(job).eval_json, encoding="utf-8") as handle:
        assert json.load(handle)["settings"]["weights"] == "ema"
