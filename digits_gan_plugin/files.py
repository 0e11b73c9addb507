"""Ground floor: atomic file writes, staged-folder renames, the usable core count.

Every output of the project is written through these helpers: a file goes to a
temporary name beside its target and is renamed over it once complete, so a reader
sees either the old version or the new one, never half of one.
"""
import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import DataError, os_error_reason


def atomic_write(path, write):
    """Call ``write(tmp_path)`` on a temporary file next to `path` (same suffix, so
    writers that pick a format from it work), then rename it into place. The temporary
    file is removed on any failure, the old `path` stays as it was. An OSError (a full
    disk: Python's names no file) comes out naming `path`, not the temporary name."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = None
    try:
        make_parent_dirs(directory)
        handle, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                            suffix=os.path.splitext(path)[1], dir=directory)
        os.close(handle)
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp_path, path)
    except BaseException as error:
        if tmp_path is not None and os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror or str(error), path) from None
        raise


def check_out_folder(out, overwrite, markers, what, empty_ok=False):
    """Refuse an `out` folder this command must not replace: a file, an existing folder
    (a non-empty one with `empty_ok`) without `overwrite`, or (even with it) a non-empty
    folder holding none of `markers`, the names an earlier output of this kind has
    (`--out ~ --overwrite` must not remove a home folder)."""
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise DataError(f"{out}: exists and is not a directory")
    if not os.path.isdir(out):
        return
    empty = not os.listdir(out)
    if not overwrite and not empty:
        raise DataError(f"{out}: directory exists and is not empty (give --overwrite to replace it)")
    if not overwrite and not empty_ok:
        raise DataError(f"{out}: already exists (give --overwrite to replace it)")
    if not empty and not any(os.path.exists(os.path.join(out, name)) for name in markers):
        raise DataError(f"{out}: holds other files, not an earlier {what} (no {' or '.join(markers)}), and is "
                        f"never replaced: choose another folder or empty this one yourself")


def make_parent_dirs(directory):
    """os.makedirs(directory, exist_ok=True), but a file standing where a folder of the path
    should be is named in the error ('out.txt: Not a directory'), not the whole path with
    'File exists'."""
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = os.path.abspath(directory)
        while os.path.dirname(blocker) != blocker and not os.path.exists(blocker):
            blocker = os.path.dirname(blocker)
        if os.path.isdir(blocker):
            raise
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", blocker) from None


def _umask():
    """The process's umask, read without changing it where Linux shows it (os.umask
    sets it, and a thread of the web server creating a file meanwhile would get 0)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path, text):
    def write(tmp_path):
        with open(tmp_path, "w", encoding="utf-8") as stream:
            stream.write(text)

    atomic_write(path, write)


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def staging_dir(out_dir, kind="tmp", pid=None):
    """The hidden sibling `.<name>.<kind>-<pid>` of `out_dir` where a new version is
    built (kind 'tmp') or the old one waits while it is replaced (kind 'old')."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    return os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.{kind}-{pid or os.getpid()}")


def move_into_place(tmp_dir, out_dir):
    """Rename the finished folder `tmp_dir` to `out_dir` (same parent), replacing an
    existing `out_dir`: it is moved aside first (to staging_dir(out_dir, 'old')) and
    removed only once the new one is in place. A process killed between the two
    renames leaves the old version aside: `recover_staged` puts it back."""
    tmp_dir, out_dir = os.fspath(tmp_dir), os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        os.rename(tmp_dir, out_dir)
        return
    if not os.listdir(out_dir):
        os.rmdir(out_dir)
        os.rename(tmp_dir, out_dir)
        return
    old_dir = staging_dir(out_dir, "old")
    os.rename(out_dir, old_dir)
    os.rename(tmp_dir, out_dir)
    shutil.rmtree(old_dir, ignore_errors=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def staged_folder(out, what):
    """Yield a fresh staging folder beside `out` (staging_dir; recover_staged first
    cleans up after a killed earlier run); renamed to `out` when the block completes, removed
    when it fails. OSError becomes one DataError line naming `out` and `what`."""
    out = Path(out)
    for line in recover_staged(out):  # what a killed earlier run left beside `out`
        print(f"digits-gan: {line}", file=sys.stderr)
    staged = Path(staging_dir(out))
    try:
        make_parent_dirs(out.parent)
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        yield staged
        move_into_place(str(staged), str(out))
    except OSError as error:
        shutil.rmtree(staged, ignore_errors=True)
        raise DataError(f"{out}: cannot write the {what} ({os_error_reason(error)}); nothing was written") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def recover_staged(out_dir):
    """Clean up after a build of `out_dir` that was killed: a version moved aside by
    move_into_place is renamed back when `out_dir` is missing (the old one stays usable
    until a new one is complete), and unfinished or superseded staging folders are
    removed. Folders of processes still running are left alone. Returns one line per
    action, for the caller to show."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    parent, prefix = os.path.dirname(out_dir), f".{os.path.basename(out_dir)}."
    if not os.path.isdir(parent):
        return []
    leftovers = []
    for name in sorted(os.listdir(parent)):
        kind, _, pid = name[len(prefix):].rpartition("-")
        if name.startswith(prefix) and kind in ("tmp", "old") and pid.isdigit() and not (
                int(pid) != os.getpid() and _process_alive(int(pid))):
            leftovers.append((kind, os.path.join(parent, name)))
    actions = []
    for kind, path in leftovers:
        if kind == "old" and not os.path.exists(out_dir):
            os.rename(path, out_dir)
            actions.append(f"{out_dir}: restored the previous version from {path} (a replacement was interrupted)")
        else:
            shutil.rmtree(path, ignore_errors=True)
            what = "an unfinished new version" if kind == "tmp" else "the replaced version"
            actions.append(f"{out_dir}: removed {path}, {what} left by an interrupted run")
    return actions


def usable_cores():
    """Number of CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
