"""The metadata of a built wheel, and of installed distributions: one reader.

Pure code.  :func:`read_wheel` reads a wheel's name, version, extras,
requirements and console scripts; it is always complete, so it is what the
plan is made from once the project's wheel is built (the static metadata of
:mod:`pbrx_images.project.metadata` may lack what a build backend decides).
:func:`core_metadata` reads METADATA with packaging's parser, for wheels and
for the distributions of a virtualenv (:mod:`pbrx_images.oci.layer`).
"""
from __future__ import annotations

import configparser
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbrx_images.errors import BuildError
from pbrx_images.project.metadata import ProjectMetadata, _clean, _one_line, _printable

try:
    from lzma import LZMAError
except ImportError:  # pragma: no cover - Python built without lzma support
    LZMAError = zlib.error  # type: ignore[misc,assignment]


# What zipfile and its decompressors raise for a damaged archive: encrypted
# members (RuntimeError), unsupported features (NotImplementedError), offsets
# out of range (ValueError) and corrupt compressed data.
_BROKEN_ZIP = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, LZMAError, EOFError,
    RuntimeError, NotImplementedError, ValueError,
)


def read_wheel(path: Path, data: bytes | None = None) -> ProjectMetadata:
    """Read name, version, extras and console scripts from a wheel file.

    With ``data``, the wheel's content is that and ``path`` only names it
    (a wheel read back from a container).  Raises :class:`BuildError` if it
    is not a readable wheel.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
    except OSError as error:
        raise BuildError(
            f"{path} cannot be read ({error.strerror or error}); check that the wheel exists"
            f" and is readable."
        ) from error
    except _BROKEN_ZIP as error:
        raise BuildError(
            f"{path} is not a valid wheel ({_one_line(error)}); delete it and build it again."
        ) from error
    try:
        with archive as wheel:
            dist_info = _find_dist_info(path, wheel.namelist())
            metadata_bytes = wheel.read(f"{dist_info}/METADATA")
            entry_points_name = f"{dist_info}/entry_points.txt"
            entry_points_bytes = (
                wheel.read(entry_points_name) if entry_points_name in wheel.namelist() else None
            )
    except (OSError, *_BROKEN_ZIP) as error:  # bz2 reports broken data as OSError
        raise BuildError(
            f"{path} is not a valid wheel ({_one_line(error)}); delete it and build it again."
        ) from error

    try:
        metadata = core_metadata(metadata_bytes)
    except Exception as error:  # parse_email is lenient; this is a safety net
        raise BuildError(
            f"{path} has an unreadable {_printable(dist_info)}/METADATA ({_one_line(error)});"
            f" build the wheel again."
        ) from error

    return ProjectMetadata(
        name=_clean(metadata.name),
        version=_clean(metadata.version),
        console_scripts=_wheel_console_scripts(path, dist_info, entry_points_bytes),
        extras=tuple(dict.fromkeys(extra.strip() for extra in metadata.extras)),
        source="wheel",
        requires=tuple(line.strip() for line in metadata.requires),
    )


@dataclass(frozen=True)
class CoreMetadata:
    """The fields of a distribution's ``METADATA`` (or ``PKG-INFO``) that are used here."""

    name: str | None
    version: str | None
    extras: tuple[str, ...] = ()  #: Provides-Extra, in order, as spelled
    requires: tuple[str, ...] = ()  #: Requires-Dist, in order


def core_metadata(data: bytes) -> CoreMetadata:
    """Read core metadata (email headers) with :func:`packaging.metadata.parse_email`.

    The one reader of METADATA here: of a built wheel (:func:`read_wheel`) and
    of an installed distribution (:func:`pbrx_images.oci.layer.distributions`).
    A field parse_email cannot take as the specification says (a single
    field given twice, a value that is not UTF-8) is read as it stands,
    its first value, as email.parser's ``get`` did before.
    """
    # imported here: packaging.metadata brings requirements, specifiers and
    # markers, 27 ms of start-up that a no-op rebuild does not need
    from packaging.metadata import parse_email

    raw, unparsed = parse_email(data)

    def single(field: str) -> str | None:
        value: Any = raw.get(field)
        if value is None:
            value = unparsed.get(field)
            if isinstance(value, list):
                value = value[0] if value else None
        return None if value is None else str(value)

    def several(field: str) -> tuple[str, ...]:
        values: Any = raw.get(field, unparsed.get(field, []))
        return tuple(str(value) for value in ([values] if isinstance(values, str) else values))

    return CoreMetadata(single("name"), single("version"), several("provides_extra"),
                        several("requires_dist"))


def _find_dist_info(path: Path, names: list[str]) -> str:
    """Return the wheel's ``*.dist-info`` directory that holds METADATA."""
    candidates = sorted(
        {
            name.split("/", 1)[0]
            for name in names
            if name.count("/") == 1 and name.endswith("/METADATA")
            and name.split("/", 1)[0].endswith(".dist-info")
        }
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise BuildError(
            f"{path} has no *.dist-info/METADATA; the wheel is incomplete, build it again."
        )
    # Several: the one named after the wheel file ("{name}-{version}-...whl").
    prefix = "-".join(path.name.split("-")[:2]).lower()
    for candidate in candidates:
        if candidate[: -len(".dist-info")].lower() == prefix:
            return candidate
    raise BuildError(
        f"{path} has several *.dist-info directories"
        f" ({', '.join(_printable(name) for name in candidates)});"
        f" build the wheel again."
    )


def _wheel_console_scripts(
    path: Path, dist_info: str, data: bytes | None
) -> tuple[str, ...]:
    """Return the ``[console_scripts]`` names of a wheel's entry_points.txt."""
    if data is None:
        return ()
    parser = configparser.RawConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(data.decode("utf-8"), source=f"{dist_info}/entry_points.txt")
    except (UnicodeDecodeError, configparser.Error) as error:
        raise BuildError(
            f"{path} has an unreadable {_printable(dist_info)}/entry_points.txt"
            f" ({_entry_points_problem(error)}); build the wheel again."
        ) from error
    if not parser.has_section("console_scripts"):
        return ()
    return tuple(parser.options("console_scripts"))


def _entry_points_problem(error: UnicodeDecodeError | configparser.Error) -> str:
    """Say in a few words, on one line, why entry_points.txt cannot be read."""
    if isinstance(error, UnicodeDecodeError):
        return f"byte {error.start} is not UTF-8"
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f"line {error.lineno} comes before any [section] header"
    if isinstance(error, configparser.ParsingError):
        return f"line {error.errors[0][0]} is not of the form 'name = value'"
    return _one_line(error)
