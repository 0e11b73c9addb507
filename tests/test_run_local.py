"""examples/run_local.py: the --quick walkthrough end to end (every artefact exists and is
well-formed; a second run reuses every stage), and the stage bookkeeping (reuse, re-runs
after a changed option, resume, a failing stage)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import write_celeba_dir

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "run_local.py"
MNIST_STAGES = ["dataset", "train GAN", "evaluate", "class sweep", "style sweep", "train encoder",
                "encode digits", "styled sweep", "gallery"]
QUICK_STEPS = 20
Z_DIM, CLASSES = 100, 10
SWEEPS = {"class-sweep": (10, 10), "style-sweep": (10, 10), "class-sweep-styled": (10, 10)}  # rows, cols
SWEEP_FRAMES = 10  # class sweeps: --rows 10; the style sweep: --steps 10


def run_local_module():
    spec = importlib.util.spec_from_file_location("run_local", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walkthrough(work, *options, cache):
    """Run the script as a user would; returns (CompletedProcess, seconds)."""
    # a new user's shell: no TensorFlow log level set (the test process sets one)
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "DIGITS_GAN_VERBOSE")}
    env["DIGITS_GAN_CACHE"] = str(cache)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), *options], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    return done, time.perf_counter() - started


def stage_lines(stdout):
    """{stage label: the rest of its line}."""
    found = {}
    for line in stdout.splitlines():
        for label in MNIST_STAGES:
            if line.startswith(label + " "):
                found[label] = line[len(label):].strip()
    return found


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    base = tmp_path_factory.mktemp("walkthrough")
    work, cache = base / "work", base / "cache"
    first, first_s = walkthrough(work, "--quick", cache=cache)
    assert first.returncode == 0, first.stdout + first.stderr[-4000:]
    second, second_s = walkthrough(work, "--quick", cache=cache)
    return SimpleNamespace(work=work, first=first, first_s=first_s, second=second, second_s=second_s)


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def npz(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def decode(path):
    """Fully decode every frame of an image file; returns (size, mode, frame count)."""
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        for index in range(frames):
            image.seek(index)
            image.load()
        return image.size, image.mode, frames


def test_every_stage_prints_one_line_with_its_time_and_where_to_look(quick):
    lines = stage_lines(quick.first.stdout)
    assert list(lines) == MNIST_STAGES, quick.first.stdout
    for label, rest in lines.items():
        assert re.match(r"\d+ s {3}\S", rest), f"{label}: {rest}"
    assert "d_loss" in lines["train GAN"] and "g_loss" in lines["train GAN"]
    assert re.search(r"accuracy \d+\.\d% \(real \d+\.\d%\) +MNIST score \d+\.\d\d", lines["evaluate"])
    assert str(quick.work / "gan" / "gallery" / "index.html") in quick.first.stdout
    assert f"tensorboard --logdir {quick.work}" in quick.first.stdout


def test_no_tensorflow_log_lines_reach_the_terminal(quick):
    output = quick.first.stdout + quick.first.stderr
    assert not re.search(r"^[EWIF]\d{4} |cuInit|absl::", output, re.MULTILINE), output[-4000:]


def test_dataset_and_both_training_jobs(quick):
    meta = read_json(quick.work / "mnist" / "dataset.json")
    assert meta["stages"]["train_db"]["count"] == 4500 and meta["stages"]["val_db"]["count"] == 500
    for job in ("gan", "encoder"):
        config = read_json(quick.work / job / "config.json")
        assert config["total_steps"] == QUICK_STEPS
        state = (quick.work / job / "checkpoints" / "checkpoint").read_text(encoding="utf-8")
        assert f'model_checkpoint_path: "model.ckpt-{QUICK_STEPS}"' in state
        assert (quick.work / job / "metrics.csv").read_text(encoding="utf-8").count("\n") == 2  # header + 1 epoch
    assert read_json(quick.work / "encoder" / "config.json")["weights"] == str(quick.work / "gan")
    assert decode(quick.work / "gan" / "samples" / "reals.png")[2] == 1


def test_eval_json(quick):
    result = read_json(quick.work / "gan" / "eval.json")
    assert set(result) >= {"generated", "real", "ratios", "mode_collapse", "settings", "classifier", "summary"}
    assert set(result["generated"]) >= {"conditional_accuracy", "per_class_accuracy", "mnist_score",
                                        "frechet_distance"}
    assert set(result["real"]) >= {"accuracy", "mnist_score", "frechet_distance_floor"}
    assert result["settings"]["samples"] == 200
    assert 0.0 <= result["generated"]["conditional_accuracy"] <= 1.0
    assert 1.0 <= result["generated"]["mnist_score"] <= CLASSES


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_result_grid_and_gif(quick, name):
    rows, cols = SWEEPS[name]
    folder = quick.work / "gan" / "inference" / name
    result = npz(folder / "result.npz")
    assert result["images"].shape == (rows * cols, 28, 28, 1) and result["images"].dtype == np.uint8
    assert result["inputs"].shape == (rows * cols, Z_DIM + CLASSES)
    assert read_json(folder / "result.json")["grid"] == [rows, cols]
    latent = read_json(quick.work / "latent" / name / "dataset.json")["latent"]
    assert latent["frames"] == SWEEP_FRAMES
    (width, height), _, frames = decode(folder / "grid.png")
    assert width > cols * 28 and height > rows * 28
    (width, height), _, frames = decode(folder / "animation.gif")
    assert frames == SWEEP_FRAMES
    cells = cols  # DIGITS layout: every sweep runs down its grid's columns, all animated at once
    assert width * height >= cells * 28 * 28 and width > 28 and height > 28


def test_encoded_digits(quick):
    names = sorted(os.listdir(quick.work / "digits"))
    assert names == [f"digit-{k}.png" for k in range(CLASSES)]
    for name in names:
        assert decode(quick.work / "digits" / name)[:2] == ((28, 28), "L")
    result = npz(quick.work / "gan" / "inference" / "encoded-digits" / "result.npz")
    assert result["z"].shape == (CLASSES, Z_DIM) and np.isfinite(result["z"]).all()
    assert result["images"].shape == (CLASSES, 28, 28, 1) and result["images"].dtype == np.uint8
    assert result["inputs"].shape == (CLASSES, 28, 28, 1)


def test_styled_sweep_uses_the_best_encoded_digits_z(quick):
    encoded = npz(quick.work / "gan" / "inference" / "encoded-digits" / "result.npz")
    errors = np.mean((encoded["inputs"] / 255.0 - encoded["images"] / 255.0) ** 2, axis=(1, 2, 3))
    best = int(np.argmin(errors))
    inputs = npz(quick.work / "gan" / "inference" / "class-sweep-styled" / "result.npz")["inputs"]
    top_row = inputs.reshape(SWEEPS["class-sweep-styled"] + (-1,))[0]  # t = 0: [z, class c], as DIGITS
    np.testing.assert_allclose(top_row[:, :Z_DIM], np.broadcast_to(encoded["z"][best], (CLASSES, Z_DIM)))
    assert f"style of digit-{best}.png" in stage_lines(quick.first.stdout)["styled sweep"]


class _Sources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        self.sources += [value for name, value in attrs if name in ("src", "href") and value]


def test_gallery_references_existing_decodable_files(quick):
    sources = check_gallery(quick.work / "gan" / "gallery", list(SWEEPS) + ["encoded-digits"])
    assert len({s for s in sources if s.endswith(".gif")}) == len(SWEEPS)  # one GIF per sweep (linked and shown)


def check_gallery(folder, expected_names):
    parser = _Sources()
    parser.feed((folder / "index.html").read_text(encoding="utf-8"))
    assert parser.sources
    for source in parser.sources:
        assert not re.match(r"^[a-z]+:|^/", source), f"not a relative link: {source}"
        decode(folder / source)
    for name in expected_names:
        assert any(source.startswith(name) for source in parser.sources), name
    return parser.sources


def test_commands_sh_replays_every_stage(quick):
    text = (quick.work / "commands.sh").read_text(encoding="utf-8")
    for label in MNIST_STAGES:
        assert f"\n# {label}\n" in text
    assert text.count("digits-gan train ") == 2 and text.count("digits-gan infer ") == 4
    assert "--network network-mnist-encoder" in text and f"--weights {quick.work / 'gan'}" in text


def test_second_run_reuses_every_stage(quick):
    assert quick.second.returncode == 0, quick.second.stderr[-3000:]
    lines = stage_lines(quick.second.stdout)
    assert list(lines) == MNIST_STAGES
    assert all(rest.startswith("reused") for rest in lines.values()), quick.second.stdout
    assert lines["evaluate"][len("reused"):] == stage_lines(quick.first.stdout)["evaluate"].split(" s", 1)[1]
    assert quick.second_s < 30, f"a run reusing everything took {quick.second_s:.0f} s"


# ------------------------------------------------------------------------ CelebA

CELEBA_STAGES = ["dataset", "train GAN", "train encoder", "encode faces", "attribute vectors", "attribute edits",
                 "analogy grid", "gallery"]


def test_celeba_quick_walkthrough(tmp_path):
    rng = np.random.default_rng(0)
    count = 100
    colours = [tuple(int(v) for v in c) for c in rng.integers(0, 256, (count, 3))]
    write_celeba_dir(tmp_path / "celeba", colours, attributes=np.where(rng.random((count, 40)) < 0.5, 1, -1))
    work = tmp_path / "work"
    done, _ = walkthrough(work, "--quick", "--celeba", str(tmp_path / "celeba"), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    labels = [line[:18].strip() for line in done.stdout.splitlines()[1:len(CELEBA_STAGES) + 1]]
    assert labels == CELEBA_STAGES, done.stdout

    attributes = npz(work / "attributes.npz")
    assert len(attributes["names"]) == 40 and attributes["vectors"].shape == (40, Z_DIM)
    inference = work / "celeba-gan" / "inference"
    faces = npz(inference / "encoded-faces" / "result.npz")
    assert faces["z"].shape == (10, Z_DIM) and faces["images"].shape == (10, 32, 32, 3)

    edits = npz(inference / "attribute-edits" / "result.npz")
    rows = run_local_module().ATTRIBUTE_EDITS.count("|") + 1
    assert edits["images"].shape == (rows * 8, 32, 32, 3)
    np.testing.assert_allclose(edits["inputs"][0], faces["z"][0], rtol=1e-6)  # each row starts at face 0
    assert decode(inference / "attribute-edits" / "animation.gif")[2] == 8

    analogy = npz(inference / "analogy" / "result.npz")["inputs"].reshape(8, 8, Z_DIM)
    for corner, face in (((0, 0), 0), ((0, 7), 1), ((7, 0), 2)):
        np.testing.assert_allclose(analogy[corner], faces["z"][face], rtol=1e-6)
    assert decode(inference / "analogy" / "animation.gif")[2] == 2 * (8 + 8) - 4  # the ring around the grid
    check_gallery(work / "celeba-gan" / "gallery", ["encoded-faces", "attribute-edits", "analogy"])


# ------------------------------------------------------------------------ bookkeeping

def fake_stage(run_local, work, key, options, calls, needs=(), fail=False):
    """A stage writing WORK/KEY.txt; `calls` records (key, resume) per run."""
    output = Path(work) / f"{key}.txt"

    def run(resume):
        calls.append((key, resume))
        if fail:
            raise run_local.StageFailed("boom")
        output.write_text(key, encoding="utf-8")

    return run_local.Stage(key, key, options, run, output.is_file, lambda: key, tuple(needs))


def run_all(run_local, work, options_a, calls, fresh=False, fail_b=False):
    walk = run_local.Walkthrough(work, fresh=fresh)
    stages = [fake_stage(run_local, work, "a", options_a, calls),
              fake_stage(run_local, work, "b", {}, calls, needs=["a"], fail=fail_b),
              fake_stage(run_local, work, "c", {}, calls)]
    for stage in stages:
        walk.run(stage)


def test_changed_option_reruns_the_stage_and_its_dependants_only(tmp_path, capsys):
    run_local = run_local_module()
    calls = []
    run_all(run_local, tmp_path, {"steps": 1}, calls)
    run_all(run_local, tmp_path, {"steps": 1}, calls)
    assert calls == [("a", False), ("b", False), ("c", False)]
    run_all(run_local, tmp_path, {"steps": 2}, calls)
    assert calls[3:] == [("a", False), ("b", False)]
    (tmp_path / "c.txt").unlink()  # an incomplete output makes the stage run again
    run_all(run_local, tmp_path, {"steps": 2}, calls)
    assert calls[5:] == [("c", True)]
    run_all(run_local, tmp_path, {"steps": 2}, calls, fresh=True)
    assert calls[6:] == [("a", False), ("b", False), ("c", False)]
    assert "reused" in capsys.readouterr().out


def test_unfinished_stage_resumes_and_its_dependants_wait(tmp_path):
    run_local = run_local_module()
    calls = []
    with pytest.raises(run_local.StageFailed):
        run_all(run_local, tmp_path, {}, calls, fail_b=True)
    assert calls == [("a", False), ("b", False)]
    run_all(run_local, tmp_path, {}, calls)
    assert calls[2:] == [("b", True), ("c", False)]


def test_failing_stage_stops_with_its_error_line_and_a_nonzero_exit(tmp_path):
    empty = tmp_path / "not-celeba"
    empty.mkdir()
    done, _ = walkthrough(tmp_path / "work", "--celeba", str(empty), "--quick", cache=tmp_path / "cache")
    assert done.returncode == 1
    assert "digits-gan: error:" in done.stderr
    assert "run_local: error: stage 'dataset' failed" in done.stderr
    assert "train GAN" not in done.stdout
