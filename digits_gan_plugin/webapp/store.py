"""The job store: every dataset and training job under some root folders, found by its
own metadata (a dataset's ``dataset.json``, a training job's config), so datasets and
jobs made by the CLI or the walkthrough show up in the web UI and in ``digits-gan jobs``
without an import step. Nothing is written here; no Flask, no TensorFlow.

A found item is identified by a short hash of its real path (``found-1a2b3c4d5e6f``),
stable across restarts. Folders holding a web-UI job record (``job.json``) are the web
UI's own jobs and are left to ``jobs.JobManager``.
"""
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .. import jobdir
from ..errors import DigitsGanError

DATASET_FILE = "dataset.json"
RECORD_FILE = "job.json"  # a web-UI job record (see jobs.py)
FOUND_PREFIX = "found-"
MAX_DEPTH = 4  # root/a/b/c/d: deep enough for the walkthrough's latent/ and a user's project folders
MAX_FOLDERS = 5000  # a home folder given as a root is not walked to the end
CACHE_SECONDS = 5.0
# Folders inside datasets and jobs, and other places that never hold one.
NOT_JOBS = {"checkpoints", "events", "samples", "train_db", "val_db", "test_db", "features", "labels",
            "__pycache__", "node_modules", "site-packages", "gallery"}


def found_id(path):
    """The stable id of a found dataset or job at `path`."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()
    return FOUND_PREFIX + digest[:12]


def read_json(path):
    """A JSON object from `path`, or None when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def dataset_meta(folder, problems=None):
    """dataset.json of a DIGITS-layout dataset folder (not an inference input), or None;
    why a dataset.json there is unreadable goes into `problems` when given."""
    path = Path(folder) / DATASET_FILE
    meta = read_json(path)
    if meta is None or not isinstance(meta.get("stages"), dict) or meta.get("latent"):
        if problems is not None and path.is_file() and not (meta or {}).get("latent"):
            problems.append(f"{path}: not a readable dataset record (expected a JSON object with 'stages')")
        return None
    return meta


def training_config(folder, problems=None):
    """config.json of a training job folder, or None; why a config.json there that is
    not valid JSON cannot be read goes into `problems` when given (a valid one without
    a 'model' section is some other program's file)."""
    if not jobdir.is_job(folder):
        return None
    try:
        config = jobdir.read_config(folder)
    except DigitsGanError as error:
        if problems is not None:
            problems.append(str(error))
        return None
    return config if isinstance(config.get("model"), dict) else None


@dataclass(frozen=True)
class Found:
    """A dataset, training job or inference result found on disk. kind: 'dataset',
    'model' or 'inference' (meta: its result.json plus 'model', the job's id)."""

    id: str
    kind: str
    path: Path
    name: str
    meta: dict
    modified: float


def _found(kind, folder, root, meta):
    relative = folder.relative_to(root) if folder != root else Path(folder.name)
    return Found(found_id(folder), kind, folder, str(relative), meta, folder.stat().st_mtime)


def scan(roots, problems=None):
    """[Found] under `roots` (real paths; symlinked folders that leave every root are
    skipped), newest first. problems: a list for one line per dataset or job whose
    record cannot be read (it is not listed)."""
    real_roots = [Path(root).resolve() for root in roots]
    found, seen, visited = [], set(), 0
    for root in real_roots:
        stack = [(root, 0)]
        while stack and visited < MAX_FOLDERS:
            folder, depth = stack.pop()
            visited += 1
            real = folder.resolve()
            if real in seen or not any(real == r or r in real.parents for r in real_roots):
                continue
            seen.add(real)
            if (real / RECORD_FILE).is_file() and real != root:
                continue  # a web-UI job: listed by the job manager
            meta = dataset_meta(real, problems)
            if meta is not None:
                found.append(_found("dataset", real, root, meta))
                continue
            config = training_config(real, problems)
            if config is not None:
                found.append(_found("model", real, root, config))
                found += _results(real, root)
                continue
            if depth < MAX_DEPTH:
                stack += [(child, depth + 1) for child in _subfolders(real)]
    return sorted(found, key=lambda item: item.modified, reverse=True)


def _results(job_folder, root):
    """The inference results inside a found training job (meta: result.json + 'model')."""
    results = []
    for folder in jobdir.find_results(job_folder):
        info = read_json(jobdir.result_files(folder)[1]) or {}
        results.append(_found("inference", folder.resolve(), root, dict(info, model=found_id(job_folder))))
    return results


def _subfolders(folder):
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [Path(entry.path) for entry in entries
            if not entry.name.startswith(".") and entry.name not in NOT_JOBS and _is_dir(entry)]


def _is_dir(entry):
    try:
        return entry.is_dir()
    except OSError:
        return False


class Store:
    """scan(roots), cached for a few seconds (pages poll; a scan reads many folders)."""

    def __init__(self, roots):
        self.roots = [Path(root).resolve() for root in roots]
        self._items, self._problems, self._when = [], [], None

    def items(self, kind=None):
        if self._when is None or time.monotonic() - self._when > CACHE_SECONDS:
            self._problems = []
            self._items, self._when = scan(self.roots, self._problems), time.monotonic()
        return [item for item in self._items if kind is None or item.kind == kind]

    def problems(self):
        """One line per found dataset or job whose record cannot be read (not listed)."""
        self.items()
        return list(self._problems)

    def forget(self):
        """Drop the cache (after a job was created, deleted or renamed)."""
        self._when = None

    def get(self, item_id):
        return next((item for item in self.items() if item.id == item_id), None)

    def find_path(self, path):
        """The Found at real path `path`, or None."""
        real = Path(path).resolve()
        return next((item for item in self.items() if item.path == real), None)
