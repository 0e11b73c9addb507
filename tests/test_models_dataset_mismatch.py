"""A model file given a dataset it cannot take (other image sizes, channels or labels)
fails with one line naming the file, what the dataset holds and what the network needs,
not with TensorFlow's message about some tensor deep inside the graph."""
import re
import textwrap

import pytest

from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.errors import ModelDefinitionError
from digits_gan_plugin.runtime.trainer import TrainOptions, train

DATASETS = {
    "digits": dict(size=28, channels=1, classes=10),
    "faces": dict(size=64, channels=3, attributes=4),
    "grey30": dict(size=30, channels=1),
    "rgb32": dict(size=32, channels=3, classes=10),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mismatch")
    for name, spec in DATASETS.items():
        write_dataset(SYNTHETIC(train_count=4, val_count=0, **spec), root / name, workers=1, progress=False)
    return root


def dry_run(dataset, network, tmp_path):
    options = TrainOptions(dataset=str(dataset), network=str(network), epochs=1, batch_size=4, seed=0, threads=1)
    return train(options, tmp_path / "job", dry_run=True, progress=False)


@pytest.mark.parametrize("network, dataset, expected", [
    ("network-celebA", "digits", "building the train tower on 28x28x1 images with class labels: this network "
                                 "makes images whose height and width are multiples of 16; the dataset has 28 x 28"),
    ("network-celebA-encoder", "grey30", "on 30x30x1 images with no labels: this network makes images whose height "
                                         "and width are multiples of 16"),
    ("network-mnist", "faces", "on 64x64x3 images with attribute labels 1x1x4: this network is conditioned on class "
                               "labels; the dataset has attribute labels, not classes"),
    ("network-mnist-acgan", "grey30", "UserModel.conditional is true (the generator takes a class), but the dataset "
                                      "has no labels"),
    ("network-mnist-simple", "rgb32", "this network makes 28 x 28 x 1 images; the dataset has 32 x 32 x 3 images"),
])
def test_a_shipped_network_names_what_the_dataset_lacks(datasets, tmp_path, network, dataset, expected):
    with pytest.raises(ModelDefinitionError, match=rf"{network}\.py(:\d+)?: .*{re.escape(expected)}") as caught:
        dry_run(datasets / dataset, network, tmp_path)
    assert "\n" not in str(caught.value)


def test_a_user_file_failing_inside_tensorflow_says_what_it_was_given(datasets, tmp_path):
    # a file written for 28x28 digits whose layer sizes are fixed: TensorFlow's shape
    # error alone would not say that the dataset holds 64x64x3 images
    network = tmp_path / "fixed-size.py"
    network.write_text(textwrap.dedent("""
        class UserModel(Tower):
            @model_property
            def inference(self):
                return self.x

            @model_property
            def loss(self):
                flat = tf.reshape(self.x, [-1, 28 * 28])
                weights = tf.get_variable('w', [28 * 28, 1])
                loss = tf.reduce_mean(tf.matmul(flat, weights[:, :1] * tf.ones([28 * 28, 1])) +
                                      tf.reduce_sum(tf.reshape(self.x, [4, 64 * 64 * 3]) * tf.ones([5, 1])))
                return [{'loss': loss, 'vars': [weights]}]
    """))
    with pytest.raises(ModelDefinitionError, match=r"fixed-size\.py:\d+: ValueError while building the train tower "
                                                   r"on 64x64x3 images with attribute labels 1x1x4: ") as caught:
        dry_run(datasets / "faces", network, tmp_path)
    assert "\n" not in str(caught.value)


def test_a_long_multi_line_exception_message_becomes_one_bounded_line(datasets, tmp_path):
    network = tmp_path / "noisy.py"
    network.write_text(textwrap.dedent("""
        class UserModel(Tower):
            @model_property
            def loss(self):
                raise ValueError('shapes:\\n' + '\\n'.join(['[64, 28, 28, 1] vs [64, 64, 64, 3]'] * 200))
    """))
    with pytest.raises(ModelDefinitionError, match=r"noisy\.py:\d+: ValueError while building the train tower on "
                                                   r"28x28x1 images with class labels: shapes: \[64, 28") as caught:
        dry_run(datasets / "digits", network, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("...") and len(message) < 1000
