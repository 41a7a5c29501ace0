"""The Docker engine, reached through the Docker SDK: where containers run.

Everything the build does to the engine goes through :class:`Engine` and
:class:`Container`; no other module talks to the Docker SDK.  No host
directory is ever bind-mounted: files go in and out through the archive API,
and wheels live in a named volume, so the same code works against a remote
``DOCKER_HOST``.

Containers are created with a command that idles (:data:`IDLE_COMMAND`, which
ends when the client dies) and work happens through ``exec``: the
environment of an exec (pip settings, proxies) is not part of the
container's configuration, so it never reaches a committed image.  Every
container is removed when its ``with`` block ends, however it ends.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import tarfile
import time
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

import docker
import docker.errors
import docker.types

from pbrx_images import interrupts
from pbrx_images.engine.registry import PushStream, push_failure
from pbrx_images.errors import BuildError, EngineError
from pbrx_images.plan.target_platform import emulation_missing, of_image
from pbrx_images.ui.output import Reporter

#: Label of the wheel volumes (containers carry no label: a committed image
#: would inherit it; they are known by their names instead).
LABEL_PROJECT = "org.pbrx-images.project"
#: Every container build-images creates is named ``pbrx-images-...-{run id}-{n}``.
CONTAINER_PREFIX = "pbrx-images-"
#: What a build container runs while commands run in it through exec: it reads its
#: standard input, which the client holds open (see :meth:`Engine.container`), and
#: ends when that closes, so a killed client's containers stop.
IDLE_COMMAND = ["/bin/sh", "-c", "while read -r _; do :; done"]
#: The repository of every image a run loads before its final tags: ``{project}-{what}:{run id}``.
WORK_REPOSITORY = "pbrx-images-work/"
#: A build container created this long ago (seconds) and never started belongs to a
#: client killed in between: a live run starts its containers at once (or, reading a
#: file, removes them within seconds).
NEVER_STARTED_AFTER = 3600


class CommandFailed(Exception):
    """A command in a build container exited non-zero."""

    def __init__(self, command: str, exit_code: int, output: str) -> None:
        super().__init__("%r exited with %d" % (command, exit_code))
        self.command = command
        self.exit_code = exit_code
        self.output = output


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(reporter: Reporter, network: str | None = None,
            platform: str | None = None) -> "Engine":
    """Find the engine the standard way (``DOCKER_HOST`` or the default socket)."""
    address = _engine_address()
    over_ssh = address.startswith("ssh://")
    try:
        # ssh:// through the OpenSSH client, as the docker CLI does (its
        # configuration, agent and known hosts); the SDK still needs paramiko
        client = docker.from_env(timeout=600, use_ssh_client=over_ssh)
        client.ping()
    except docker.errors.DockerException as error:
        if "Permission denied" in str(error) or isinstance(error.__context__, PermissionError):
            raise EngineError(
                "Permission denied on the Docker engine at %s: run as a user allowed to use "
                "it (e.g. in the docker group) or point DOCKER_HOST at one you may use."
                % address) from error
        if over_ssh and "paramiko" in str(error):
            raise EngineError(
                "DOCKER_HOST is %s, and the Docker SDK needs paramiko for ssh:// engines: "
                "install it (pip install 'pbrx-images[ssh]') and try again." % address
            ) from error
        if over_ssh:
            raise EngineError(
                "No Docker engine answers at %s: check that 'ssh %s docker version' works "
                "(OpenSSH client, key, known host, docker on the remote machine), then try "
                "again." % (address, address)) from error
        raise EngineError(
            "No Docker engine answers at %s: start the Docker daemon, or set DOCKER_HOST "
            "to an engine that runs, and try again." % address) from error
    return Engine(client, reporter, network, platform)


def _translate(error: Exception, doing: str) -> BuildError:
    """An SDK or connection error, as one sentence for the user."""
    if isinstance(error, docker.errors.APIError):
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
    except (docker.errors.DockerException, ConnectionError, OSError) as error:
        raise _translate(error, doing) from error
    except Exception as error:  # requests' errors do not all derive from OSError
        if type(error).__module__.startswith(("requests", "urllib3")):
            raise _translate(error, doing) from error
        raise


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


def _close_lifeline(lifeline: Any) -> None:
    """Close the connection :meth:`Engine.container` holds to a container's input."""
    raw = getattr(lifeline, "_sock", lifeline)  # the socket under a socket.SocketIO
    with contextlib.suppress(OSError, AttributeError):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError, AttributeError):
        lifeline.close()
    with contextlib.suppress(OSError, AttributeError):
        raw.close()


def _registry_digest(repo_digests: Sequence[str], image_id: str) -> str:
    """The digest a registry knows the image by, else its ID.

    Podman lists a digest under ``localhost/`` for every image, pushed or not:
    that is no registry's, so it does not count.
    """
    return next((entry.rpartition("@")[2] for entry in repo_digests
                 if "@" in entry and not entry.startswith("localhost/")), image_id)


@dataclass(frozen=True)
class ImageInfo:
    """What the build needs to know of an image."""

    id: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: tuple[str, ...]
    user: str
    size: int
    digest: str  #: the registry digest when the image has one, else its ID
    os: str = ""  #: e.g. linux
    architecture: str = ""  #: e.g. amd64, arm64
    variant: str = ""  #: e.g. v7 for arm


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

    def commit(self, repository: str, tag: str, changes: Sequence[str],
               message: str) -> str:
        """Commit the container's file system as an image; return the image ID."""
        with engine_errors("commit container %s" % self.name):
            result = self.engine.client.api.commit(
                self.id, repository=repository, tag=tag, message=message,
                changes=list(changes), pause=False)
        return result["Id"]


class Engine:
    """The Docker engine, with the few operations a build needs."""

    def __init__(self, client: docker.DockerClient, reporter: Reporter,
                 network: str | None = None, platform: str | None = None) -> None:
        self.client = client
        self.reporter = reporter
        #: network mode of every build container and docker build; None = default
        self.network = network
        #: ``os/arch[/variant]`` of every container and build; None = the engine's own
        self.platform = platform
        self._needs_complete_archives: bool | None = None
        #: set when the build is being cleaned up: no new container from then on
        self.closed = False

    def image(self, name: str) -> ImageInfo | None:
        """The image called ``name`` (a name or an ID), or None if the engine has none."""
        attrs = self.inspect(name)
        if attrs is None:
            return None
        config = attrs.get("Config") or {}
        entrypoint = config.get("Entrypoint")
        cmd = config.get("Cmd")
        return ImageInfo(
            id=attrs["Id"],
            entrypoint=tuple(entrypoint) if entrypoint else None,
            cmd=tuple(cmd) if cmd else None,
            env=tuple(config.get("Env") or ()),
            user=config.get("User") or "",
            size=attrs.get("Size") or 0,
            digest=_registry_digest(attrs.get("RepoDigests") or (), attrs["Id"]),
            os=attrs.get("Os") or "",
            architecture=attrs.get("Architecture") or "",
            variant=attrs.get("Variant") or "",
        )

    def require_image(self, name: str) -> ImageInfo:
        """The image ``name``, pulled if the engine does not have it yet."""
        found = self.image(name)
        if found is not None:
            return found
        self.reporter.say("    pulling %s" % name)
        try:
            self.client.images.pull(name, platform=self.platform)
        except docker.errors.DockerException as error:
            detail = getattr(error, "explanation", None) or str(error)
            raise EngineError(
                "The base image %s is not on the engine and could not be pulled (%s): pull "
                "or build it first, or name another one with --base-image."
                % (name, str(detail).strip().rstrip("."))) from error
        found = self.image(name)
        if found is None:
            raise EngineError("The base image %s could not be found after pulling it." % name)
        return found

    def inspect(self, image: str) -> dict[str, Any] | None:
        """The engine's inspect output of ``image``, or None if it has no such image."""
        with engine_errors("inspect image %s" % image):
            try:
                return dict(self.client.api.inspect_image(image))
            except docker.errors.ImageNotFound:
                return None

    def history(self, image: str) -> list[dict[str, Any]]:
        """The engine's history of ``image``, newest first."""
        with engine_errors("read the history of image %s" % image):
            return list(self.client.api.history(image))

    @property
    def needs_complete_archives(self) -> bool:
        """Whether ``docker load`` here needs every layer of an image in the archive.

        Docker's load skips a layer whose chain ID it has without reading its
        file, so archives may leave out layers the engine has; podman's (4.3)
        refuses such an archive ("Some layer tarfiles are missing in the
        tarball").  Known from the version API, asked once per engine:
        podman names its component "Podman Engine".  A load that leaves out
        layers and fails also tells (runtime.load_archive then sets it).
        """
        if self._needs_complete_archives is None:
            with engine_errors("read the engine's version"):
                components = self.client.api.version().get("Components") or ()
            self._needs_complete_archives = any(
                "podman" in str(component.get("Name") or "").lower()
                for component in components if isinstance(component, dict))
        return self._needs_complete_archives

    @needs_complete_archives.setter
    def needs_complete_archives(self, value: bool) -> None:
        self._needs_complete_archives = value

    def save(self, image: str) -> Iterator[bytes]:
        """``docker save`` of ``image``, streamed in chunks."""
        with engine_errors("save image %s" % image):
            yield from self.client.api.get_image(image, chunk_size=1 << 20)

    def load(self, archive: Iterable[bytes], what: str) -> None:
        """``docker load`` of a tar given in chunks (streamed to the engine).

        SIGINT and SIGTERM wait for the load to end: once the archive is
        sent, the engine finishes a load whose client went away and tags its
        image then, after any clean-up could have removed the tag.
        """
        with interrupts.deferred(), engine_errors("load %s" % what):
            for line in self.client.api.load_image(archive, quiet=True):
                if not isinstance(line, dict):
                    continue
                if line.get("error"):
                    raise EngineError("The Docker engine could not load %s: %s."
                                      % (what, str(line["error"]).rstrip(".")))
                if line.get("stream"):
                    self.reporter.output(line["stream"])

    def layers(self, image: str) -> list[dict[str, object]]:
        """The image's history, oldest first: what made each layer, and its size."""
        history = self.history(image)
        return [{"created_by": entry.get("CreatedBy") or entry.get("Comment") or "",
                 "comment": entry.get("Comment") or "", "size": entry.get("Size") or 0}
                for entry in reversed(history)]

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        """Create the named volume unless it exists."""
        with engine_errors("create volume %s" % name):
            try:
                self.client.api.inspect_volume(name)
            except docker.errors.NotFound:
                self.client.api.create_volume(name, labels=dict(labels))

    @contextlib.contextmanager
    def container(self, image: str, name: str,
                  volumes: Mapping[str, tuple[str, bool]] | None = None,
                  start: bool = True) -> Iterator[Container]:
        """A running container from ``image``, removed when the block ends.

        ``volumes`` maps a mount point to ``(volume name, read_only)``.
        Without ``start`` it is only created: enough to put files into it
        and its volumes (the engine mounts them for that), and quicker.

        The client attaches to a started container's standard input before
        starting it, and holds that connection until the container is
        removed: when the client dies (SIGKILL, out of memory) the
        connection closes, the engine closes the input (``StdinOnce``) and
        :data:`IDLE_COMMAND` ends, so the container stops rather than idle
        forever; the next build removes it with the other exited ones.
        """
        if self.closed:
            raise EngineError("No new container: the build is being cleaned up.")
        mounts = [docker.types.Mount(target, source, type="volume", read_only=read_only)
                  for target, (source, read_only) in (volumes or {}).items()]
        api = self.client.api
        lifeline: Any = None
        try:
            with engine_errors("create a container from %s" % image):
                created = api.create_container(
                    image, name=name, entrypoint=IDLE_COMMAND, command=[],
                    stdin_open=start,  # (the SDK then sets StdinOnce too)
                    host_config=api.create_host_config(mounts=mounts,
                                                       network_mode=self.network),
                    platform=self.platform)
                try:
                    if start:
                        lifeline = api.attach_socket(created["Id"],
                                                     params={"stdin": 1, "stream": 1})
                        api.start(created["Id"])
                except docker.errors.APIError as error:
                    if "exec format error" in str(error.explanation or error):
                        raise emulation_missing(self.platform or "these", str(
                            error.explanation or error)) from error
                    raise
            yield Container(self, created["Id"], name)
        finally:
            try:
                self.remove_container(name)
            finally:
                if lifeline is not None:
                    _close_lifeline(lifeline)

    def remove_container(self, name: str) -> None:
        """Remove a container by name, running or not; missing is fine."""
        with contextlib.suppress(docker.errors.NotFound):
            with engine_errors("remove container %s" % name):
                try:
                    self.client.api.remove_container(name, force=True, v=False)
                except docker.errors.NotFound:
                    pass

    def remove_dead_containers(self, never_started_after: float = NEVER_STARTED_AFTER) -> None:
        """Remove build containers of runs that are gone.

        Build containers idle while in use, so an exited (or dead) one
        belongs to no live run (its engine was restarted, its client
        killed).  One created ``never_started_after`` seconds ago or more
        and never started was left by a client killed between the two.
        """
        now = time.time()
        for container, _ in self._build_containers():
            state = container.get("State")
            if state in ("exited", "dead") or (state == "created" and now - float(
                    container.get("Created") or now) >= never_started_after):
                self.remove_container(container["Id"])

    def remove_dead_work_tags(self) -> list[str]:
        """Remove the work tags (``{WORK_REPOSITORY}...:{run id}``) of runs that are gone.

        A run keeps its wheel container from before its first work tag to
        after its last is dropped, so a run ID with no container left at all
        belongs to a run that was killed (or lost its engine) before its
        clean-up.  Returns the tags removed.
        """
        with engine_errors("list images"):
            images = self.client.api.images(filters={"reference": WORK_REPOSITORY + "*"})
        tags = [tag for image in images for tag in image.get("RepoTags") or ()
                if tag.startswith(WORK_REPOSITORY) and ":" in tag]
        if not tags:
            return []
        names = [name for _, names in self._build_containers() for name in names]
        removed = []
        for tag in tags:
            run_id = tag.rpartition(":")[2]
            if not any("-%s-" % run_id in name for name in names):
                self.untag(tag)
                removed.append(tag)
        return removed

    def remove_run_containers(self, run_id: str) -> None:
        """Remove every container of the run ``run_id``, running or not."""
        for container, names in self._build_containers():
            if any("-%s-" % run_id in name for name in names):
                self.remove_container(container["Id"])

    def _build_containers(self) -> list[tuple[dict[str, Any], list[str]]]:
        """Every build container, running or not, as the engine lists it, with its names.

        Only the names that start with :data:`CONTAINER_PREFIX` are given.
        """
        with engine_errors("list containers"):
            found = self.client.api.containers(
                all=True, filters={"name": "^/" + re.escape(CONTAINER_PREFIX)})
        listed = []
        for container in found:
            names = [name.lstrip("/") for name in container.get("Names") or ()
                     if name.lstrip("/").startswith(CONTAINER_PREFIX)]
            if names:
                listed.append((container, names))
        return listed

    def read_file(self, image: str, path: str, name: str) -> bytes | None:
        """The content of a file in an image, read without starting a container."""
        api = self.client.api
        try:
            with engine_errors("read %s from image %s" % (path, image)):
                api.create_container(image, name=name, entrypoint=IDLE_COMMAND,
                                     command=[], platform=self.platform)
                for _ in range(8):  # follow symbolic links such as /etc/os-release
                    try:
                        stream, _ = api.get_archive(name, path)
                    except docker.errors.NotFound:
                        return None
                    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                        member = archive.next()
                        if member is None:
                            return None
                        if member.issym():
                            path = os.path.normpath(os.path.join(os.path.dirname(path),
                                                                 member.linkname))
                            continue
                        handle = archive.extractfile(member)
                        return handle.read() if handle else None
                return None
        finally:
            self.remove_container(name)

    def tag(self, image_id: str, name: str) -> None:
        """Point ``name`` (``repository:tag``) at ``image_id``."""
        repository, _, tag = name.rpartition(":")
        with engine_errors("tag image %s as %s" % (image_id[:19], name)):
            self.client.api.tag(image_id, repository, tag, force=True)

    def untag(self, name: str) -> None:
        """Remove the tag ``name``; the image goes too if nothing else uses it."""
        with contextlib.suppress(docker.errors.NotFound):
            with engine_errors("remove tag %s" % name):
                try:
                    self.client.api.remove_image(name, noprune=False)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as error:
                    if error.status_code != 409:  # still used by a container or image
                        raise

    def push(self, name: str) -> PushStream:
        """Push ``name`` (``repository:tag``) to the registry in its name.

        The SDK sends the credentials the Docker client's configuration holds
        for that registry (``$DOCKER_CONFIG`` or ``~/.docker/config.json``,
        credential helpers included).  A failure is a BuildError that says
        what to do; the returned stream has the digest the registry gave.
        """
        repository, _, tag = name.rpartition(":")
        stream = PushStream(name)
        with engine_errors("push %s" % name):
            self.reporter.command("push %s" % name)
            try:
                for chunk in self.client.api.push(repository, tag, stream=True, decode=True):
                    line = stream.feed(chunk)
                    if line is not None:
                        self.reporter.output(line + "\n")
            except docker.errors.APIError as error:  # refused before the stream began
                detail = error.explanation or str(error)
                stream.error = (detail.decode("utf-8", "replace") if isinstance(detail, bytes)
                                else str(detail))
        if stream.error is not None:
            raise push_failure(name, stream.error)
        if stream.digest is None:
            raise push_failure(name, "the engine reported no digest for the pushed image")
        return stream

    def build(self, context_dir: str, dockerfile: str, name: str,
              buildargs: Mapping[str, str], labels: Mapping[str, str]) -> str:
        """``docker build`` of ``dockerfile`` in ``context_dir``; return the image ID."""
        return self._build(name, "-f " + dockerfile, path=context_dir, dockerfile=dockerfile,
                           buildargs=dict(buildargs), labels=dict(labels))

    def build_from_text(self, dockerfile_text: str, name: str,
                        labels: Mapping[str, str]) -> str:
        """Build a Dockerfile given as text, with no context; return the image ID."""
        buffer = io.BytesIO(tar_files({"/Dockerfile": dockerfile_text.encode()}))
        return self._build(name, "(generated Dockerfile)", fileobj=buffer,
                           custom_context=True, labels=dict(labels))

    def _build(self, name: str, what: str, **arguments: object) -> str:
        """Run a legacy ``docker build``, streaming its output to the log."""
        image_id = None
        with engine_errors("build %s" % name):
            for chunk in self.client.api.build(tag=name, rm=True, forcerm=True, pull=False,
                                               decode=True, network_mode=self.network,
                                               platform=self.platform, **arguments):
                if "stream" in chunk:
                    self.reporter.output(chunk["stream"])
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    self.reporter.output(chunk["error"] + "\n")
                    raise CommandFailed("docker build " + what, 1, chunk["error"])
        found = self.image(image_id or name)
        if found is None:
            raise EngineError("Building %s produced no image." % name)
        return found.id
