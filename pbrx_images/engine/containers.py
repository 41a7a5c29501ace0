"""Build containers: commands through exec, files through the archive API.

Containers are created with a command that idles (:data:`IDLE_COMMAND`, which
ends when the client dies) and work happens through ``exec``: the
environment of an exec (pip settings, proxies) is not part of the
container's configuration, so it never reaches a committed image.
:meth:`pbrx_images.engine.Engine.container` makes and removes them.
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import tarfile
import time
from typing import IO, TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from pbrx_images.engine._sdk import docker
from pbrx_images.engine.calls import engine_errors
from pbrx_images.errors import EngineError
from pbrx_images.plan.target_platform import emulation_missing, of_image

if TYPE_CHECKING:
    from pbrx_images.engine import Engine

#: What a build container runs while commands run in it through exec: it reads its
#: standard input, which the client holds open (see :meth:`Engine.container`), and
#: ends when that closes, so a killed client's containers stop.
IDLE_COMMAND = ["/bin/sh", "-c", "while read -r _; do :; done"]


class CommandFailed(Exception):
    """A command in a build container exited non-zero."""

    def __init__(self, command: str, exit_code: int, output: str) -> None:
        super().__init__("%r exited with %d" % (command, exit_code))
        self.command = command
        self.exit_code = exit_code
        self.output = output


def tar_files(files: Mapping[str, bytes], mode: int = 0o644,
              trees: Mapping[str, bytes] | None = None) -> bytes:
    """An archive of ``{absolute path: content}``, parents included, owned by root.

    ``trees`` maps a directory to a tar archive whose members (named
    relative to it, as ``./...``) go under it, as they are.
    """
    buffer = io.BytesIO()
    now = int(time.time())
    seen_dirs: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def parents(parts: list[str]) -> None:
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in seen_dirs:
                    seen_dirs.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = now
                    archive.addfile(info)

        for path in sorted(files):
            parts = path.strip("/").split("/")
            parents(parts)
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(files[path])
            info.mode = mode
            info.mtime = now
            archive.addfile(info, io.BytesIO(files[path]))
        for directory, tree in sorted((trees or {}).items()):
            root = directory.strip("/")
            parents(root.split("/"))
            with tarfile.open(fileobj=io.BytesIO(tree)) as members:
                for member in members:
                    name = os.path.normpath(member.name)
                    member.name = root if name == "." else root + "/" + name
                    if member.islnk():  # hard links name their target by path too
                        member.linkname = root + "/" + os.path.normpath(member.linkname)
                    archive.addfile(member, members.extractfile(member)
                                    if member.isreg() else None)
    return buffer.getvalue()


def close_lifeline(lifeline: Any) -> None:
    """Close the connection :meth:`Engine.container` holds to a container's input."""
    raw = getattr(lifeline, "_sock", lifeline)  # the socket under a socket.SocketIO
    with contextlib.suppress(OSError, AttributeError):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError, AttributeError):
        lifeline.close()
    with contextlib.suppress(OSError, AttributeError):
        raw.close()


class Container:
    """A running build container; commands run in it through exec."""

    def __init__(self, engine: "Engine", container_id: str, name: str) -> None:
        self.engine = engine
        self.id = container_id
        self.name = name

    def on(self, engine: "Engine") -> "Container":
        """The same container, its commands told to ``engine``'s reporter.

        A container started on the thread alongside (:mod:`pbrx_images.stages.alongside`)
        reports to that thread's recorder; its later commands belong to the main steps.
        """
        return Container(engine, self.id, self.name)

    def run(self, command: str, environment: Mapping[str, str] | None = None,
            workdir: str | None = None, user: str = "0") -> str:
        """Run ``command`` with /bin/sh; return its output or raise CommandFailed."""
        api = self.engine.client.api
        reporter = self.engine.reporter
        reporter.command(command)
        chunks: list[bytes] = []
        with engine_errors("run a command in container %s" % self.name):
            try:
                exec_id = api.exec_create(self.id, ["/bin/sh", "-c", command],
                                          environment=dict(environment or {}),
                                          workdir=workdir, user=user)["Id"]
                # (a container that stops just after the exec is made refuses its start)
                for chunk in api.exec_start(exec_id, stream=True):
                    chunks.append(chunk)
                    reporter.output(chunk)
                exit_code = api.exec_inspect(exec_id)["ExitCode"]
            except docker.errors.APIError:
                self._check_not_stopped()
                raise
        output = b"".join(chunks).decode("utf-8", "replace")
        if exit_code != 0:
            self._check_not_stopped()
            raise CommandFailed(command, exit_code if exit_code is not None else -1, output)
        return output

    def _check_not_stopped(self) -> None:
        """Raise the reason the container stopped when its idle command could not run.

        An image of an architecture the engine cannot run (no emulation) makes
        the idle command fail at once with "exec format error", so every
        exec is refused after that ("container ... is not running", or exit
        status 126 "cannot exec in a stopped container").
        """
        api = self.engine.client.api
        with contextlib.suppress(docker.errors.DockerException):
            attrs = api.inspect_container(self.id)
            if attrs["State"].get("Running"):
                return
            logs = api.logs(self.id, stdout=True, stderr=True).decode("utf-8", "replace")
            line = next((line for line in logs.splitlines() if "exec format error" in line),
                        None)
            if line is not None:
                platform = self.engine.platform
                if platform is None:
                    image = self.engine.image(attrs["Image"])
                    platform = str(of_image(image.os, image.architecture, image.variant)
                                   ) if image else "these"
                raise emulation_missing(platform, line)

    def put_archive(self, archive: bytes, path: str = "/") -> None:
        """Unpack a tar archive into the container at ``path``."""
        with engine_errors("copy files into container %s" % self.name):
            self.engine.client.api.put_archive(self.id, path, archive)

    def put_files(self, files: Mapping[str, bytes], mode: int = 0o644,
                  trees: Mapping[str, bytes] | None = None) -> None:
        """Write ``{absolute path: content}`` (and ``trees``, see :func:`tar_files`)."""
        if files or trees:
            self.put_archive(tar_files(files, mode, trees))

    def read_file(self, path: str) -> bytes:
        """The content of one regular file in the container."""
        with tarfile.open(fileobj=io.BytesIO(self.get_archive(path))) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                raise EngineError("%s in container %s is not a regular file." % (path, self.name))
            return handle.read()

    def get_archive(self, path: str) -> bytes:
        """A tar archive of ``path`` in the container."""
        with engine_errors("copy files out of container %s" % self.name):
            stream, _ = self.engine.client.api.get_archive(self.id, path)
            return b"".join(stream)

    def export(self, path: str, spool: IO[bytes]) -> None:
        """Stream a tar archive of ``path`` in the container into ``spool``."""
        with engine_errors("copy files out of container %s" % self.name):
            stream, _ = self.engine.client.api.get_archive(self.id, path, chunk_size=1 << 20)
            for chunk in stream:
                spool.write(chunk)

    def export_filesystem(self) -> Iterator[bytes]:
        """The container's whole file system as a tar stream, in chunks (``docker export``)."""
        with engine_errors("export the file system of container %s" % self.name):
            yield from self.engine.client.api.export(self.id, chunk_size=1 << 20)

    def changes(self) -> list[tuple[str, int]]:
        """Paths changed since the container was created: (path, 0 changed/1 added/2 gone)."""
        with engine_errors("list the changes in container %s" % self.name):
            found = self.engine.client.api.diff(self.id) or []
        return [(item["Path"], int(item["Kind"])) for item in found]

    def commit(self, name: str, changes: Sequence[str], message: str) -> str:
        """Commit the container's file system as the image ``name``; return the image ID."""
        repository, _, tag = name.rpartition(":")
        with engine_errors("commit container %s" % self.name):
            result = self.engine.client.api.commit(
                self.id, repository=repository, tag=tag, message=message,
                changes=list(changes), pause=False)
        return result["Id"]
