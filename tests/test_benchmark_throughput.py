"""benchmarks/train_throughput.py: its --quick run in GPU mode (on this CPU) and the
variants each mode times, so the benchmark cannot rot between runs on a GPU machine."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_of_each_mode():
    bench = load_benchmark()
    labels = [variant.label for variant in bench.variants(bench.parse_args([]))]
    assert labels == ["ours", "tutorial", "tutorial-xla", "graph-v1", "keras-fit"]
    labels = [variant.label for variant in bench.variants(bench.parse_args(["--gpu"]))]
    assert labels == ["ours --xla off", "ours --xla on", "tutorial", "tutorial mixed", "tutorial-xla",
                      "tutorial-xla mixed", "graph-v1", "keras-fit", "keras-fit mixed"]


def test_quick_gpu_mode_writes_its_figures(tmp_path, capsys):
    bench = load_benchmark()
    figures, table = tmp_path / "figures.json", tmp_path / "figures.md"
    assert bench.main(["--quick", "--gpu", "--models", "mnist", "--sides", "tutorial", "--json", str(figures),
                       "--markdown", str(table)]) == 0
    summary = json.loads(figures.read_text())["summaries"][0]
    rows = {row["side"]: row for row in summary["rows"]}
    assert set(rows) == {"tutorial", "tutorial mixed"}
    assert all(row["median"] > 0 and row["cpu_ms"] > 0 and row["faults"] >= 0 for row in rows.values())
    assert summary["peak_gflops"] > 0 and summary["best_reference"] in rows
    assert "| tutorial mixed |" in table.read_text() and "| tutorial mixed |" in capsys.readouterr().out


def test_quick_run_of_ours_leaves_no_temporary_files(tmp_path, monkeypatch):
    # The side workers end with os._exit (no clean-up of their own), so whatever they write
    # must live in the driver's temporary folder.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    bench = load_benchmark()
    figures = tmp_path / "figures.json"
    assert bench.main(["--quick", "--models", "mnist", "--sides", "ours", "--json", str(figures)]) == 0
    rows = json.loads(figures.read_text())["summaries"][0]["rows"]
    assert [row["side"] for row in rows] == ["ours"] and rows[0]["median"] > 0
    assert list(scratch.iterdir()) == []


def test_round_ratios_pair_ours_with_the_best_reference_of_each_round():
    bench = load_benchmark()

    def windows(*rates):
        return [{"images_per_sec": rate} for rate in rates]

    rounds = {"ours": windows(100, 90, 120), "graph-v1": windows(50, 100, 100), "tutorial": windows(80, 60, 150),
              "peak": windows(1, 1, 1)}
    assert bench.round_ratios(rounds, "ours", {"graph-v1": 0, "tutorial": 0}) == [1.25, 0.9, 0.8]
    assert bench.round_ratios(rounds, None, {"graph-v1": 0}) == []
