"""The project's exception types.

Every error meant for a person carries a one-line message that names the file or option at fault
and says how to fix it. CLIs turn these into that line on stderr and a non-zero exit
(see :mod:`reface_tf.cli`); anything else is a bug and keeps its traceback.
"""


class RefaceError(Exception):
    """Base class: an error whose message is shown to the user as-is."""


class ConfigError(RefaceError):
    """An option or config-file value is unknown or invalid."""


class DataError(RefaceError):
    """An input file or dataset cannot be used."""


class ModelError(RefaceError):
    """A checkpoint, SavedModel or weights file is missing, corrupt or of the wrong kind."""


class TrainingDiverged(RefaceError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""
