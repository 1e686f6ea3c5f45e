"""Project-level errors: the CLI prints these as one clear message instead of a traceback."""


class AssocError(Exception):
    """Base class for errors a user can fix (missing data, bad input, diverged training)."""


class TrainingDivergedError(AssocError, FloatingPointError):
    """A loss became NaN or infinite."""
