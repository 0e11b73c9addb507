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


def fails_in_one_line(dataset, network, tmp_path, pattern):
    """The ModelDefinitionError message of a dry run of `network` on `dataset`."""
    options = TrainOptions(dataset=str(dataset), network=str(network), epochs=1, batch_size=4, seed=0, threads=1)
    with pytest.raises(ModelDefinitionError, match=pattern) as caught:
        train(options, tmp_path / "job", dry_run=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    return message


def user_file(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


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
    fails_in_one_line(datasets / dataset, network, tmp_path, rf"{network}\.py(:\d+)?: .*{re.escape(expected)}")


def test_a_user_file_failing_inside_tensorflow_says_what_it_was_given(datasets, tmp_path):
    # a file written for 28x28 digits whose layer sizes are fixed: TensorFlow's shape
    # error alone would not say that the dataset holds 64x64x3 images
    network = user_file(tmp_path, "fixed-size.py", """
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
    """)
    fails_in_one_line(datasets / "faces", network, tmp_path, r"fixed-size\.py:\d+: ValueError while building the "
                                                             r"train tower on 64x64x3 images with attribute labels 1x1x4: ")


def test_a_long_multi_line_exception_message_becomes_one_bounded_line(datasets, tmp_path):
    network = user_file(tmp_path, "noisy.py", """
        class UserModel(Tower):
            @model_property
            def loss(self):
                raise ValueError('shapes:\\n' + '\\n'.join(['[64, 28, 28, 1] vs [64, 64, 64, 3]'] * 200))
    """)
    message = fails_in_one_line(datasets / "digits", network, tmp_path, r"noisy\.py:\d+: ValueError while building "
                                r"the train tower on 28x28x1 images with class labels: shapes: \[64, 28")
    assert message.endswith("...") and len(message) < 1000
