"""Numbers entering the latent tasks and `digits-gan infer` are checked where they
enter: finite, inside float32's range, files readable, lists non-empty; every refusal
is one line naming the field or file (no TensorFlow needed: inputs are read before
the model is loaded)."""
import json

import numpy as np
import pytest

from digits_gan_plugin import cli
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import ModelFacts, check_finite, load_attribute_vectors, parse_vector, read_z_file, \
    run_task

FACTS = ModelFacts(4, 3, True, (8, 8, 1))


def make_job(folder):
    folder.mkdir(parents=True, exist_ok=True)
    model = {"network": "net.py", "z_dim": 4, "num_classes": 3, "conditional": True, "input_shape": [8, 8, 1]}
    (folder / "config.json").write_text(json.dumps({"dataset": "unused", "model": model}))
    return str(folder)


def one_error_line(capsys, *parts):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


@pytest.mark.parametrize("text, message", [
    ("1e39 0 0 0", r"'1e39' at position 1 is outside float32's range"),
    ("0 -3.5e38 0 0", r"'-3.5e38' at position 2 is outside float32's range"),
    ("0 0 nan 0", r"'nan' at position 3 is not a finite number"),
    ("inf 0 0 0", r"'inf' at position 1 is not a finite number"),
])
def test_z_text_outside_float32_is_refused_naming_the_field(text, message):
    with pytest.raises(DataError, match="z_start: " + message):
        run_task("style-sweep", FACTS, seed=0, z_start=text)


def test_z_sequences_and_attribute_sums_are_checked_too():
    with pytest.raises(DataError, match="z: 1e\\+39 at position 2"):
        FACTS.z([0, 1e39, 0, 0], None)
    with pytest.raises(DataError, match="vectors: inf at row 2, column 1"):
        check_finite([[0.0, 1.0], [np.inf, 0.0]], "vectors")
    assert parse_vector("3.4e38 0 0 0", 4)[0] == np.float32(3.4e38)  # the largest float32s are fine


@pytest.mark.parametrize("content, message", [
    ("1 2 3 4\n1e39 0 0 0\n", "1e\\+39 at row 2, column 1 is outside float32's range"),
    ("1 2 3 4\n0 nan 0 0\n", "nan at row 2, column 2"),
    ("", "holds no z vectors"),
    ("\n\n  \n", "holds no z vectors"),
    ("1 2 3 4\n1 2\n", "cannot read z vectors"),
    ("1 two 3 4\n", "cannot read z vectors"),
])
def test_bad_z_text_files(tmp_path, content, message):
    path = tmp_path / "z.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_z_file(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_bad_z_archives(tmp_path):
    np.savez(tmp_path / "inf.npz", z=np.array([[0, np.inf, 0, 0]], np.float32))
    np.savez(tmp_path / "empty.npz", z=np.zeros((0, 4), np.float32))
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    (tmp_path / "zero.npz").write_bytes(b"")
    np.savez(tmp_path / "cut.npz", z=np.ones((200, 4), np.float32))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:300])
    (tmp_path / "zero.h5").write_bytes(b"")
    for name, message in [("inf.npz", "inf at row 1, column 2"), ("empty.npz", "holds no z vectors"),
                          ("two.npz", "expected an array named 'z'"), ("zero.npz", "not a readable z file"),
                          ("cut.npz", "not a readable z file"), ("zero.h5", "not a readable z file"),
                          ("missing.npz", "not found")]:
        with pytest.raises(DataError, match=message) as caught:
            read_z_file(tmp_path / name)
        assert str(caught.value).startswith(str(tmp_path / name)) and "\n" not in str(caught.value)


def test_bad_attribute_vector_files(tmp_path):
    np.savez(tmp_path / "nan.npz", names=np.array(["Smiling", "Male"]),
             vectors=np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]], np.float32))
    np.savez(tmp_path / "big.npz", Smiling=np.array([0, 0, 1e39, 0]))
    (tmp_path / "zero.npz").write_bytes(b"")
    np.savez(tmp_path / "cut.npz", Smiling=np.ones(4000, np.float32))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:500])
    for name, message in [("nan.npz", "attribute 'Male': nan at position 2"),
                          ("big.npz", "attribute 'Smiling': 1e\\+39 at position 3"),
                          ("zero.npz", "not a readable .npz of attribute vectors"),
                          ("cut.npz", "not a readable .npz of attribute vectors")]:
        with pytest.raises(DataError, match=message) as caught:
            load_attribute_vectors(tmp_path / name, 4)
        assert str(caught.value).startswith(str(tmp_path / name))
        with pytest.raises(DataError, match=message):
            run_task("attributes", FACTS, seed=0, attributes_file=str(tmp_path / name), coefficients="Smiling=1")


def test_latent_cli_refuses_overflowing_z(tmp_path, capsys):
    job = make_job(tmp_path / "job")
    assert cli.main(["latent", "single", "--job", job, "--z", "0 0 1e39 0", "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "z: '1e39' at position 3 is outside float32's range")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["--classes", ""], "--classes is empty"),
    (["--classes", ","], "--classes is empty"),
    (["--classes", "0,3"], "--classes [3]: expected class ids in 0..2"),
    (["--classes", "1", "--per-class", "0"], "--per-class 0"),
    (["--classes", "1", "--batch-size", "0"], "--batch-size 0: expected an integer >= 1"),
    (["--classes", "1", "--batch-size", "-4"], "--batch-size -4"),
])
def test_infer_refuses_bad_options_before_loading_the_model(tmp_path, capsys, argv, message):
    job = make_job(tmp_path / "job")  # no checkpoint: the inputs must be refused first
    assert cli.main(["infer", "--job", job, *argv]) == 2
    one_error_line(capsys, message)


@pytest.mark.parametrize("name, content, message", [
    ("z.txt", "0 0 0 1e39\n", "at row 1, column 4 is outside float32's range"),
    ("z.txt", "", "holds no z vectors"),
    ("z.npz", b"", "not a readable z file"),
    ("z.npz", b"PK\x03\x04\x14\x00", "not a readable z file"),
])
def test_infer_refuses_bad_z_files_in_one_line(tmp_path, capsys, name, content, message):
    job = make_job(tmp_path / "job")
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert cli.main(["infer", "--job", job, "--z", str(path)]) == 2
    one_error_line(capsys, str(path), message)


def test_vectors_that_overflow_inside_a_task_are_refused_naming_the_task(tmp_path, recwarn):
    facts = ModelFacts(2, None, False, (8, 8, 1))
    with pytest.raises(DataError, match="analogy: the vectors computed from the given values: inf"):
        run_task("analogy", facts, seed=0, source="-3e38 0", sink1="3e38 0", sink2="3e38 0", rows=2, cols=2)
    np.savez(tmp_path / "v.npz", Smiling=np.array([1.0, 0.0]))
    with pytest.raises(DataError, match="attributes: the vectors computed"):
        run_task("attributes", facts, seed=0, attributes_file=str(tmp_path / "v.npz"), coefficients="Smiling=1e300")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
