"""The project's ``pyproject.toml``, read and parsed once for all that is taken from it.

Four readers need it: the project's settings (``[tool.build-images]``), its
static metadata (``[project]``), and what pip builds it with (``[build-system]``
``requires`` and ``build-backend``).  :func:`read_pyproject` parses the file
once, with one error message for people when it is not valid TOML, and the
readers take the :class:`PyProject` it returns.  :func:`resolve
<pbrx_images.project.settings.resolve>` is the first to read it and keeps it
in the options it makes, so that a build reads it no more.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pbrx_images.errors import ProjectError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

#: What pip builds a project with that names no build requirements (PEP 518).
DEFAULT_BUILD_REQUIREMENTS = ("setuptools>=40.8.0",)
#: The backend pip builds a project with that names none (PEP 517).
LEGACY_BUILD_BACKEND = "setuptools.build_meta:__legacy__"

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END_OF_DOCUMENT = re.compile(r"\s*\(at end of document\)\s*$")
_BACKEND = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?")


@dataclass(frozen=True)
class PyProject:
    """The parsed ``pyproject.toml`` of a project (empty when it has none)."""

    path: Path
    present: bool  #: the project has a pyproject.toml
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)

    def table(self, name: str) -> Mapping[str, Any] | None:
        """The top-level table ``name`` (``[project]``, ``[tool]``), None when absent.

        Raises :class:`ProjectError` if it is there but not a table.
        """
        value = self.data.get(name)
        if value is None or isinstance(value, dict):
            return value
        raise ProjectError("%s: %r must be a table ([%s]); fix it." % (self.path, name, name))

    def build_requirements(self) -> tuple[str, ...]:
        """``[build-system] requires``, or pip's default.

        Raises :class:`ProjectError` if ``requires`` is not a list of strings.
        """
        system = self._build_system()
        if "requires" not in system:
            return DEFAULT_BUILD_REQUIREMENTS
        requires = system["requires"]
        if not isinstance(requires, list) or not all(isinstance(item, str) for item in requires):
            raise ProjectError("%s: [build-system] requires must be a list of strings; "
                               "fix it." % self.path)
        return tuple(requires)

    def build_backend(self) -> tuple[str, tuple[str, ...]]:
        """``[build-system] build-backend`` and ``backend-path``, or pip's default.

        Raises :class:`ProjectError` if the backend is not a ``module:object``
        string or ``backend-path`` is not a list of relative paths inside the
        project.
        """
        system = self._build_system()
        if "build-backend" not in system:
            return LEGACY_BUILD_BACKEND, ()
        backend = system["build-backend"]
        if not isinstance(backend, str) or not _BACKEND.fullmatch(backend):
            raise ProjectError("%s: [build-system] build-backend must name a module, "
                               "as in \"module.name:object\"; fix it." % self.path)
        paths = system.get("backend-path", [])
        if not isinstance(paths, list) or not all(
                isinstance(item, str) and item and not Path(item).is_absolute()
                and ".." not in Path(item).parts for item in paths):
            raise ProjectError("%s: [build-system] backend-path must be a list of paths "
                               "inside the project, relative to it; fix it." % self.path)
        return backend, tuple(paths)

    def _build_system(self) -> Mapping[str, Any]:
        system = self.data.get("build-system")
        return system if isinstance(system, dict) else {}


def read_pyproject(project_dir: Path) -> PyProject:
    """The project's pyproject.toml, parsed; an empty one when the project has none.

    Raises :class:`ProjectError` with one sentence if it cannot be read or
    is not valid TOML.
    """
    path = Path(project_dir) / "pyproject.toml"
    if not path.is_file():
        return PyProject(path, False)
    text = read_text(path)
    try:
        return PyProject(path, True, tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise ProjectError(_toml_error_message(path, error)) from error
    except RecursionError as error:  # tomllib recurses once per nested array or table
        raise ProjectError(
            f"{path} nests arrays or inline tables too deeply to be read; flatten them."
        ) from error


def read_text(path: Path) -> str:
    """The UTF-8 text of a project file (pyproject.toml, setup.cfg), or ProjectError."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ProjectError(
            f"{path} is not UTF-8 text (byte {error.start} cannot be decoded);"
            f" save it as UTF-8."
        ) from error
    except OSError as error:
        raise ProjectError(
            f"{path} cannot be read ({error.strerror or error}); check that it is a"
            f" readable file."
        ) from error


def _toml_error_message(path: Path, error: Exception) -> str:
    """Phrase a TOMLDecodeError as one sentence naming the file and line."""
    reason = str(error)
    match = _TOML_POSITION.search(reason)
    if match:
        reason = reason[: match.start()]
        where = f"line {match.group(1)}, column {match.group(2)}"
    elif _TOML_END_OF_DOCUMENT.search(reason):
        reason = _TOML_END_OF_DOCUMENT.sub("", reason)
        where = "the end of the file"
    else:
        where = "an unknown position"
    return f"{path} is not valid TOML ({reason.rstrip('.')} at {where}); fix the syntax."
