"""How the Docker SDK's errors become errors for people.

Every call to the engine runs inside :func:`engine_errors`, which turns the
SDK's exceptions (and the transport's: a socket that is gone, a request that
timed out) into a :class:`~pbrx_images.errors.BuildError` that says what was
being done and what to do.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from pbrx_images.engine.socket_api import Refused
from pbrx_images.errors import BuildError, EngineError


def _sdk_errors() -> tuple[type[Exception], ...]:
    """The SDK's exception classes, once it is imported (before, none can be raised).

    Looked up, not imported: naming them here would import the SDK
    (:mod:`pbrx_images.engine._sdk`) on every error of a read that went
    without it.
    """
    errors = sys.modules.get("docker.errors")
    return (errors.DockerException,) if errors is not None else ()


def _translate(error: Exception, doing: str) -> BuildError:
    """An SDK or connection error, as one sentence for the user."""
    errors = sys.modules.get("docker.errors")
    if isinstance(error, Refused) or (errors is not None
                                      and isinstance(error, errors.APIError)):
        detail = error.explanation or str(error)
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return EngineError("The Docker engine refused to %s: %s."
                           % (doing, str(detail).rstrip(".")))
    return EngineError("Lost the Docker engine while trying to %s (%s): check that it "
                       "still runs, then run build-images again." % (doing, error))


@contextlib.contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn Docker SDK and connection errors into an :class:`EngineError`."""
    try:
        yield
    except BuildError:
        raise
    except (Refused, ConnectionError, OSError) as error:
        raise _translate(error, doing) from error
    except Exception as error:  # requests' errors do not all derive from OSError
        if isinstance(error, _sdk_errors()) or type(error).__module__.startswith(
                ("requests", "urllib3")):
            raise _translate(error, doing) from error
        raise
