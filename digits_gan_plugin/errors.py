"""Typed, user-facing errors. Library code raises these; the CLI prints the message on
one line and exits non-zero. Messages name the culprit (file, line, field) and what was
expected."""
import os
import re


class DigitsGanError(Exception):
    """Base class of every error that is the user's input rather than our bug."""


class DataError(DigitsGanError):
    """A source file, dataset directory or option value is missing or malformed."""


class ModelDefinitionError(DigitsGanError):
    """A model-definition file cannot be loaded or does not honour the contract."""


class TrainingError(DigitsGanError):
    """Training cannot start or had to stop (NaN loss, incompatible checkpoint, ...)."""


def os_error_reason(error):
    """Why an OSError happened, on one line: its errno's text ('No space left on device'),
    also where a library puts a long message in strerror (h5py: "Can't synchronously
    write data (... errno = 28, ...)") or gives no errno but names one in the message."""
    number = error.errno if isinstance(error.errno, int) and error.errno > 0 else None
    named = re.search(r"\berrno = (\d+)", str(error))
    if number is None and named:
        number = int(named.group(1))
    return os.strerror(number) if number else " ".join(str(error.strerror or error).split()) or type(error).__name__


def os_error_line(error):
    """One line for an OSError no caller put into words: the file(s) it names and why
    ('a.png -> b/a.png: No space left on device')."""
    names = " -> ".join(os.fspath(name) for name in (error.filename, error.filename2) if name is not None)
    return f"{names}: {os_error_reason(error)}" if names else os_error_reason(error)
