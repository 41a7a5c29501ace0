"""Programs that run inside build containers, kept as real files.

The wheel container's are sent into it with the source tree
(:meth:`pbrx_images.engine.Container.put_files`) and run there by the
container's own ``python3``, which may be older than the client's Python:
they use the standard library only, and nothing newer than Python 3.6.
As files of the package they are linted, imported and unit-tested like the
rest of the code (ansible-builder keeps its own as ``_target_scripts/``).

* ``build_wheel.py``: the project's wheel by its PEP 517 backend, in the
  kept build environment (:data:`pbrx_images.stages.builder.BUILD_HOOK`);
* ``wheel_cache.py``: atomic updates of the wheel volume, safe with
  concurrent builds (:data:`pbrx_images.stages.builder.CACHE_TOOL`);
* ``compile_pyc.py``: byte code of changed modules as pip's install writes
  it, for the fast path of an app change (:mod:`pbrx_images.plan.fast_path`);
* ``python_distributions.py``: the interpreter and distributions of an
  image's virtualenv, for its SBOM (given as ``python -c``, so nothing is
  copied into the image: :data:`pbrx_images.stages.sbom.PYTHON_QUERY`).
"""
from __future__ import annotations

import functools
from importlib import resources


@functools.lru_cache(maxsize=None)
def source(name: str) -> bytes:
    """The bytes of the program ``name`` (e.g. ``"wheel_cache.py"``), as sent."""
    return resources.files(__name__).joinpath(name).read_bytes()
