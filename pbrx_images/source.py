"""The project's source tree, packed for the build container.

The tree is read, never written: the archive goes into the container through
the Docker API, and anything a build writes (``build/``, ``*.egg-info``,
caches) is written there.  Entries are owned by root in the archive so git
inside the container trusts the checkout (pbr needs git for versions).

What is not source stays out (:func:`left_out`): tool caches, virtualenvs,
and the ``build/`` directory an earlier setuptools build outside
build-images left at the top of the tree: setuptools packs whatever it
finds in ``build/lib``, so a module deleted since would come back in the
image.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pbrx_images.errors import ProjectError

#: Directories that are never part of a build: tool caches and virtualenvs.
EXCLUDED_NAMES = frozenset({
    ".tox", ".nox", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".eggs",
})
#: What setuptools (and distutils) make in ``build/``: ``lib``, ``lib.linux-x86_64-cpython-311``,
#: ``bdist.linux-x86_64``, ``temp.*``, ``scripts-3.11``.
SETUPTOOLS_BUILD_ENTRY = re.compile(r"(lib|bdist|temp|scripts)([.-].*)?")


@dataclass(frozen=True)
class SourceArchive:
    """A tar archive of the tree under ``prefix/`` and a digest of its content."""

    data: bytes
    digest: str
    files: int
    #: directories left out besides :data:`EXCLUDED_NAMES`, relative to the
    #: tree, and why (:func:`left_out`), e.g. ``(("env", "a virtualenv"),)``
    left_out: tuple[tuple[str, str], ...] = ()


def archive_source(project_dir: Path, prefix: str = "src") -> SourceArchive:
    """Pack ``project_dir`` (minus what :func:`left_out`) as ``prefix/...``.

    The digest covers paths, modes, file contents and link targets (not
    times), so an unchanged tree gives the same digest.
    """
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    count = 0
    root = str(project_dir)
    skipped: list[tuple[str, str]] = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for current, dirs, files in os.walk(root, onerror=_walk_error):
            relative_dir = os.path.relpath(current, root)
            kept = []
            for name in sorted(dirs):
                if name in EXCLUDED_NAMES:
                    continue
                why = left_out(os.path.join(current, name), relative_dir == ".")
                if why:
                    skipped.append((name if relative_dir == "." else
                                    os.path.join(relative_dir, name), why))
                    continue
                kept.append(name)
            dirs[:] = kept
            base = prefix if relative_dir == "." else prefix + "/" + relative_dir
            _add(archive, current, base, digest)
            links = [d for d in dirs if os.path.islink(os.path.join(current, d))]
            dirs[:] = [d for d in dirs if d not in links]  # links are entries, not walked
            for name in sorted(files + links):
                count += _add(archive, os.path.join(current, name), base + "/" + name, digest)
    return SourceArchive(buffer.getvalue(), digest.hexdigest(), count, tuple(skipped))


def left_out(path: str, top: bool) -> str | None:
    """Why the directory ``path`` (``top``: at the top of the tree) is no source, if it is not.

    A virtualenv (it has ``pyvenv.cfg``), whatever its name; at the top, a
    ``build`` directory that holds only what setuptools makes there
    (:data:`SETUPTOOLS_BUILD_ENTRY`): one with anything else may hold
    sources, and stays.  A symbolic link is an entry like a file, never
    left out.
    """
    if os.path.islink(path):
        return None
    if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
        return "a virtualenv"
    if not top or os.path.basename(path) != "build":
        return None
    try:
        entries = os.listdir(path)
    except OSError:
        return None  # the walk says what cannot be read
    if entries and all(SETUPTOOLS_BUILD_ENTRY.fullmatch(name) for name in entries):
        return "what an earlier setuptools build left"
    return None


def _walk_error(error: OSError) -> None:
    raise ProjectError("Cannot read %s (%s): make it readable, or remove it from the "
                       "project, and try again." % (error.filename, error.strerror or error)
                       ) from error


def _add(archive: tarfile.TarFile, path: str, arcname: str, digest: "hashlib._Hash") -> int:
    try:
        info = archive.gettarinfo(path, arcname)
        mode = os.lstat(path).st_mode
        data = None
        if stat.S_ISREG(mode):
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        raise ProjectError("Cannot read %s (%s): make it readable, or remove it from the "
                           "project, and try again." % (path, error.strerror or error)) from error
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        return 0  # sockets, fifos and devices have no place in a build
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    digest.update(("%s\0%o\0%s\0" % (arcname, info.mode, info.linkname))
                  .encode("utf-8", "surrogateescape"))
    if data is not None:
        digest.update(hashlib.sha256(data).digest())
        archive.addfile(info, io.BytesIO(data))
    else:
        archive.addfile(info)
    return 1 if data is not None else 0
