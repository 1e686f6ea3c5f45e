"""Project-level errors: the CLI prints these as one clear message instead of a traceback."""


class AssocError(Exception):
    """Base class for errors a user can fix (missing data, bad input, diverged training)."""


class TrainingDivergedError(AssocError, FloatingPointError):
    """A loss became NaN or infinite."""


class ConfigError(AssocError, ValueError):
    """A value set in a config or on the command line that the code cannot take; the message
    names the argument, what was given and what is accepted."""


class RunError(AssocError, RuntimeError):
    """A run cannot go on for a reason the user can act on (e.g. an evaluation set that was
    cut short by ``limit_*_batches``, a speech synthesizer that failed)."""
