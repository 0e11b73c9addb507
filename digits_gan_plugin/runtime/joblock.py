"""One writer per training job folder: an OS lock (``fcntl.flock``) on JOBDIR/train.lock.

The operating system releases the lock when its holder exits in any way (return,
exception, Ctrl-C, SIGKILL), so a stale lock never blocks a resume. The file stays in
the folder and names its last holder (pid, host, start time) for the message that a
second writer gets. ``holder`` tells callers (the web UI) whether a job is running.
"""
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from ..errors import TrainingError
from .. import jobdir


def _lock_path(root):
    return jobdir.JobPaths(root).lock


class JobLock:
    """Context manager holding the lock of job folder `root` (created if missing);
    TrainingError naming the holder when another process has it."""

    def __init__(self, root):
        self.root = Path(root)
        self.handle = None

    def __enter__(self):
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(_lock_path(self.root), "a+b", buffering=0)  # unbuffered: a failed write leaves nothing pending
        except OSError as error:
            raise TrainingError(f"{self.root}: cannot create the job folder's lock file ({error.strerror})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise TrainingError(f"{self.root}: another training process is writing this job "
                                f"({describe(holder(self.root))}); wait for it or stop it first") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
        except OSError as error:  # a full disk: nothing of the job is written
            handle.close()
            raise TrainingError(f"{_lock_path(self.root)}: cannot write the job's lock file ({error.strerror}); "
                                f"nothing was trained") from None
        self.handle = handle
        return self

    def __exit__(self, *exc_info):
        import fcntl

        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
        return False


def holder(root):
    """{'pid', 'host', 'since'} of the process holding the job's lock, or None when no
    process holds it (the job is not training)."""
    import fcntl

    path = _lock_path(root)
    try:
        handle = open(path, "r", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return json.loads(handle.read() or "{}") or {"pid": "?"}
            except ValueError:
                return {"pid": "?"}
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def describe(info):
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')}"
