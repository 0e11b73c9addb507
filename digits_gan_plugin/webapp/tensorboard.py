"""TensorBoard for a job, started on demand on 127.0.0.1 (one per job; they are
stopped when the server exits, and exit by themselves when it is killed outright)."""
import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time

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
            command = [sys.executable, "-m", __name__, str(os.getpid()), "--logdir", str(events),
                       "--host", "127.0.0.1", "--port", str(port)]
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


def _run_while_parent_lives(parent_pid, tensorboard_args):
    """TensorBoard in this process until the server that started it is gone. atexit
    does not run when the server is killed (SIGKILL, the OOM killer), and PDEATHSIG
    would fire when the request thread that started the child ends."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    from tensorboard.main import run_main

    sys.argv = ["tensorboard", *tensorboard_args]
    run_main()


if __name__ == "__main__":
    _run_while_parent_lives(int(sys.argv[1]), sys.argv[2:])
