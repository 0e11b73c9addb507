"""``python -m digits_gan_plugin.webapp.runner JOBDIR``: run one web-UI job's commands.

Each command runs on a pseudo-terminal, so its tqdm bar is drawn; finished lines go to
log.txt and the bar's latest state to progress.json (the page's progress bar). SIGINT
(the Stop button) is forwarded to the running command. At the end job.json records the
status, exit code and time; started by the server in a session of its own, the runner
outlives a server restart.
"""
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from ..files import write_json_atomic
from .jobs import DONE, ERROR, JOB_FILE, LOG_FILE, PROGRESS_FILE, STOPPED, now

# Commands that import TensorFlow before their first line (several seconds).
TENSORFLOW_COMMANDS = ("train", "infer", "evaluate", "attributes")
ERROR_PREFIX = "digits-gan: error: "

TERMINAL_COLUMNS = 110
PROGRESS_EVERY_S = 0.5
_BAR_COUNTS = re.compile(r"(\d+)/(\d+)\s*\[")
_BAR_DRAWING = re.compile(r"\|[^|]*\|")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class OutputPump:
    """Splits terminal output into log lines and progress-bar updates."""

    def __init__(self, log, progress_path):
        self.log, self.progress_path = log, progress_path
        self.pending, self.last_progress = "", 0.0
        self.error = None  # the last "digits-gan: error: ..." line, shown above the log
        self.last_line = None  # ... or the last line written, when a command fails otherwise

    def write_line(self, line):
        if line.startswith(ERROR_PREFIX):
            self.error = line[len(ERROR_PREFIX):].strip()
        if line.strip():
            self.last_line = line.strip()
        self.log.write(line + "\n")

    def feed(self, text):
        text = _ANSI.sub("", self.pending + text.replace("\r\n", "\n"))
        parts = re.split(r"([\r\n])", text)
        self.pending = parts.pop()  # an unterminated line or bar update
        for segment, separator in zip(parts[::2], parts[1::2]):
            if separator == "\n":
                self.write_line(segment)
            self.progress(segment, force=separator == "\n")
        self.progress(self.pending)
        self.log.flush()

    def progress(self, segment, force=False):
        match = _BAR_COUNTS.search(segment)
        if not match or (not force and time.monotonic() - self.last_progress < PROGRESS_EVERY_S):
            return
        self.last_progress = time.monotonic()
        done, total = int(match.group(1)), int(match.group(2))
        text = " ".join(_BAR_DRAWING.sub(" ", segment).split())  # '45%|####  | 2/9 [..]' -> '45% 2/9 [..]'
        write_json_atomic(self.progress_path, {"done": done, "total": total, "text": text})

    def close(self):
        if self.pending:
            self.write_line(self.pending)
        self.pending = ""
        self.log.flush()


def run_command(argv, pump, on_start):
    """Run argv on a pty, pumping its output; returns its exit code (130 after SIGINT)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, TERMINAL_COLUMNS, 0, 0))
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    on_start(child)
    while True:
        try:
            chunk = os.read(master, 65536)
        except InterruptedError:
            continue
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        pump.feed(chunk.decode("utf-8", "replace"))
    os.close(master)
    return child.wait()


def main(job_dir):
    job_dir = Path(job_dir)
    job_file = job_dir / JOB_FILE
    data = json.loads(job_file.read_text(encoding="utf-8"))
    data["pid"] = os.getpid()
    write_json_atomic(job_file, data)
    state = {"child": None, "stopped": False}

    def forward_sigint(signum, frame):
        state["stopped"] = True
        if state["child"] is not None and state["child"].poll() is None:
            state["child"].send_signal(signal.SIGINT)

    def started(child):
        state["child"] = child
        if state["stopped"]:  # Stop arrived while the command was being started
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward_sigint)
    code = 0
    with open(job_dir / LOG_FILE, "a", encoding="utf-8") as log:
        pump = OutputPump(log, job_dir / PROGRESS_FILE)
        for argv in data["commands"]:
            if state["stopped"]:
                code = 130
                break
            shown = ["digits-gan", *argv[3:]] if argv[1:3] == ["-m", "digits_gan_plugin.cli"] else argv
            log.write("$ " + " ".join(shown) + "\n")
            if len(shown) > 1 and shown[1] in TENSORFLOW_COMMANDS:
                log.write("starting TensorFlow (a few seconds)...\n")
            log.flush()
            code = run_command(argv, pump, started)
            pump.close()
            if code != 0:
                break
        log.write(f"[exit code {code}]\n")
    data = json.loads(job_file.read_text(encoding="utf-8"))
    status = DONE if code == 0 else STOPPED if code == 130 or state["stopped"] else ERROR
    error = (pump.error or pump.last_line) if status == ERROR else None
    data.update(status=status, exit_code=code, finished=now(), error=error)
    write_json_atomic(job_file, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
