"""Background jobs of the web UI, kept on disk so they survive a server restart.

    JOBS_DIR/<job id>/job.json      kind, name, commands, status, pid, times, exit code
    JOBS_DIR/<job id>/log.txt       the commands' output, one line per line
    JOBS_DIR/<job id>/progress.json the latest progress bar: {done, total, text}

A job runs as ``python -m digits_gan_plugin.webapp.runner JOBDIR`` in its own session:
the runner executes the job's commands in order and records how they ended, so a job
finishes correctly even when the server is stopped meanwhile. Statuses: running, done,
error, stopped (Stop: SIGINT, the trainer checkpoints and exits 130), interrupted (the
runner died without recording an end, e.g. the machine restarted).
"""
import datetime
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from ..files import write_json_atomic

JOB_FILE = "job.json"
LOG_FILE = "log.txt"
PROGRESS_FILE = "progress.json"
RUNNING, DONE, ERROR, STOPPED, INTERRUPTED = "running", "done", "error", "stopped", "interrupted"
FINISHED = (DONE, ERROR, STOPPED, INTERRUPTED)
# The folder holding the digits_gan_plugin package: children import it from there.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cli_command(*args):
    """argv running ``digits-gan ARGS`` with this interpreter (no installed script needed)."""
    return [sys.executable, "-m", "digits_gan_plugin.cli", *map(str, args)]


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


class Job:
    """One job folder. `data` is its job.json dict."""

    def __init__(self, folder, data):
        self.folder, self.data = Path(folder), data

    @property
    def id(self):
        return self.folder.name

    def __getattr__(self, name):
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def path(self, *parts):
        return self.folder.joinpath(*parts)

    @property
    def ended(self):
        """True once the job's commands are over (done, error, stopped or interrupted)."""
        return self.data["status"] in FINISHED

    def save(self):
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


class JobManager:
    """Creates, lists, starts and stops the jobs under `jobs_dir`."""

    def __init__(self, jobs_dir):
        self.jobs_dir = Path(jobs_dir).resolve()
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.children = {}  # job id -> Popen of the runners this server started (reaped by poll)
        self.recover()

    def recover(self):
        """Mark jobs recorded as running whose runner is gone as interrupted."""
        for job in self.all():
            self.refresh(job)

    def refresh(self, job):
        """Re-read a running job's state; mark it interrupted when its runner is gone."""
        if job.status != RUNNING:
            return job
        child = self.children.get(job.id)
        if child is not None and child.poll() is None:
            return job
        if child is not None or not process_alive(job.data.get("pid")):
            self.children.pop(job.id, None)
            job.data = json.loads(job.path(JOB_FILE).read_text(encoding="utf-8"))  # the runner may just have ended
            if job.status == RUNNING:
                job.data.update(status=INTERRUPTED, finished=now())
                job.save()
        return job

    def all(self, kind=None):
        jobs = []
        for job_file in sorted(self.jobs_dir.glob(f"*/{JOB_FILE}"), reverse=True):
            try:
                job = Job(job_file.parent, json.loads(job_file.read_text(encoding="utf-8")))
            except ValueError:
                continue
            if kind is None or job.kind == kind:
                jobs.append(job)
        return jobs

    def get(self, job_id):
        """The job with this id, or None (ids are folder names made by `new_id`)."""
        if not job_id or "/" in job_id or job_id.startswith("."):
            return None
        job_file = self.jobs_dir / job_id / JOB_FILE
        if not job_file.is_file():
            return None
        return self.refresh(Job(job_file.parent, json.loads(job_file.read_text(encoding="utf-8"))))

    def new_folder(self):
        """A fresh job folder named like DIGITS' job ids: 20261122-094500-1a2b."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = self.jobs_dir / f"{stamp}-{secrets.token_hex(2)}"
        folder.mkdir()
        return folder

    def create(self, folder, kind, name, commands, **extra):
        """Record a job in `folder` (from new_folder) and start it."""
        job = Job(folder, {"kind": kind, "name": name, "created": now(), **extra})
        return self.start(job, commands)

    def start(self, job, commands):
        """Run `commands` (lists of argv) for `job` in a detached runner process."""
        job.data.update(commands=[list(map(str, c)) for c in commands], status=RUNNING, started=now(),
                        finished=None, exit_code=None, pid=None)
        job.save()
        job.path(PROGRESS_FILE).unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
        with open(os.devnull, "rb") as devnull:
            child = subprocess.Popen([sys.executable, "-m", "digits_gan_plugin.webapp.runner", str(job.folder)],
                                     stdin=devnull, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, cwd=str(job.folder), start_new_session=True)
        self.children[job.id] = child
        job.data["pid"] = child.pid  # written again by the runner; this copy covers a restart meanwhile
        job.save()
        return job

    def stop(self, job):
        """Ask a running job to stop: SIGINT to its runner, which forwards it."""
        child = self.children.get(job.id)
        ours = child is not None and child.poll() is None
        pid = child.pid if ours else job.data.get("pid")
        if job.status == RUNNING and (ours or process_alive(pid)):
            os.kill(pid, signal.SIGINT)
            return True
        return False
