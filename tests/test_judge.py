"""`digits-gan judge` on attribute and class datasets, `evaluate` of an unconditional
RGB job in its judge's features, attribute-edit rates of a generator whose z[0] is its
brightness, and the figures on the gallery and the web UI model page."""
import json
from dataclasses import replace

import numpy as np
import pytest

from digits_gan_plugin import cli
from digits_gan_plugin import evaluation as ev
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as Synthetic
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.digits_api import DataIngestionInterface
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.gallery import write_gallery
from digits_gan_plugin.jobdir import JobPaths
from digits_gan_plugin.latent import save_arrays
from digits_gan_plugin.runtime.trainer import TrainOptions, train
from digits_gan_plugin.webapp import create_app
from webapp_helpers import fake_record, user_folders

__all__ = ["user_folders"]  # the web UI test's secret key and caches in tmp folders

TINY_JUDGE = ev.ClassifierSettings(epochs=20, batch_size=32, width=4, feature_dim=16, learning_rate=1e-2, shift=0,
                                   max_steps=80)

# An unconditional 8x8 RGB generator whose images are flat grey sigmoid(3 z[0]) (z[1] does
# nothing): adding (1, 0) to z makes every image brighter.
BRIGHTNESS_GAN = '''
class UserModel(Tower):
    z_dim = 2

    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [1], initializer=tf.zeros_initializer())
            grey = tf.sigmoid(3.0 * z[:, :1] + w)
            return tf.tile(tf.reshape(grey, [-1, 1, 1, 1]), [1, 8, 8, 3])

    def discriminator(self, images):
        with tf.variable_scope("discriminator", reuse=tf.AUTO_REUSE):
            v = tf.get_variable("v", [1], initializer=tf.zeros_initializer())
            return tf.reduce_mean(images, axis=[1, 2, 3])[:, None] * v

    @model_property
    def inference(self):
        return self.generator(tf.reshape(self.x, [-1, self.z_dim])) * 255.0

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        d_real, d_fake = self.discriminator(self.x / 255.0), self.discriminator(self.generator(z))
        xent = tf.nn.sigmoid_cross_entropy_with_logits
        return [
            {"name": "d", "loss": tf.reduce_mean(xent(logits=d_real, labels=tf.ones_like(d_real)))
                                  + tf.reduce_mean(xent(logits=d_fake, labels=tf.zeros_like(d_fake))),
             "vars": tf.trainable_variables("discriminator/")},
            {"name": "g", "loss": tf.reduce_mean(xent(logits=d_fake, labels=tf.ones_like(d_fake))),
             "vars": tf.trainable_variables("generator/")},
        ]
'''


class GreyFaces(DataIngestionInterface):
    """3x8x8 flat grey images (noisy); attributes Bright (grey level > 128) and Coin (random)."""

    label_names = ["Bright", "Coin"]

    @staticmethod
    def get_id():
        return "test-grey-faces"

    def itemize_entries(self, stage):
        return [(stage, i) for i in range({"train_db": 160, "val_db": 40}.get(stage, 0))]

    def encode_entry(self, entry):
        stage, index = entry
        rng = np.random.default_rng([index, len(stage)])
        level = int(rng.integers(0, 256))
        image = np.clip(level + rng.integers(-8, 9, (3, 8, 8)), 0, 255).astype(np.uint8)
        labels = np.array([1.0 if level > 128 else -1.0, rng.choice([-1.0, 1.0])], np.float32)
        return image, labels.reshape(1, 1, 2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITS_GAN_CACHE", str(tmp_path_factory.mktemp("judge-cache")))
        patch.setattr(ev, "DEFAULT_CLASSIFIER", TINY_JUDGE)  # what the CLI starts from
        yield


@pytest.fixture(scope="module")
def faces_job(tmp_path_factory, cache):
    """(dataset, job, attribute vectors .npz, eval.json dict): the brightness generator
    trained one step on the grey faces and evaluated with the vectors Bright = (1, 0) and
    Coin = (0, 1) (plus one the judge has no label for)."""
    root = tmp_path_factory.mktemp("faces")
    write_dataset(GreyFaces(), root / "dataset", workers=1, progress=False)
    (root / "network-grey.py").write_text(BRIGHTNESS_GAN)
    train(TrainOptions(dataset=str(root / "dataset"), network=str(root / "network-grey.py"), epochs=1,
                       batch_size=8, max_steps=1, seed=0, threads=2), root / "job", progress=False)
    vectors = root / "vectors.npz"
    save_arrays(vectors, {"names": np.array(["Bright", "Coin", "Smiling"]),
                          "vectors": np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)})
    assert cli.main(["evaluate", str(root / "job"), "--samples", "40", "--attributes", str(vectors),
                     "--edit-samples", "50", "--no-progress"]) == 0
    result = json.loads(JobPaths(root / "job").eval_json.read_text())
    return root / "dataset", root / "job", vectors, result


def test_judge_train_on_synthetic_faces_reports_per_attribute_accuracy(tmp_path, cache, capsys):
    names = "Smiling,Male,Young"
    write_dataset(Synthetic(size=8, channels=3, attributes=3, names=names, train_count=40, val_count=12),
                  tmp_path / "faces", workers=1, progress=False)
    assert cli.main(["judge", "show", str(tmp_path / "faces")]) == 2
    assert "no judge cached" in capsys.readouterr().err
    assert cli.main(["judge", "train", str(tmp_path / "faces"), "--judge-steps", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "3 attributes (one sigmoid each), images 8 x 8 x 3" in printed and "trained now" in printed
    assert "mean over the attributes" in printed and "3 batches of 32" in printed

    judge = ev.load_or_train_classifier(str(tmp_path / "faces"), replace(TINY_JUDGE, max_steps=3), progress=False)
    assert not judge.trained_now and judge.kind == ev.ATTRIBUTES and judge.label_names == names.split(",")
    assert judge.val_accuracy == pytest.approx(np.mean(judge.label_accuracy))
    assert 0.5 <= judge.majority_accuracy <= 1.0
    probs = judge.probabilities(np.zeros((2, 8, 8, 3), np.uint8))
    assert probs.shape == (2, 3) and np.all((probs > 0) & (probs < 1))  # independent sigmoids, not a softmax
    assert judge.features(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 16)

    assert cli.main(["judge", "show", str(tmp_path / "faces"), "--judge-steps", "3"]) == 0
    shown = capsys.readouterr().out
    assert "held-out accuracy per attribute:" in shown and all(f"  {name}" in shown for name in names.split(","))


def test_judge_train_on_an_imagefolder_learns_its_classes(tmp_path, cache, capsys):
    from PIL import Image

    for name, level in (("dark", 30), ("light", 220)):
        (tmp_path / "source" / name).mkdir(parents=True)
        for index in range(24):
            noise = np.random.default_rng(index).integers(-20, 21, (8, 8, 3))
            image = Image.fromarray(np.clip(level + noise, 0, 255).astype(np.uint8))
            image.save(tmp_path / "source" / name / f"{index}.png")
    assert cli.main(["dataset", "create", "imagefolder", "--source", str(tmp_path / "source"), "--size", "8",
                     "--val-fraction", "0.25", "--out", str(tmp_path / "folder"), "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["judge", "train", str(tmp_path / "folder"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 classes (softmax)" in printed and "held-out accuracy 100.00% on 12 images" in printed


def test_a_dataset_without_labels_is_refused_in_one_line(tmp_path, cache, capsys):
    write_dataset(Synthetic(size=8), tmp_path / "plain", workers=1, progress=False)
    assert cli.main(["judge", "train", str(tmp_path / "plain")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("digits-gan: error:") and "\n" not in error
    assert "has no labels" in error and "class labels" in error and "attribute labels" in error
    assert cli.main(["judge", "train", str(tmp_path / "plain"), "--judge-steps", "0"]) == 2
    assert "--judge-steps 0: expected an integer >= 1" in capsys.readouterr().err


def test_evaluate_an_unconditional_rgb_job_in_its_judges_features(faces_job):
    _, _, _, result = faces_job
    generated, real = result["generated"], result["real"]
    assert result["classifier"]["kind"] == "attributes" and result["settings"]["samples"] == 40
    assert "conditional_accuracy" not in generated and "mnist_score" not in generated  # no classes
    assert generated["frechet_distance"] >= 0 and generated["kid_std"] >= 0 and real["count"] == 40
    for name in ("precision", "recall", "coverage"):
        assert 0 <= generated[name] <= 1 and 0 <= real["manifold_floor"][name] <= 1
    assert result["mode_collapse"]["per_class"] == [] and result["mode_collapse"]["overall"] > 0
    assert "judge accuracy on real held-out images" in result["summary"] and "KID" in result["summary"]


def test_the_brightness_vector_raises_bright_and_leaves_the_rest(faces_job):
    _, _, vectors, result = faces_job
    edits = result["attribute_edits"]
    assert edits["samples"] == 50 and edits["file"] == str(vectors) and edits["unmatched"] == ["Smiling"]
    bright, coin = edits["attributes"]["Bright"], edits["attributes"]["Coin"]
    # most, not all: the judge saturates on the brightest images and is not exactly monotone
    assert bright["success_rate"] >= 0.75 and bright["mean_rise"] > 0.1
    assert bright["after"] == pytest.approx(bright["before"] + bright["mean_rise"])
    assert bright["other_change"] < bright["mean_rise"] / 4
    # (0, 1) changes no pixel: no probability moves
    assert coin["success_rate"] == 0.0 and coin["mean_rise"] == pytest.approx(0, abs=1e-6)
    assert coin["other_change"] == pytest.approx(0, abs=1e-6)


def test_attribute_vectors_are_checked_before_any_model_is_built(faces_job, tmp_path):
    _, job, _, _ = faces_job
    save_arrays(tmp_path / "other.npz", {"names": np.array(["Smiling"]), "vectors": np.ones((1, 2), np.float32)})
    with pytest.raises(DataError, match="none of its attribute vectors \\(Smiling\\) is a label of the judge"):
        ev.evaluate(str(job), samples=20, attributes=str(tmp_path / "other.npz"))
    with pytest.raises(DataError, match="--edit-samples 0: expected 1 to 1,000,000"):
        ev.evaluate(str(job), samples=20, attributes=str(tmp_path / "other.npz"), edit_samples=0)
    with pytest.raises(DataError, match="--edit-samples -1: expected 1 to 1,000,000"):  # even with no vectors
        ev.evaluate(str(job), samples=20, edit_samples=-1)
    with pytest.raises(DataError, match="--edit-scale nan: expected a finite number"):
        ev.evaluate(str(job), samples=20, edit_scale=float("nan"))
    save_arrays(tmp_path / "wide.npz", {"names": np.array(["Bright"]), "vectors": np.ones((1, 5), np.float32)})
    with pytest.raises(DataError, match="wide.npz"):
        ev.evaluate(str(job), samples=20, attributes=str(tmp_path / "wide.npz"))


def test_gallery_and_model_page_show_the_figures(faces_job, tmp_path):
    _, job, _, result = faces_job
    gallery = open(write_gallery(str(job), progress=False), encoding="utf-8").read()
    record = fake_record(tmp_path / "jobs", "20260101-000000-faces", "model", target=str(job))
    page = create_app(str(tmp_path / "jobs")).test_client().get(f"/jobs/{record.name}").get_data(as_text=True)
    kid = f"{result['generated']['kid']:.4f} \u00b1 {result['generated']['kid_std']:.4f}"
    rate = f"{result['attribute_edits']['attributes']['Bright']['success_rate']:.1%}"
    for html in (gallery, page):
        assert 'id="evaluation-figures"' in html and 'id="attribute-edits"' in html
        figures = html[html.index('id="evaluation-figures"'):html.index('id="attribute-edits"')]
        for label in ("Frechet distance", "KID", "precision", "recall", "density", "coverage", "diversity vs real"):
            assert f"<th>{label}</th>" in figures
        assert kid in figures and "floor " in figures
        assert f"<th>Bright</th><td>{rate}</td>" in html
        assert "the judge has no label for Smiling" in html
