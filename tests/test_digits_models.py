"""Every shipped model file under the DIGITS-semantics mode (x without static shape,
inference built on every tower inside variable_scope('model'), nclasses 0, one shared
optimizer, DIGITS' step counting): it builds, trains two batches and generates / encodes
through the runtime's inference. Also: the model files' shared helper blocks are identical."""
import re

import numpy as np
import pytest

from digits_gan_plugin.data_plugins import get_plugin
from digits_gan_plugin.data_plugins.synthetic import DataIngestion as SYNTHETIC
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.runtime.inference import load_generator
from digits_gan_plugin.runtime.model_files import list_model_definitions
from digits_gan_plugin.runtime.trainer import TrainOptions, train
from tiny_jobs import mnist_simple_from_step_0

BATCH = 4


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, tiny_mnist_dataset):
    root = tmp_path_factory.mktemp("digits_models")
    faces = root / "faces"
    # 64 x 64: network-celebA's image_shape, what DIGITS' inference tower draws
    write_dataset(SYNTHETIC(size=64, channels=3, attributes=3, train_count=4, val_count=0), faces, workers=1,
                  progress=False)
    gaussian = root / "gaussian"
    write_dataset(get_plugin("gaussian")(train_count=16, val_count=4, seed=0), gaussian, workers=1, progress=False)
    return {"mnist": tiny_mnist_dataset, "celebA": faces, "gaussian": gaussian}


def dataset_for(name, datasets):
    return datasets["mnist" if "mnist" in name else "celebA" if "celebA" in name else "gaussian"]


def digits_train(dataset, network, job, steps=2, **extra):
    options = TrainOptions(dataset=str(dataset), network=network, epochs=1, batch_size=BATCH, max_steps=steps,
                           seed=0, threads=2, digits_semantics=True, **extra)
    return train(options, job, progress=False)


def test_every_shipped_model_file_is_checked():
    assert set(list_model_definitions()) == {
        "network-mnist", "network-mnist-simple", "network-mnist-encoder", "network-celebA",
        "network-celebA-encoder", "network-gaussian-1d",
        "network-mnist-wgangp", "network-mnist-sngan", "network-mnist-acgan", "network-celebA-wgangp",
        "network-celebA-sngan"}


@pytest.mark.parametrize("name", sorted(list_model_definitions()))
def test_shipped_model_file_trains_and_infers_under_digits_semantics(name, datasets, tmp_path):
    import tensorflow.compat.v1 as tf

    dataset = dataset_for(name, datasets)
    steps = 1 if "celebA" in name else 2  # 64 x 64 faces: slow on a CPU
    network = str(mnist_simple_from_step_0(tmp_path)) if name == "network-mnist-simple" else name
    result = digits_train(dataset, network, tmp_path / "job", steps=steps)
    assert result.step == steps
    config = result.config
    assert config["digits_semantics"] is True
    # DIGITS' step counting: the global step advances once per loss entry applied
    global_step = tf.train.load_checkpoint(result.checkpoint).get_tensor("global_step")
    entries = len(config["loss_entries"])
    assert global_step == steps * entries or (entries > 1 and steps < global_step < steps * entries)
    # one shared optimizer: its slots, no per-entry optimizer
    names = [name for name, _ in tf.train.list_variables(result.checkpoint)]
    assert all(name.startswith("model/") or name == "global_step" or name.startswith("shared_")
               for name in names if "/" in name or name == "global_step"), names
    with load_generator(tmp_path / "job") as generator:
        facts = generator.facts
        if facts.inference_input == "z":
            vectors = np.random.default_rng(0).uniform(-1, 1, (3, facts.vector_width)).astype(np.float32)
            if facts.conditional:
                vectors[:, facts.z_dim:] = np.eye(facts.y_dim, dtype=np.float32)[[0, 1, 2]]
            images = generator.generate(vectors)
            assert images.shape == (3,) + tuple(facts.input_shape) and images.dtype == np.uint8
        else:
            shape = tuple(facts.input_shape)
            images = np.random.default_rng(0).uniform(0, 255, (3,) + shape).astype(np.float32)
            outputs = generator.run(images)
            assert outputs["z"].shape == (3, facts.z_dim)


# ---------------------------------------------------------------- shared helper blocks

BLOCK = re.compile(r"^# --- shared: (?P<name>[\w-]+) ---\n(?P<body>.*?)^# --- end shared ---$", re.S | re.M)


def shared_blocks():
    """{block name: {file name: text}} of the '# --- shared: NAME ---' blocks."""
    blocks = {}
    for name, path in list_model_definitions().items():
        for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
            blocks.setdefault(match["name"], {})[name] = match["body"]
    return blocks


def test_model_files_share_their_helper_blocks_verbatim():
    blocks = shared_blocks()
    assert {"layers", "batch-norm"} <= set(blocks)
    for block, copies in blocks.items():
        assert len(copies) >= 2, f"block {block!r} is in one file only: {list(copies)}"
        first_name, first = next(iter(copies.items()))
        for name, text in copies.items():
            assert text == first, f"shared block {block!r} differs between {first_name} and {name}"
