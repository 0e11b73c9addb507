"""The web UI's jobs: its own background runs, kept on disk so they survive a server
restart, and the datasets and training jobs the job store finds under its roots.

    JOBS_DIR/<job id>/job.json      kind, name, commands, status, pid, times, exit code
    JOBS_DIR/<job id>/log.txt       the commands' output, one line per line
    JOBS_DIR/<job id>/progress.json the latest progress bar: {done, total, text}

A job runs as ``python -m digits_gan_plugin.webapp.runner JOBDIR`` in its own session:
the runner executes the job's commands in order and records how they ended, so a job
finishes correctly even when the server is stopped meanwhile. Statuses: running, done,
error, stopped (Stop: SIGINT, the trainer checkpoints and exits 130), interrupted (the
runner died without recording an end, e.g. the machine restarted).

A found dataset or training job (see store.py) is a Job too; its record folder
(``JOBS_DIR/found-<hash>``) is only created when the UI runs something for it (Resume).
"""
import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

from .. import jobdir
from ..errors import DataError
from ..files import write_json_atomic
from .store import FOUND_PREFIX, RECORD_FILE, Store

JOB_FILE = RECORD_FILE
LOG_FILE = "log.txt"
PROGRESS_FILE = "progress.json"
RUNNING, DONE, ERROR, STOPPED, INTERRUPTED = "running", "done", "error", "stopped", "interrupted"
FINISHED = (DONE, ERROR, STOPPED, INTERRUPTED)
KINDS = ("dataset", "model", "inference", "evaluation")
MAX_NAME_CHARS = 80
# Characters that make a name display as something else (right-to-left overrides, isolates).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# The folder holding the digits_gan_plugin package: children import it from there.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Where each kind keeps its output inside a web job folder (records written before
# 'target' was recorded).
_TARGET_SUBFOLDER = {"dataset": "dataset", "model": "model", "evaluation": "model"}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cli_command(*args):
    """argv running ``digits-gan ARGS`` with this interpreter (no installed script needed)."""
    return [sys.executable, "-m", "digits_gan_plugin.cli", *map(str, args)]


def runner_env():
    """Environment of runner processes: this package importable, TensorFlow's C++ and
    absl start-up lines silenced (users may still ask for them by setting the variable)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 2 still lets "failed call to cuInit" through
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def process_alive(pid):
    """True when `pid` is a live (non-zombie) job runner process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True  # no procfs: trust kill(0)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return state != "Z" and b"digits_gan_plugin.webapp.runner" in cmdline


def check_name(name):
    """A job name stripped; DataError when empty or too long."""
    name = " ".join(str(name or "").split())
    if not name:
        raise DataError("name: a job needs a name")
    if any(unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS for char in name):
        raise DataError("name: control characters (NUL, escape, text-direction overrides) are not allowed")
    if len(name) > MAX_NAME_CHARS:
        raise DataError(f"name: at most {MAX_NAME_CHARS} characters, got {len(name)}")
    return name


class Job:
    """One dataset, training job, inference run or evaluation shown by the UI.

    record_dir: where its job.json, log and progress live; target: the dataset folder,
    training job folder or inference result folder itself; found: made outside the
    web UI (CLI, walkthrough), listed by the job store.
    """

    def __init__(self, record_dir, data, target=None, found=False):
        self.record_dir = Path(record_dir)
        self.data = data
        self.found = found
        recorded = data.get("target") or data.get("result")
        subfolder = _TARGET_SUBFOLDER.get(data.get("kind"))
        self.target = Path(target or recorded or (self.record_dir / subfolder if subfolder else self.record_dir))

    id = property(lambda self: self.record_dir.name)
    kind = property(lambda self: self.data.get("kind"), doc="dataset, model, inference or evaluation")
    name = property(lambda self: self.data.get("name") or self.id)
    status = property(lambda self: self.data.get("status", DONE))
    created = property(lambda self: self.data.get("created"))
    started = property(lambda self: self.data.get("started"))
    finished = property(lambda self: self.data.get("finished"))
    exit_code = property(lambda self: self.data.get("exit_code"))
    error = property(lambda self: self.data.get("error"), doc="the failed command's one-line error")
    commands = property(lambda self: self.data.get("commands") or [])
    pid = property(lambda self: self.data.get("pid"))
    # datasets
    plugin_title = property(lambda self: self.data.get("plugin_title") or self.data.get("plugin") or "")
    # models
    network = property(lambda self: self.data.get("network") or "")
    dataset_id = property(lambda self: self.data.get("dataset"))
    dataset_name = property(lambda self: self.data.get("dataset_name") or "")
    # inference runs and evaluations: the model they belong to
    model_id = property(lambda self: self.data.get("model"))
    task = property(lambda self: self.data.get("task") or "")
    seed = property(lambda self: self.data.get("seed"))
    checkpoint = property(lambda self: self.data.get("checkpoint") or "last")
    view_plugin = property(lambda self: self.data.get("view_plugin") or "gan-view")
    view_options = property(lambda self: dict(self.data.get("view_options") or {}))
    latent_dir = property(lambda self: Path(self.data["latent"]) if self.data.get("latent")
                          else self.record_dir / "latent", doc="the inference dataset a run generated from")

    @property
    def ended(self):
        """True once the job's commands are over (done, error, stopped or interrupted)."""
        return self.status in FINISHED

    def path(self, *parts):
        """A path inside the job's record folder (log, progress, uploads)."""
        return self.record_dir.joinpath(*parts)

    def save(self):
        self.record_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(JOB_FILE), self.data)

    def log_tail(self, max_chars=6000):
        try:
            with open(self.path(LOG_FILE), "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - max_chars))
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def progress(self):
        """{done, total, text} of the latest progress bar, or None."""
        try:
            return json.loads(self.path(PROGRESS_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None


def _read_record(folder):
    try:
        data = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") in KINDS else None


class JobManager:
    """Creates, lists, starts, stops, renames and deletes the jobs under `jobs_dir`,
    and lists what the job store finds under `jobs_dir` and `roots`."""

    def __init__(self, jobs_dir, roots=()):
        self.jobs_dir = Path(jobs_dir).resolve()
        self.store = Store([self.jobs_dir, *roots])
        self.children = {}  # job id -> Popen of the runners this server started (reaped by poll)
        self.lock = threading.Lock()  # one start/delete at a time: four Resume clicks start one run
        self.starting = set()  # ids of jobs whose runner is being spawned (recorded running, no pid yet)
        self.recover()

    def recover(self):
        """Mark jobs recorded as running whose runner is gone as interrupted."""
        for job in self.all():
            self.refresh(job)

    def refresh(self, job):
        """Re-read a running job's state; mark it interrupted when its runner is gone."""
        if job.status != RUNNING or not job.path(JOB_FILE).is_file() or job.id in self.starting:
            return job
        child = self.children.get(job.id)
        if child is not None and child.poll() is None:
            return job
        if child is not None or not process_alive(job.pid):
            self.children.pop(job.id, None)
            job.data = _read_record(job.record_dir) or job.data  # the runner may just have ended
            if job.status == RUNNING:
                job.data.update(status=INTERRUPTED, finished=now())
                job.save()
        return job

    # ------------------------------------------------------------------ listing
    def _own_folders(self):
        try:
            entries = sorted(os.scandir(self.jobs_dir), key=lambda entry: entry.name, reverse=True)
        except OSError:
            return []
        return [Path(entry.path) for entry in entries if _JOB_ID.match(entry.name) and not entry.name.startswith(
            FOUND_PREFIX) and entry.is_dir(follow_symlinks=False)]

    def _found_job(self, item):
        data = {"kind": item.kind, "name": item.name, "status": DONE, "created": _stamp(item.modified)}
        if item.kind == "model":
            data.update(network=Path(str(item.meta.get("network", ""))).stem, dataset_name=Path(
                str(item.meta.get("dataset", ""))).name, dataset=self._dataset_id(item.meta.get("dataset")))
            if not jobdir.has_checkpoint(item.path):
                data["status"] = STOPPED
        elif item.kind == "dataset":
            data["plugin_title"] = item.meta.get("plugin_id", "")
        else:
            data.update(model=item.meta.get("model"), task=item.meta.get("task") or item.name,
                        seed=(item.meta.get("latent") or {}).get("seed", item.meta.get("seed")),
                        latent=item.meta.get("dataset"))
        record = _read_record(self.jobs_dir / item.id)  # a Resume or rename of it in the UI
        if record:
            data.update(record)
        return self.refresh(Job(self.jobs_dir / item.id, data, target=item.path, found=True))

    def _dataset_id(self, path):
        """The id of the dataset at `path` (a web job's or a found one), or None."""
        if not path:
            return None
        for job in self.all("dataset"):
            if job.target.resolve() == Path(path).resolve():
                return job.id
        return None

    def all(self, kind=None):
        """Every job (own ones and found ones) of `kind`, newest first."""
        jobs = []
        for folder in self._own_folders():
            data = _read_record(folder)
            if data and (kind is None or data["kind"] == kind):
                jobs.append(Job(folder, data))
        return jobs + [self._found_job(item) for item in self.store.items(kind)]

    def problems(self):
        """One line per job or dataset that cannot be listed because its record cannot be read."""
        broken = [f"{folder / JOB_FILE}: not a readable job record" for folder in self._own_folders()
                  if (folder / JOB_FILE).is_file() and _read_record(folder) is None]
        return broken + self.store.problems()

    def get(self, job_id):
        """The job with this id, or None (ids are folder names made by `new_folder` or
        found ids; a job folder that resolves outside the jobs dir is refused)."""
        if not job_id or not _JOB_ID.match(job_id):
            return None
        if job_id.startswith(FOUND_PREFIX):
            item = self.store.get(job_id)
            return self._found_job(item) if item else None
        folder = self.jobs_dir / job_id
        if folder.is_symlink() or folder.resolve().parent != self.jobs_dir:
            return None
        data = _read_record(folder)
        return self.refresh(Job(folder, data)) if data else None

    # ------------------------------------------------------------------ changes
    def new_folder(self):
        """A fresh job folder named like DIGITS' job ids: 20261122-094500-1a2b."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = self.jobs_dir / f"{stamp}-{secrets.token_hex(2)}"
        folder.mkdir(parents=True)
        return folder

    @contextlib.contextmanager
    def new_job_folder(self):
        """new_folder() for the block that fills it and creates its job; removed again when
        the block fails before the job's runner started (a full disk while saving an
        upload or the record), so no half-made job is left."""
        folder = self.new_folder()
        try:
            yield folder
        except BaseException:
            if folder.name not in self.children:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def create(self, folder, kind, name, commands, **extra):
        """Record a job in `folder` (from new_folder) and start it."""
        job = Job(folder, {"kind": kind, "name": check_name(name), "created": now(),
                           **{key: str(value) if isinstance(value, Path) else value for key, value in extra.items()}})
        self.store.forget()
        return self.start(job, commands)

    def start(self, job, commands):
        """Run `commands` (lists of argv) for `job` in a detached runner process; None
        when the job is running already (checked under the lock, so concurrent clicks
        start one run)."""
        with self.lock:
            job.data = _read_record(job.record_dir) or job.data  # what other requests recorded meanwhile
            if self.refresh(job).status == RUNNING and job.path(JOB_FILE).is_file():
                return None
            job.data.update(commands=[list(map(str, c)) for c in commands], status=RUNNING, started=now(),
                            finished=None, exit_code=None, error=None, pid=None)
            job.data.setdefault("created", job.started)
            self.starting.add(job.id)
            try:
                job.save()
                job.path(PROGRESS_FILE).unlink(missing_ok=True)
                with open(os.devnull, "rb") as devnull:
                    child = subprocess.Popen(
                        [sys.executable, "-m", "digits_gan_plugin.webapp.runner", str(job.record_dir)],
                        stdin=devnull, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runner_env(),
                        cwd=str(job.record_dir), start_new_session=True)
                self.children[job.id] = child
                job.data = _read_record(job.record_dir) or job.data
                if job.status == RUNNING and job.pid is None:  # the runner records it too, first thing
                    job.data["pid"] = child.pid  # this copy covers a server restart before that
                    job.save()
            finally:
                self.starting.discard(job.id)
            return job

    def stop(self, job):
        """Ask a running job to stop: SIGINT to its runner, which forwards it."""
        child = self.children.get(job.id)
        ours = child is not None and child.poll() is None
        pid = child.pid if ours else job.pid
        if job.status == RUNNING and (ours or process_alive(pid)):
            os.kill(pid, signal.SIGINT)
            return True
        return False

    def rename(self, job, name):
        job.data["name"] = check_name(name)
        job.save()
        self.store.forget()

    def delete(self, job):
        """Remove a job made by the UI: its folder, and an inference run's result folder
        (moved aside first, so a half-deleted job is never listed)."""
        if job.found:
            raise DataError(f"{job.target}: made outside the web UI; delete it with your file manager")
        with self.lock:
            if self.refresh(job).status == RUNNING:
                raise DataError("the job is running: stop it first")
            doomed = [job.record_dir]
            if job.kind == "inference" and job.target.is_dir() and job.target != job.record_dir:
                doomed.append(job.target)
            if job.kind == "model":  # its inference runs and evaluations go with it
                doomed += [run.record_dir for run in self.runs_of(job) if not run.found and run.status != RUNNING]
            for folder in doomed:
                aside = folder.with_name(f".deleted-{folder.name}-{secrets.token_hex(2)}")
                os.replace(folder, aside)
                shutil.rmtree(aside, ignore_errors=True)
        self.store.forget()

    def runs_of(self, model):
        """The inference runs and evaluations of `model`, newest first."""
        return [job for job in self.all() if job.kind in ("inference", "evaluation") and job.model_id == model.id]


def _stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")
