"""The Docker SDK, imported the first time it is used.

``import docker`` takes 0.12-0.20 s here (requests, urllib3 and, for
``ssh://``, paramiko, which the SDK imports whether or not it is used):
more than the whole "up to date" answer of a no-op rebuild, which on a
local engine needs only a few reads over the engine's socket
(:mod:`pbrx_images.engine.socket_api`).  So the engine modules name the SDK
through :data:`docker`, a module whose code runs at its first attribute
access (the standard library's :class:`importlib.util.LazyLoader`): when
the build creates the SDK client, or an SDK error is caught.  The client is
made under a lock (:class:`pbrx_images.engine.Connection`), so the import
happens on one thread.
"""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def _lazy(name: str) -> ModuleType:
    """``name``, imported when an attribute of it is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError("No module named %r" % name, name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


#: The ``docker`` package (its ``errors``, ``types`` and ``auth`` are read
#: as its attributes: its ``__init__`` imports them).
docker = _lazy("docker")
