"""The error type every expected failure is raised as.

The CLI prints ``str(error)`` as one sentence and exits non-zero; only with
``--debug`` is a traceback shown.  Code in this package raises
:class:`BuildError` (or a subclass) for anything a user can fix.
"""


class BuildError(Exception):
    """Something the user can fix went wrong; the message says what and how."""

    def __init__(self, message: str, log_path: "str | None" = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class ProjectError(BuildError):
    """The project directory, its metadata or its bindep file is not usable."""


class EngineError(BuildError):
    """The Docker engine is unreachable or refused an operation."""
