"""Typed, user-facing errors. Library code raises these; the CLI prints the message on
one line and exits non-zero. Messages name the culprit (file, line, field) and what was
expected."""


class DigitsGanError(Exception):
    """Base class of every error that is the user's input rather than our bug."""


class DataError(DigitsGanError):
    """A source file, dataset directory or option value is missing or malformed."""


class ModelDefinitionError(DigitsGanError):
    """A model-definition file cannot be loaded or does not honour the contract."""


class TrainingError(DigitsGanError):
    """Training cannot start or had to stop (NaN loss, incompatible checkpoint, ...)."""
