"""Read a Python project's name, version, console scripts and extras.

Two sources are supported:

* :func:`read_project` reads the *static* metadata of a source tree: a
  pbr-style or setuptools-style ``setup.cfg`` and the PEP 621 ``[project]``
  table of ``pyproject.toml``.  Anything that is only known once the project
  is built (a ``dynamic`` field, a ``setup.py``-only project, a version taken
  from git by pbr) is reported as ``None``.
* :func:`pbrx_images.project.wheel_metadata.read_wheel` reads the metadata
  of a built wheel, which is always complete and is what the caller relies
  on when the static metadata is not.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pbrx_images.errors import ProjectError
from pbrx_images.project.pyproject import PyProject
from pbrx_images.project.pyproject import read_pyproject as _read_pyproject_file
from pbrx_images.project.pyproject import read_text as _read_text

__all__ = [
    "ProjectMetadata",
    "find_extra",
    "image_name",
    "normalize_extra",
    "read_project",
]


@dataclass(frozen=True)
class ProjectMetadata:
    """What is known about a project; ``None`` means "unknown until built".

    ``console_scripts`` holds the script names in declared order and
    ``extras`` the extra names as spelled in the metadata.  An empty tuple
    means the project is known to have none.  ``source`` says where the
    metadata came from: ``"setup.cfg"``, ``"pyproject.toml"``,
    ``"pyproject.toml, setup.cfg"`` (merged), ``"wheel"``, or ``"setup.py"``
    or ``"pyproject.toml"`` when nothing could be read statically.
    """

    name: str | None
    version: str | None
    console_scripts: tuple[str, ...] | None
    extras: tuple[str, ...] | None
    source: str
    #: the wheel's Requires-Dist lines (read from wheels only; empty otherwise)
    requires: tuple[str, ...] = ()


# Each field of ProjectMetadata that static metadata can provide, keyed by the
# name PEP 621 uses for it in ``[project]`` and ``dynamic``.
_PEP621_FIELDS = {
    "name": "name",
    "version": "version",
    "scripts": "console_scripts",
    "optional-dependencies": "extras",
}

# --------------------------------------------------------------------------
# Names


def normalize_extra(name: str) -> str:
    """Return the PEP 685 normalized form of an extra's name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_extra(extras: Iterable[str], wanted: str) -> str | None:
    """Return the extra of ``extras`` that PEP 685 says is ``wanted``.

    The result is spelled as in ``extras`` (the metadata), so it can be used
    in a requirement; ``None`` if no extra matches.
    """
    key = normalize_extra(wanted)
    for extra in extras:
        if normalize_extra(extra) == key:
            return extra
    return None


def image_name(name: str) -> str:
    """Turn a project or script name into a Docker repository path component.

    The name is lowercased and every run of characters other than ``a-z`` and
    ``0-9`` becomes a single ``-``; separators at either end are removed.
    """
    result = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not result:
        raise ProjectError(
            f"{name!r} cannot be used in an image name because it has no letters or digits;"
            f" rename the project or script."
        )
    return result


# --------------------------------------------------------------------------
# Source trees


def read_project(project_dir: Path, pyproject: PyProject | None = None) -> ProjectMetadata:
    """Read the static metadata of the project in ``project_dir``.

    ``setup.cfg`` (pbr's ``[metadata]``/``[entry_points]``/``[extras]`` or
    setuptools' ``[metadata]``/``[options.entry_points]``/
    ``[options.extras_require]``) and ``pyproject.toml``'s ``[project]`` are
    merged; ``[project]`` wins for every field it declares statically, and a
    field it lists in ``dynamic`` comes from ``setup.cfg`` if that has it.

    ``pyproject`` is its pyproject.toml when already read.  Raises
    :class:`ProjectError` if the directory is not a Python project or one of
    its metadata files cannot be read or parsed.
    """
    project_dir = Path(project_dir)
    if not project_dir.exists():
        raise ProjectError(
            f"The project directory {project_dir} does not exist; check the path."
        )
    if not project_dir.is_dir():
        raise ProjectError(
            f"The project path {project_dir} is not a directory; give the directory"
            f" that holds pyproject.toml, setup.cfg or setup.py."
        )
    pyproject_path = project_dir / "pyproject.toml"
    setup_cfg_path = project_dir / "setup.cfg"
    setup_py_path = project_dir / "setup.py"
    if not (pyproject_path.is_file() or setup_cfg_path.is_file() or setup_py_path.is_file()):
        raise ProjectError(
            f"{project_dir} is not a Python project: it has no pyproject.toml, setup.cfg"
            f" or setup.py."
        )

    has_setup_py = setup_py_path.is_file()
    from_cfg = (
        _read_setup_cfg(setup_cfg_path, has_setup_py) if setup_cfg_path.is_file() else None
    )
    pyproject = pyproject or _read_pyproject_file(project_dir)
    from_toml = _read_pyproject(pyproject) if pyproject.present else None

    if from_toml is None:
        if from_cfg is not None:
            return from_cfg
        # Nothing static: a setup.py-only project, or a pyproject.toml that
        # configures a build backend in its own table (poetry, flit, ...).
        source = "pyproject.toml" if pyproject_path.is_file() else "setup.py"
        return ProjectMetadata(None, None, None, None, source=source)

    fields, dynamic = from_toml
    sources = ["pyproject.toml"]
    for toml_name, field_name in _PEP621_FIELDS.items():
        if toml_name not in dynamic or from_cfg is None:
            continue
        value = getattr(from_cfg, field_name)
        if value is not None:
            fields[field_name] = value
            if "setup.cfg" not in sources:
                sources.append("setup.cfg")
    return ProjectMetadata(source=", ".join(sources), **fields)


def _parse_ini(path: Path, text: str) -> configparser.RawConfigParser:
    """Parse an INI file the way setuptools and pbr do, keeping key spelling."""
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as error:
        bad = _line(text, error.lineno)
        if bad.startswith("[") and not bad.rstrip().endswith("]"):
            raise ProjectError(
                f"{path} line {error.lineno} ({bad!r}) is a section header without its"
                f" closing ']'; add it."
            ) from error
        raise ProjectError(
            f"{path} line {error.lineno} ({_line(text, error.lineno)!r}) comes before any"
            f" [section] header; put it in a section or remove it."
        ) from error
    except configparser.ParsingError as error:
        lineno = error.errors[0][0]
        more = len(error.errors) - 1
        also = f" (and {more} more line{'s' if more > 1 else ''})" if more else ""
        raise ProjectError(
            f"{path} line {lineno}{also} cannot be parsed: {_line(text, lineno)!r} is neither"
            f" a [section] header nor a 'key = value' line; fix the syntax."
        ) from error
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError) as error:
        where = f" line {error.lineno}" if error.lineno else ""
        raise ProjectError(
            f"{path}{where} repeats {_describe_duplicate(error)}; remove one of them."
        ) from error
    except configparser.Error as error:
        raise ProjectError(f"{path} cannot be parsed ({error}); fix the syntax.") from error
    return parser


def _line(text: str, lineno: int) -> str:
    """Return line ``lineno`` (1-based) of ``text``, stripped."""
    lines = text.splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _describe_duplicate(
    error: configparser.DuplicateSectionError | configparser.DuplicateOptionError,
) -> str:
    if isinstance(error, configparser.DuplicateOptionError):
        return f"the key {error.option!r} of section [{_printable(error.section)}]"
    return f"the section [{_printable(error.section)}]"


def _printable(text: str) -> str:
    """Return ``text``, with escapes for characters that are not printable."""
    return text if text.isprintable() else repr(text)[1:-1]


def _get(parser: configparser.RawConfigParser, section: str, key: str) -> str | None:
    """Return ``section``'s value for ``key`` (case-insensitive), if any."""
    if not parser.has_section(section):
        return None
    for option, value in parser.items(section):
        if option.lower() == key:
            return value
    return None


def _read_setup_cfg(path: Path, has_setup_py: bool) -> ProjectMetadata:
    """Read a pbr-style or setuptools-style ``setup.cfg``.

    Console scripts and extras that ``setup.cfg`` does not declare are
    unknown (``None``) when a ``setup.py`` could declare them instead, and
    empty otherwise.
    """
    parser = _parse_ini(path, _read_text(path))

    name = _get(parser, "metadata", "name")
    version = _get(parser, "metadata", "version")
    if version is not None and version.strip().startswith(("attr:", "file:")):
        version = None  # setuptools computes it at build time

    undeclared: tuple[str, ...] | None = None if has_setup_py else ()

    console_scripts: tuple[str, ...] | None = undeclared
    for section in ("entry_points", "options.entry_points"):
        if parser.has_section(section):
            value = _get(parser, section, "console_scripts")
            console_scripts = (
                _parse_console_scripts(value, f"{path} [{section}]") if value is not None else ()
            )
            break
    else:
        entry_points_option = _get(parser, "options", "entry_points")
        if entry_points_option is not None:
            console_scripts = None  # "file: ..." - only known once built

    extras: tuple[str, ...] | None = undeclared
    for section in ("extras", "options.extras_require"):
        if parser.has_section(section):
            extras = tuple(parser.options(section))
            break

    return ProjectMetadata(
        name=_clean(name),
        version=_clean(version),
        console_scripts=console_scripts,
        extras=extras,
        source="setup.cfg",
    )


def _parse_console_scripts(value: str, where: str) -> tuple[str, ...]:
    """Return the script names of a multi-line ``name = module:function`` value."""
    names: list[str] = []
    for line in value.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, equals, target = line.partition("=")
        name = name.strip()
        if not equals or not name or not target.strip():
            raise ProjectError(
                f"{where} console_scripts entry {line!r} is not of the form"
                f" 'name = module:function'; fix it."
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _read_pyproject(pyproject: PyProject) -> tuple[dict[str, Any], set[str]] | None:
    """Read ``[project]`` from ``pyproject.toml``.

    Returns the ProjectMetadata fields it declares (``None`` for dynamic
    ones) and the set of dynamic field names, or ``None`` if the file has no
    ``[project]`` table.
    """
    path = pyproject.path
    project = pyproject.table("project")
    if project is None:
        return None

    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list) or not all(isinstance(item, str) for item in dynamic):
        raise ProjectError(f"{path}: [project] dynamic must be a list of strings; fix it.")
    dynamic_fields = set(dynamic)

    fields: dict[str, Any] = {}
    for key in ("name", "version"):
        value = project.get(key)
        if value is not None and not isinstance(value, str):
            raise ProjectError(f"{path}: [project] {key} must be a string; fix it.")
        fields[key] = None if key in dynamic_fields else value

    fields["console_scripts"] = _table_keys(path, project, "scripts", dynamic_fields)
    fields["extras"] = _table_keys(path, project, "optional-dependencies", dynamic_fields)
    return fields, dynamic_fields


def _table_keys(
    path: Path, project: Mapping[str, Any], key: str, dynamic: set[str]
) -> tuple[str, ...] | None:
    """Return the keys of the ``[project.<key>]`` table; None if it is dynamic."""
    if key in dynamic:
        return None
    table = project.get(key, {})
    if not isinstance(table, dict):
        raise ProjectError(f"{path}: [project] {key} must be a table; fix it.")
    return tuple(table)


# --------------------------------------------------------------------------
# Helpers shared with wheel_metadata


def _one_line(error: Exception) -> str:
    """The first line of ``error``'s message, or its type if it has none."""
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def _clean(value: Any) -> str | None:
    """Return ``value`` as a stripped string, or None if it is missing or blank."""
    if value is None:
        return None
    return str(value).strip() or None
