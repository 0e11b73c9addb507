"""TensorBoard for a job, started on demand on 127.0.0.1 (one per job; they are
stopped when the server exits)."""
import atexit
import importlib.util
import socket
import subprocess
import sys
import threading

from flask import current_app

from .. import jobdir
from ..errors import DataError
from .jobs import runner_env


def available():
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoards:
    """{job id: (Popen, url)} of the TensorBoards this server started."""

    def __init__(self):
        self.running = {}
        self.lock = threading.Lock()
        atexit.register(self.stop_all)

    def stop_all(self):
        for child, _ in self.running.values():
            if child.poll() is None:
                child.terminate()

    def url(self, job):
        entry = self.running.get(job.id)
        return entry[1] if entry and entry[0].poll() is None else None

    def start(self, job):
        with self.lock:
            url = self.url(job)
            if url:
                return url
            events = jobdir.JobPaths(job.target).events
            if not events.is_dir() or not any(events.glob("events.out.tfevents.*")):
                raise DataError(f"{job.name}: no TensorBoard events yet (they are written while training)")
            port = _free_port()
            command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(events), "--host", "127.0.0.1",
                       "--port", str(port)]
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=runner_env())
            url = f"http://127.0.0.1:{port}/"
            self.running[job.id] = (child, url)
            return url


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _boards():
    return current_app.extensions.setdefault("digits_gan_tensorboards", TensorBoards())


def url_for_job(job):
    return _boards().url(job)


def start(job):
    """The URL of the job's TensorBoard, started if needed; DataError when TensorBoard
    is not installed or the job has no events."""
    if not available():
        raise DataError("TensorBoard is not installed: pip install tensorboard (or the package's 'tensorboard' "
                        "extra), then try again")
    return _boards().start(job)
