"""perfq's exceptions: each names what went wrong; InputError also the file and the field."""


class Error(Exception):
    """Base class of every error perfq raises."""


class InputError(Error, ValueError):
    """Bad input data or metadata.

    Attributes:
        file: the file at fault (a path), or "" when the data came as arrays.
        field: the field, header entry, volume or option at fault, or "".
    """

    def __init__(self, message: str, file: str = "", field: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.field = field


class InvalidArgumentError(Error, ValueError):
    """A bad argument: an unknown option, a value out of range, arrays of the wrong shape."""


class BackendError(Error, RuntimeError):
    """The requested backend cannot run (e.g. backend="cuda" without a CUDA device)."""


class OutputError(Error, OSError):
    """An output could not be written (a full disk, a missing folder, an existing file)."""
