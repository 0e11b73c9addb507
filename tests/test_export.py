"""`digits-gan export`: each format, loaded by its own runtime (TensorFlow, the TFLite
interpreter, onnxruntime), gives `digits-gan infer`'s images for the same z (SavedModel:
identical; TFLite / ONNX: at most 1 level of 255 apart); the encoder signature gives the
encoder job's z; model.json and the generator-only weights; one-line errors."""
import importlib.util
import json
import warnings

import numpy as np
import pytest

from digits_gan_plugin.cli import main
from digits_gan_plugin.jobdir import InferenceResult, JobPaths
from digits_gan_plugin.latent import read_arrays
from digits_gan_plugin.runtime import export
from digits_gan_plugin.runtime.inference import infer_command, load_generator
from tiny_jobs import tiny_jobs

Z_COUNT = 6


@pytest.fixture(scope="module")
def jobs(tiny_mnist_dataset, tmp_path_factory):
    return tiny_jobs(tmp_path_factory, tiny_mnist_dataset)


@pytest.fixture(scope="module")
def exported(jobs, tmp_path_factory):
    """The conditional GAN exported in all three formats with the encoder, by the CLI."""
    out = tmp_path_factory.mktemp("export") / "gan"
    code = main(["export", str(jobs["gan"]), "--encoder", str(jobs["encoder"]), "--format", "tflite,onnx",
                 "--batch", str(Z_COUNT), "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def reference(jobs, tmp_path_factory):
    """(z, y, the images `digits-gan infer --z` makes of them)."""
    rng = np.random.default_rng(3)
    z = rng.uniform(-1, 1, (Z_COUNT, 100)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(10, size=Z_COUNT)]
    folder = tmp_path_factory.mktemp("reference")
    np.savez(folder / "z.npz", z=np.concatenate([z, y], axis=1))
    infer_command(jobs["gan"], z_file=str(folder / "z.npz"), out=str(folder / "result"))
    return z, y, InferenceResult(folder / "result").images


def test_saved_model_gives_infer_images_exactly(exported, reference):
    import tensorflow as tf

    z, y, expected = reference
    generate = tf.saved_model.load(str(exported / "saved_model")).signatures["generate"]  # TF alone
    outputs = generate(z=tf.constant(z), y=tf.constant(y))
    images, pixels = outputs["images"].numpy(), outputs["pixels"].numpy()
    assert images.dtype == np.uint8 and images.shape == (Z_COUNT, 28, 28, 1)
    assert np.abs(images.astype(int) - expected).max() == 0
    assert pixels.dtype == np.float32 and pixels.min() >= -1 and pixels.max() <= 1
    # pixels are the model's values before it rounds them to uint8
    assert np.abs(np.rint((pixels + 1) * 127.5) - expected).max() <= 1


def test_tflite_interpreter_matches_infer(exported, reference):
    import tensorflow as tf

    z, y, expected = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(exported / "generator.tflite"))
    interpreter.allocate_tensors()
    inputs = {detail["name"]: detail for detail in interpreter.get_input_details()}
    assert list(inputs["z"]["shape"]) == [Z_COUNT, 100] and list(inputs["y"]["shape"]) == [Z_COUNT, 10]
    interpreter.set_tensor(inputs["z"]["index"], z)
    interpreter.set_tensor(inputs["y"]["index"], y)
    interpreter.invoke()
    outputs = {detail["name"]: interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()}
    difference = np.abs(outputs["images"].astype(int) - expected).max()
    assert difference <= 1, f"TFLite max pixel difference {difference}"


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed "
                    "(pip install \"digits-gan[export]\")")
def test_onnx_runtime_matches_infer(exported, reference):
    import onnx
    import onnxruntime

    assert max(entry.version for entry in onnx.load(str(exported / "generator.onnx")).opset_import
               if entry.domain in ("", "ai.onnx")) >= 15
    z, y, expected = (array[:3] for array in reference)  # the batch size is free
    session = onnxruntime.InferenceSession(str(exported / "generator.onnx"), providers=["CPUExecutionProvider"])
    images, pixels = session.run(["images:0", "pixels:0"], {"z:0": z, "y:0": y})
    difference = np.abs(images.astype(int) - expected).max()
    assert difference <= 1, f"ONNX max pixel difference {difference}"
    assert pixels.min() >= -1 and pixels.max() <= 1


def test_encode_signature_matches_the_encoder_job(jobs, exported, tiny_mnist_dataset):
    import tensorflow as tf

    from digits_gan_plugin.dataset_io import DatasetReader

    images = DatasetReader(tiny_mnist_dataset).read_all("val_db")[0][:5].astype(np.float32)
    encode = tf.saved_model.load(str(exported / "saved_model")).signatures["encode"]
    outputs = {key: value.numpy() for key, value in encode(images=tf.constant(images)).items()}
    with load_generator(jobs["encoder"]) as encoder:
        expected = encoder.run(images)
    assert sorted(outputs) == ["classes", "images", "z"]
    np.testing.assert_allclose(outputs["z"], expected["z"], atol=1e-6)
    assert np.array_equal(outputs["classes"], expected["classes"])
    assert np.array_equal(outputs["images"], expected["images"])


def test_model_card_and_generator_only_weights(jobs, exported):
    card = json.loads((exported / "model.json").read_text())
    assert card["z_dim"] == 100 and card["z_distribution"] == "uniform" and card["z_range"] == [-1.0, 1.0]
    assert card["conditional"] is True and card["num_classes"] == 10
    assert card["class_names"] == [str(digit) for digit in range(10)]
    assert card["image_shape"] == [28, 28, 1]
    assert card["outputs"]["images"]["range"] == [0, 255] and card["outputs"]["pixels"]["range"] == [-1.0, 1.0]
    assert card["source_job"] == str(jobs["gan"].resolve()) and card["ema"] is False and card["step"] == 1
    assert card["encoder"]["source_job"] == str(jobs["encoder"].resolve())
    assert set(card["signatures"]) == {"generate", "encode"}
    assert card["signatures"]["generate"]["inputs"] == {"z": [None, 100], "y": [None, 10]}
    assert sorted(card["files"]) == sorted(["saved_model", "weights.npz", "model.json", "generator.tflite",
                                            "generator.onnx"])
    weights = read_arrays(exported / "weights.npz")
    assert weights and all(name.startswith("generator/") for name in weights)  # no D, no optimizer slots
    assert "generator/fc1/weights" in weights and "generator/bn1/moving_mean" in weights
    assert card["generator_weights"]["bytes"] == sum(array.nbytes for array in weights.values())
    assert card["generator_weights"]["bytes"] < card["checkpoint_bytes"] / 2


def test_unconditional_export_and_encoder_job_as_job(jobs, tmp_path, capsys):
    out = tmp_path / "simple"
    assert main(["export", str(jobs["simple"]), "--out", str(out)]) == 0
    assert "generator weights:" in capsys.readouterr().out
    card = export.read_model_card(out)
    assert card["signatures"]["generate"]["inputs"] == {"z": [None, 100]} and card["conditional"] is False
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    images, _ = export.saved_model_generate(out)(z)
    with load_generator(jobs["simple"]) as generator:
        assert np.array_equal(images, generator.generate(z))
    # an encoder job exports with the GAN job its --weights named
    assert main(["export", str(jobs["encoder"]), "--out", str(tmp_path / "from_encoder")]) == 0
    card = export.read_model_card(tmp_path / "from_encoder")
    assert card["source_job"] == str(jobs["gan"].resolve()) and "encode" in card["signatures"]


def test_bad_input_one_line_exit_2(jobs, tmp_path, capsys, monkeypatch):
    def fails(*argv):
        assert main(list(map(str, argv))) == 2
        message = capsys.readouterr().err.strip()
        assert message.startswith("digits-gan: error:") and "\n" not in message and "Traceback" not in message
        return message

    assert "expected one of savedmodel, tflite, onnx" in fails("export", jobs["gan"], "--format", "pdf",
                                                               "--out", tmp_path / "x")
    assert "--opset 12" in fails("export", jobs["gan"], "--format", "onnx", "--opset", "12", "--out", tmp_path / "x")
    assert "--batch 0" in fails("export", jobs["gan"], "--format", "tflite", "--batch", "0", "--out", tmp_path / "x")
    assert "--batch 100000000: expected 1 to 4096" in fails("export", jobs["gan"], "--format", "tflite", "--batch",
                                                           "100000000", "--out", tmp_path / "x")  # it segfaulted
    assert "not a training job" in fails("export", tmp_path, "--out", tmp_path / "x")
    assert "not an encoder job" in fails("export", jobs["gan"], "--encoder", jobs["simple"], "--out", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    assert "--overwrite" in fails("export", jobs["gan"], "--out", tmp_path / "taken")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real_find_spec(name, *a))
    message = fails("export", jobs["gan"], "--format", "onnx", "--out", tmp_path / "x")
    assert "tf2onnx" in message and 'pip install "digits-gan[export]"' in message
    assert not (tmp_path / "x").exists()


def _full_disk_in(stage, monkeypatch):
    """Make one write of the export fail as a full disk does there."""
    import pathlib

    import tensorflow.compat.v1 as tf

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if stage == "savedmodel":  # TensorFlow's own file writes raise an OpError, not OSError
        def builder_save(*args, **kwargs):
            raise tf.errors.ResourceExhaustedError(None, None, "saved_model.pb; No space left on device")
        monkeypatch.setattr(tf.saved_model.Builder, "save", builder_save)
    elif stage == "tflite":
        write_bytes = pathlib.Path.write_bytes
        monkeypatch.setattr(pathlib.Path, "write_bytes", lambda path, data: no_space() if path.suffix == ".tflite"
                            else write_bytes(path, data))
    else:
        import tf2onnx.convert
        monkeypatch.setattr(tf2onnx.convert, "from_graph_def", no_space)


@pytest.mark.parametrize("stage", ["savedmodel", "tflite", "onnx"])
def test_a_full_disk_in_any_format_is_one_line_and_leaves_nothing(jobs, tmp_path, monkeypatch, capsys, stage):
    if stage == "onnx":
        pytest.importorskip("tf2onnx")
    _full_disk_in(stage, monkeypatch)
    out = tmp_path / "out"
    assert main(["export", str(jobs["gan"]), "--format", "savedmodel,tflite,onnx", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"digits-gan: error: {out}: cannot write the export ("), error
    assert error[0].endswith("No space left on device); nothing was written")  # the disk, not "cannot convert"
    assert list(tmp_path.iterdir()) == []
    assert not (JobPaths(jobs["gan"]).root / "export").exists()
