"""The project's source tree, packed for the build container.

The tree is read, never written: the archive goes into the container through
the Docker API, and anything a build writes (``build/``, ``*.egg-info``,
caches) is written there.  Entries are owned by root in the archive so git
inside the container trusts the checkout (pbr needs git for versions).
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pbrx_images.errors import ProjectError

#: Directories that are never part of a build: tool caches and virtualenvs.
EXCLUDED_NAMES = frozenset({
    ".tox", ".nox", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
})


@dataclass(frozen=True)
class SourceArchive:
    """A tar archive of the tree under ``prefix/`` and a digest of its content."""

    data: bytes
    digest: str
    files: int


def archive_source(project_dir: Path, prefix: str = "src") -> SourceArchive:
    """Pack ``project_dir`` (minus :data:`EXCLUDED_NAMES`) as ``prefix/...``.

    The digest covers paths, modes, file contents and link targets (not
    times), so an unchanged tree gives the same digest.
    """
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    count = 0
    root = str(project_dir)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for current, dirs, files in os.walk(root, onerror=_walk_error):
            dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_NAMES)
            relative_dir = os.path.relpath(current, root)
            base = prefix if relative_dir == "." else prefix + "/" + relative_dir
            _add(archive, current, base, digest)
            links = [d for d in dirs if os.path.islink(os.path.join(current, d))]
            dirs[:] = [d for d in dirs if d not in links]  # links are entries, not walked
            for name in sorted(files + links):
                count += _add(archive, os.path.join(current, name), base + "/" + name, digest)
    return SourceArchive(buffer.getvalue(), digest.hexdigest(), count)


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
