"""Build container images of a Python project with the builder-image pattern.

The library API, which the ``build-images`` command merely calls::

    from pbrx_images import Options, build, dry_run, resolve_options
    from pbrx_images.ui.output import Reporter

    options = resolve_options(Path("examples/pgtool"), tag="ci")
    result = build(options, Reporter())  # a Result: the plan and each BuiltImage

:func:`resolve_options` merges arguments over the project's settings over the
defaults; :func:`build` raises :class:`BuildError` with one sentence for
people.  The names are imported on first use (PEP 562), so importing the
package, or one of its pure packages, does not import the Docker SDK.
"""
from __future__ import annotations

import importlib
import time
from typing import Any

#: When the package began to be imported (the report's start-up time counts from here).
IMPORTED_AT = time.monotonic()

#: name -> (module, attribute) of the library API
_API = {
    "build": ("pbrx_images.pipeline", "build"),
    "dry_run": ("pbrx_images.pipeline", "dry_run"),
    "Result": ("pbrx_images.stages.record", "Result"),
    "BuiltImage": ("pbrx_images.stages.record", "BuiltImage"),
    "Options": ("pbrx_images.project.settings", "Options"),
    "resolve_options": ("pbrx_images.project.settings", "resolve"),
    "BuildError": ("pbrx_images.errors", "BuildError"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _API[name]
    except KeyError:
        raise AttributeError("module 'pbrx_images' has no attribute %r" % name) from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
