"""Which model definitions can train a dataset, known before a job exists.

A definition fits when ``digits-gan train --dry-run`` builds its graph on the dataset
(shapes, classes, loss entries: the same code a real run uses). The checks of one
dataset run in one background process (TensorFlow is imported once):

    python -m digits_gan_plugin.webapp.fitcheck CACHE_DIR DATASET NETWORK...

Each result is cached in the user's cache folder under a key of the dataset's and the
model file's real paths and modification times, so a page asks again for free.
"""
import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..digits_api import TRAIN_DB
from ..files import write_json_atomic
from .jobs import runner_env

CHECK_TIMEOUT_S = 300
NO_TRAIN_DB = {"fits": False, "reason": "the dataset has no train_db stage to train on", "facts": {}}


def cache_dir():
    """$XDG_CACHE_HOME/digits-gan/network-fit (default ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "digits-gan" / "network-fit"


def cache_key(dataset, network):
    parts = []
    for path in (Path(dataset) / "dataset.json", Path(network)):
        real = path.resolve()
        parts.append(f"{real}:{real.stat().st_mtime_ns if real.exists() else 0}")
    return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:20]


def check_one(dataset, network):
    """{fits, reason, facts} of `network` on `dataset`, by a graph-building dry run
    (in this process: TensorFlow is imported here)."""
    from .. import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory(prefix="digits-gan-fit-") as scratch, \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(["train", "--dataset", str(dataset), "--network", str(network), "--out",
                             os.path.join(scratch, "job"), "--dry-run", "--batch-size", "2", "--max-steps", "1"])
        except SystemExit as exit_:  # argparse refusing a flag
            code = exit_.code
        except Exception as error:  # noqa: BLE001 - a model file may raise anything; report it, check the rest
            code, stderr = 1, io.StringIO(f"{type(error).__name__}: {error}")
    if code == 0:
        text = stdout.getvalue()
        try:
            config = json.loads(text[text.index("{"):])
        except ValueError:
            config = {}
        return {"fits": True, "reason": "", "facts": config.get("model") or {}}
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    reason = lines[-1] if lines else f"the dry run failed (exit code {code})"
    return {"fits": False, "reason": short_reason(reason, network), "facts": {}}


def short_reason(error_line, network):
    """The error line of a failed dry run as the page's table shows it, in the row of
    `network` on the dataset already named above: without 'digits-gan: error: ', the model
    file's path and line, and 'ValueError while building the train tower on <data>: '."""
    reason = error_line.replace("digits-gan: error: ", "")
    reason = re.sub(rf"^\S*{re.escape(Path(network).name)}(:\d+)?: ", "", reason)
    return re.sub(r"^\w+ while building the \w+ tower on [^:]*: ", "", reason)


def main(argv):
    cache, dataset, networks = Path(argv[0]), argv[1], argv[2:]
    for network in networks:
        result = check_one(dataset, network)
        write_json_atomic(cache / f"{cache_key(dataset, network)}.json", result)
    return 0


class FitChecker:
    """Cached fit checks, run in a background process per dataset."""

    def __init__(self, folder=None):
        self.folder = Path(folder) if folder else cache_dir()
        self.running = {}  # dataset real path -> Popen
        self.lock = threading.Lock()

    def cached(self, dataset, network):
        try:
            return json.loads((self.folder / f"{cache_key(dataset, network)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def results(self, dataset, networks):
        """{network: result or None (being checked)}; starts a check of the missing ones."""
        if not _trainable(dataset):
            return {str(network): NO_TRAIN_DB for network in networks}
        found = {str(network): self.cached(dataset, network) for network in networks}
        missing = [network for network, result in found.items() if result is None]
        if missing:
            self._start(dataset, missing)
        return found

    def pending(self, dataset):
        child = self.running.get(str(Path(dataset).resolve()))
        return child is not None and child.poll() is None

    def _start(self, dataset, networks):
        key = str(Path(dataset).resolve())
        with self.lock:
            if self.pending(dataset):
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            self.running[key] = subprocess.Popen(
                [sys.executable, "-m", "digits_gan_plugin.webapp.fitcheck", str(self.folder), key, *networks],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runner_env())

    def check_now(self, dataset, network):
        """The result for one network, waiting for the check when it is not cached."""
        result = self.cached(dataset, network) if _trainable(dataset) else NO_TRAIN_DB
        if result is not None:
            return result
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "digits_gan_plugin.webapp.fitcheck", str(self.folder),
                   str(Path(dataset).resolve()), str(network)]
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=runner_env(), timeout=CHECK_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return {"fits": False, "reason": f"the graph-build check took more than {CHECK_TIMEOUT_S} s", "facts": {}}
        return self.cached(dataset, network) or {"fits": False, "reason": "the graph-build check failed", "facts": {}}


def _trainable(dataset):
    return (Path(dataset) / TRAIN_DB).is_dir()


def rank(results, dataset_meta):
    """Network names ordered best fit first: fitting ones (generators before encoders,
    conditional ones for labelled datasets, names that mention the dataset's plugin),
    then the misfits."""
    plugin = str((dataset_meta or {}).get("plugin_id") or "").lower()
    labelled = bool((dataset_meta or {}).get("num_classes"))

    def score(item):
        name, result = item
        if result is None:
            return (1, 0, 0, 0, name)
        facts = result.get("facts") or {}
        return (0 if result["fits"] else 2, 0 if facts.get("inference_input", "z") == "z" else 1,
                0 if bool(facts.get("conditional")) == labelled else 1,
                0 if plugin and plugin in Path(name).stem.lower() else 1, len(name), name)

    return [name for name, _ in sorted(results.items(), key=score)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
