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

An image gets a name in one of four calls, each given the whole name
(``repository:tag``): loaded (:func:`~pbrx_images.engine.load.load_archive`,
the archive's ``RepoTags``), built (:meth:`Engine.build`), committed
(:meth:`Container.commit`, the builder image only) and tagged
(:meth:`Engine.tag`).  The first three name only cached images and a run's
work tags (:meth:`~pbrx_images.engine.run.Run.work_tag`); an image's real
name is set by :meth:`Engine.tag` alone, from
:func:`pbrx_images.stages.finish.tag_all`, all or nothing, once every image
of the build is there.

The package's modules: :mod:`~pbrx_images.engine.calls` (the SDK's errors in
words for people), :mod:`~pbrx_images.engine.containers` (build containers),
:mod:`~pbrx_images.engine.run` (one build's names and clean-up),
:mod:`~pbrx_images.engine.registry` (registries, the push stream),
:mod:`~pbrx_images.engine.socket_api` (the reads of a local engine without
the SDK) and :mod:`~pbrx_images.engine._sdk` (the SDK, imported when first
used).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from pbrx_images import interrupts
from pbrx_images.engine._sdk import docker
from pbrx_images.engine.calls import engine_errors
from pbrx_images.engine.containers import (IDLE_COMMAND, CommandFailed, Container, close_lifeline,
                                           tar_files)
from pbrx_images.engine.registry import PushStream, push_failure
from pbrx_images.engine.socket_api import SocketAPI, socket_path
from pbrx_images.errors import EngineError
from pbrx_images.plan.target_platform import emulation_missing
from pbrx_images.ui.output import Reporter

if TYPE_CHECKING:  # (the SDK itself is imported when first used: engine/_sdk.py)
    from docker import DockerClient

__all__ = ["IDLE_COMMAND", "CommandFailed", "Connection", "Container", "Engine", "ImageInfo",
           "connect", "engine_errors", "tar_files"]

#: Label of the wheel volumes (containers carry no label: a committed image
#: would inherit it; they are known by their names instead).
LABEL_PROJECT = "org.pbrx-images.project"
#: Every container build-images creates is named ``pbrx-images-...-{run id}-{n}``.
CONTAINER_PREFIX = "pbrx-images-"
#: The repository of every image a run loads before its final tags: ``{project}-{what}:{run id}``.
WORK_REPOSITORY = "pbrx-images-work/"
#: A build container created this long ago (seconds) and never started belongs to a
#: client killed in between: a live run starts its containers at once (or, reading a
#: file, removes them within seconds).
NEVER_STARTED_AFTER = 3600


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(reporter: Reporter, network: str | None = None,
            platform: str | None = None) -> "Engine":
    """Find the engine the standard way (``DOCKER_HOST`` or the default socket).

    An engine on a unix socket is pinged without the SDK, which is imported
    only when the build needs more than :class:`Connection`'s reads.
    """
    address = _engine_address()
    over_ssh = address.startswith("ssh://")
    path = socket_path(address)
    if path is not None:
        api = SocketAPI(path)
        try:
            api.ping()
        except Exception as error:
            raise _unreachable(address, error, over_ssh) from error
        return Engine(Connection(api, lambda: docker.from_env(timeout=600)), reporter,
                      network, platform)
    try:
        # ssh:// through the OpenSSH client, as the docker CLI does (its
        # configuration, agent and known hosts); the SDK still needs paramiko
        client = docker.from_env(timeout=600, use_ssh_client=over_ssh)
        client.ping()
    except docker.errors.DockerException as error:
        raise _unreachable(address, error, over_ssh) from error
    return Engine(client, reporter, network, platform)


def _unreachable(address: str, error: Exception, over_ssh: bool) -> EngineError:
    """Why the engine at ``address`` does not answer, for people."""
    if "Permission denied" in str(error) or isinstance(error, PermissionError) \
            or isinstance(error.__context__, PermissionError):
        return EngineError(
            "Permission denied on the Docker engine at %s: run as a user allowed to use "
            "it (e.g. in the docker group) or point DOCKER_HOST at one you may use."
            % address)
    if over_ssh and "paramiko" in str(error):
        return EngineError(
            "DOCKER_HOST is %s, and the Docker SDK needs paramiko for ssh:// engines: "
            "install it (pip install 'pbrx-images[ssh]') and try again." % address)
    if over_ssh:
        return EngineError(
            "No Docker engine answers at %s: check that 'ssh %s docker version' works "
            "(OpenSSH client, key, known host, docker on the remote machine), then try "
            "again." % (address, address))
    return EngineError(
        "No Docker engine answers at %s: start the Docker daemon, or set DOCKER_HOST "
        "to an engine that runs, and try again." % address)


class _SDKReads:
    """:class:`SocketAPI`'s reads, made by the SDK (``tcp://``, ``ssh://`` engines)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.api.inspect_image(name))
        except docker.errors.ImageNotFound:
            return None

    def history(self, name: str) -> list[dict[str, Any]] | None:
        return list(self.api.history(name))

    def version(self) -> dict[str, Any]:
        return dict(self.api.version())

    def images(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        return list(self.api.images(filters=dict(filters)))

    def containers(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        return list(self.api.containers(all=True, filters=dict(filters)))


class Connection:
    """The way to an engine: its reads, and the SDK client, made when first needed.

    Shared by the engines of one build (:class:`~pbrx_images.stages.alongside.Alongside`
    makes one per thread); the SDK client is made once, under a lock.
    """

    def __init__(self, reads: SocketAPI | _SDKReads | None,
                 make_client: Callable[[], Any]) -> None:
        self._reads = reads
        self._make_client = make_client
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, client: Any) -> "Connection":
        """The connection of an SDK client that is already made."""
        connection = cls(None, lambda: client)
        connection._client = client
        return connection

    @property
    def client(self) -> "DockerClient":
        if self._client is None:
            with self._lock:
                if self._client is None:
                    with engine_errors("connect with the Docker SDK"):
                        self._client = self._make_client()
        return self._client

    @property
    def reads(self) -> SocketAPI | _SDKReads:
        if self._reads is None:
            self._reads = _SDKReads(self.client.api)
        return self._reads


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


class Engine:
    """The Docker engine, with the few operations a build needs."""

    def __init__(self, client: "Connection | DockerClient", reporter: Reporter,
                 network: str | None = None, platform: str | None = None) -> None:
        #: how this engine is reached (an SDK client given is wrapped in one)
        self.connection = client if isinstance(client, Connection) else Connection.of(client)
        self.reporter = reporter
        #: network mode of every build container and docker build; None = default
        self.network = network
        #: ``os/arch[/variant]`` of every container and build; None = the engine's own
        self.platform = platform
        self._needs_complete_archives: bool | None = None
        #: set when the build is being cleaned up: no new container from then on
        self.closed = False

    @property
    def client(self) -> "DockerClient":
        """The Docker SDK's client (made, and the SDK imported, on first use)."""
        return self.connection.client

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
            return self.connection.reads.inspect_image(image)

    def history(self, image: str) -> list[dict[str, Any]]:
        """The engine's history of ``image``, newest first."""
        with engine_errors("read the history of image %s" % image):
            found = self.connection.reads.history(image)
        if found is None:
            raise EngineError("The Docker engine has no image %s: run build-images again."
                              % image)
        return list(found)

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
                components = self.connection.reads.version().get("Components") or ()
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
                    close_lifeline(lifeline)

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
            images = self.connection.reads.images({"reference": WORK_REPOSITORY + "*"})
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
            found = self.connection.reads.containers(
                {"name": "^/" + re.escape(CONTAINER_PREFIX)})
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
