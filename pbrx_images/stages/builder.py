"""The builder stage: a builder image with the compile packages, and wheels.

The builder image (base image + bindep's compile and runtime packages + git +
a virtualenv with current pip, setuptools and wheel) is cached under a tag
that hashes all its inputs, so projects with the same inputs share it and a
different input never reuses it.  Wheels are built in a container from it into the
project's named wheel volume, which persists between runs: a wheel that is
already there is copied, not rebuilt.

Each run works in its own directory of the volume (``runs/{run id}``), which
holds exactly the wheels of this build, the lock and the constraints; the
runtime stage installs from there.  New wheels are published into the shared
cache with an atomic rename, so concurrent builds never see half a file.

With a shared build cache (``--cache-from``), the project's wheel and a lock
with its wheels may come from a registry instead, under the same keys
(:mod:`pbrx_images.stages.shared_wheels`); with both, the wheel container
is of the base image and no builder image is made.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pbrx_images import container_tools
from pbrx_images.cache.files import UNUSED_FOR
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.container_tools.build_wheel import BUILD_REQUIRES_MARK
from pbrx_images.engine import CommandFailed, Container, Engine, ImageInfo
from pbrx_images.errors import BuildError
from pbrx_images.plan.cache_keys import (BUILD_TOOLS, build_env_key, build_tool_constraints,
                                         cache_key, cached_image_name, lock_key, project_wheel_key)
from pbrx_images.plan.lock import Lock, lock_from_report
from pbrx_images.plan.package_manager import PackageManager
from pbrx_images.plan.wheel_volume import (WHEELS, WheelBuild, lock_record, pip_directory,
                                           run_dir)
from pbrx_images.project.metadata import ProjectMetadata
from pbrx_images.project.pyproject import DEFAULT_BUILD_REQUIREMENTS, LEGACY_BUILD_BACKEND
from pbrx_images.project.wheel_metadata import read_wheel
from pbrx_images.stages import shared_wheels
from pbrx_images.ui.output import Reporter

if TYPE_CHECKING:  # (imported only by builds that have one: it imports requests)
    from pbrx_images.cache.shared import SharedCache

#: Where the project's source is unpacked in the wheel container (fresh for each attempt).
PROJECT_COPY = "/tmp/project"
#: Where pip's configuration and certificates go in the builder (never committed).
PIP_DIR = "/tmp/pbrx-images-pip"
#: The builder's own virtualenv.
BUILDER_VENV = "/opt/pbrx-images-builder"
#: Compiled extensions are built without debug information: the compiler
#: would record pip's randomly named build directory in it, so two builds of
#: the same sdist would differ (and the debug information is most of an
#: extension's size; Debian strips its own packages too).  Appended after the
#: interpreter's own flags, so -g0 overrides its -g.
COMPILE_ENVIRONMENT = {"CFLAGS": "-g0", "CXXFLAGS": "-g0"}
#: Builds the project's wheel with its PEP 517 backend, in the kept build environment
#: (``container_tools/build_wheel.py``; it says a missing build requirement with
#: BUILD_REQUIRES_MARK).
BUILD_HOOK = "/tmp/pbrx-images-tools/build_wheel.py"
#: Run directories older than this (seconds) were left by a killed build.
STALE_AFTER = 24 * 3600
#: The wheel cache's file operations, run by python3 in the builder
#: (``container_tools/wheel_cache.py``).
CACHE_TOOL = "/tmp/pbrx-images-tools/wheel_cache.py"


def reuse_cached_image(engine: Engine, name: str, no_cache: bool) -> bool:
    """True (and said) when the engine has the cached image ``name`` and it may be used."""
    if no_cache or engine.image(name) is None:
        return False
    engine.reporter.say("    reusing %s" % name)
    return True


_FAILED_WHEEL_PATTERNS = (
    re.compile(r"Failed building wheel for ([\w.\-]+)"),
    re.compile(r"Failed to build '([^']+)'"),  # pip >= 25
    re.compile(r"^Failed to build (?!one or more wheels$|installable wheels )"
               r"([\w.\-]+(?: [\w.\-]+)*)$"),
    re.compile(r"Could not build wheels for ([\w.\-, ]+?)(?:, which|$)"),
    re.compile(r"Failed to build installable wheels for .*\(([^)]+)\)"),
)


def failed_wheels(output: str) -> list[str]:
    """The distributions pip says it could not build, in pip's words."""
    found: list[str] = []
    for line in output.splitlines():
        for pattern in _FAILED_WHEEL_PATTERNS:
            match = pattern.search(line.strip())
            if match:
                for name in re.split(r"[,\s]+", match.group(1).strip()):
                    if name and name not in found:
                        found.append(name)
    return found


def install_packages(container: Container, manager: PackageManager, packages: tuple[str, ...],
                     image: str, environment: Mapping[str, str]) -> None:
    """Install distro packages, with a clear error for a name the distro lacks."""
    try:
        container.run(manager.install_command(packages), environment)
    except CommandFailed as failure:
        missing = manager.missing_packages(failure.output)
        if missing:
            raise BuildError("The distribution in %s has no package %s: fix the name in "
                             "bindep.txt or limit it with a platform selector such as "
                             "[platform:dpkg]." % (image, ", ".join(repr(m) for m in missing)))
        raise


@dataclass(frozen=True)
class ProjectWheel:
    """The project's wheel in a run, built or reused, and the container it is in."""

    container: Container  #: the wheel container, still running (the volume read-write)
    builder_image: str
    run_id: str
    wheel: str  #: its file name in the run directory
    data: bytes
    metadata: ProjectMetadata  #: read from the wheel: what the plan is made from
    constraints: bytes


class Builder:
    """Makes the builder image and builds wheels with it."""

    def __init__(self, engine: Engine, reporter: Reporter, work_name: str,
                 pip_files: Mapping[str, bytes],
                 pip_environment: Mapping[str, str], no_cache: bool,
                 refresh: bool = False, facts: ImageFacts | None = None,
                 shared: SharedCache | None = None) -> None:
        self.engine = engine
        #: the shared build cache, which gets the wheels and the lock (``--cache-to``)
        self.shared = shared
        #: where what a project's build backend asked for beyond its requires is remembered
        self.facts = facts
        #: resolve again rather than reuse the lock of the same requirements
        self.refresh = refresh
        self.reporter = reporter
        self.work_name = work_name
        self.pip_files = dict(pip_files)
        self.pip_environment = dict(pip_environment)
        self.no_cache = no_cache
        #: the wheel container, idle and kept (see :meth:`wheels`' ``keep``) once its step is done
        self.wheel_container: Container | None = None

    @staticmethod
    def image_name(base: ImageInfo, manager: PackageManager, packages: tuple[str, ...],
                   constraints: bytes) -> str:
        """The name of the builder image of these inputs, whether it exists or not.

        The wheel volume's keys (and the shared cache's) hash it: a build
        that finds every wheel it needs needs no builder image.
        """
        return cached_image_name("builder", base.id, manager.name, " ".join(packages),
                                 hashlib.sha256(build_tool_constraints(constraints)).hexdigest())

    def image(self, base: ImageInfo, base_name: str, manager: PackageManager,
              packages: tuple[str, ...], constraints: bytes, container_name: str) -> str:
        """The builder image's name, made unless a cached one has the same inputs."""
        name = self.image_name(base, manager, packages, constraints)
        constraints = build_tool_constraints(constraints)
        if reuse_cached_image(self.engine, name, self.no_cache):
            return name
        with self.engine.container(base.id, container_name) as container:
            install_packages(container, manager, packages, base_name, self.pip_environment)
            files = dict(self.pip_files)
            files[PIP_DIR + "/user-constraints.txt"] = constraints
            container.put_files(files)
            container.run(
                "python3 -m venv %s && %s/bin/pip install --upgrade -c %s %s"
                % (BUILDER_VENV, BUILDER_VENV, PIP_DIR + "/user-constraints.txt",
                   " ".join(BUILD_TOOLS)), self.pip_environment)
            container.run("rm -rf %s /root/.cache /tmp/* && if command -v git >/dev/null; "
                          "then git config --system --add safe.directory '*'; fi" % PIP_DIR)
            container.commit(name, image_config_changes(base),
                             "pbrx-images builder for %s" % self.work_name)
        return name

    def project_wheel(self, builder_image: str, volume: str, run_id: str,
                      source: bytes, source_digest: str, constraints: bytes,
                      container_name: str, keep: contextlib.ExitStack,
                      build_requires: Sequence[str] = DEFAULT_BUILD_REQUIREMENTS,
                      backend: tuple[str, Sequence[str]] = (LEGACY_BUILD_BACKEND, ()),
                      seed: tuple[str, bytes] | None = None, image: str | None = None,
                      ) -> ProjectWheel:
        """Start the wheel container and build the project's wheel into ``runs/{run_id}``.

        ``source`` (an archive of the project, as :func:`archive_source`
        makes it) is unpacked at :data:`PROJECT_COPY` in the wheel container,
        with the tools it runs, in one copy; the project is built there by
        its build ``backend`` (name and backend-path) in the kept build
        environment of ``build_requires`` (its ``[build-system] requires``;
        see :meth:`_project_wheel`), unless the wheel of the same source is
        kept in the volume.  The wheel container is removed when ``keep``
        closes; it is :attr:`wheel_container` once the dependencies' wheels
        are built (:meth:`dependency_wheels`), and the caller can run
        commands in it later (it mounts the volume read-write).  The wheel's
        metadata is what the plan is made from.

        ``seed`` is the (file name, bytes) of the same wheel from the shared
        cache, taken when the volume lacks it.  The container is of
        ``image`` when given: the base image, when the wheels all come from
        the shared cache and no builder image is made (``builder_image``
        still names the builder those wheels were made by, for the keys).
        """
        run = run_dir(run_id)
        env = {**self.pip_environment, **COMPILE_ENVIRONMENT}
        key = project_wheel_key(builder_image, source_digest, build_requires, backend)
        project_cache = "%s/projects/%s" % (WHEELS, key)
        container = keep.enter_context(self.engine.container(
            image or builder_image, container_name, {WHEELS: (volume, False)}))
        container.put_files({CACHE_TOOL: container_tools.source("wheel_cache.py"),
                             BUILD_HOOK: container_tools.source("build_wheel.py"),
                             run + "/constraints.txt": constraints, **self.pip_files},
                            trees={PROJECT_COPY: source})
        # The project's own wheel, cached by the digest of its source tree.
        built_here = not container.run("python3 %s start %s %d %d %s" % (
            CACHE_TOOL, WHEELS, STALE_AFTER, UNUSED_FOR, project_cache)
        ).strip() or self.no_cache
        if built_here and seed is not None:
            container.put_files({"/tmp/project-wheel/" + seed[0]: seed[1]})
            self.reporter.say("    the project's wheel, from the shared cache")
        elif built_here:
            self._project_wheel(container, builder_image, run_id, source, build_requires,
                                backend, env)
        wheel_name = container.run("python3 %s project %s" % (CACHE_TOOL, (
            "/tmp/project-wheel %s %s %s" % (run, project_cache, run_id)) if built_here
            else "%s %s" % (project_cache, run))).strip()
        wheel_data = container.read_file(run + "/" + wheel_name)
        if self.shared is not None:
            self.shared.keep_project_wheel(key, wheel_name, wheel_data)
        return ProjectWheel(container, builder_image, run_id, wheel_name, wheel_data,
                            read_wheel(Path(wheel_name), wheel_data), constraints)

    def lock_key(self, builder_image: str, metadata: ProjectMetadata, extras: Sequence[str],
                 constraints: bytes) -> str:
        """The key of the lock of the project of ``metadata`` with ``extras``."""
        return lock_key(builder_image, metadata.name or "", metadata.requires, extras,
                        constraints, self.pip_files, self.pip_environment)

    def dependency_wheels(self, project: ProjectWheel, extras: Sequence[str],
                          seed: tuple[dict[str, Any], dict[str, bytes]] | None = None
                          ) -> WheelBuild:
        """Every wheel the project's wheel with ``extras`` needs, and the lock, into its run.

        The same requirements, constraints, pip settings and builder resolved
        before (a lock record in the volume): that lock and its wheels,
        unless they must be resolved again (``--refresh``, ``--no-cache``).
        ``seed``, the same lock record and its wheels from the shared cache,
        is taken when the volume lacks them; it needs no pip, so the wheel
        container may be of the base image.
        """
        container, metadata, wheel_name = project.container, project.metadata, project.wheel
        run = run_dir(project.run_id)
        env = {**self.pip_environment, **COMPILE_ENVIRONMENT}
        find_links = "" if self.no_cache else "--find-links %s " % WHEELS
        requirement = "%s/%s%s" % (run, wheel_name, "[%s]" % ",".join(extras) if extras else "")
        key = self.lock_key(project.builder_image, metadata, extras, project.constraints)
        record = "%s/locks/%s.json" % (WHEELS, key)
        reused = None if self.no_cache or self.refresh else _lock_record(container.run(
            "python3 %s reuse %s %s %s" % (CACHE_TOOL, record, WHEELS, run)))
        if reused is None and seed is not None:
            # the shared cache's: into the run, then into the volume's cache as if resolved
            shared_record, wheels = seed
            pip = str(shared_record["pip"])
            container.put_files({"%s/%s" % (run + "/tools" if name == pip else run, name): data
                                 for name, data in wheels.items()})
            container.put_files({run + "/lock-record.json": json.dumps(shared_record).encode()})
            container.run("python3 %s publish %s %s %s %s" % (
                CACHE_TOOL, run, WHEELS, project.run_id, shlex.quote(wheel_name)))
            reused = _lock_record(container.run(
                "python3 %s remember %s/lock-record.json %s && python3 %s reuse %s %s %s"
                % (CACHE_TOOL, run, record, CACHE_TOOL, record, WHEELS, run)))
            if reused is None:
                raise BuildError("The lock and wheels from the shared cache could not be put "
                                 "into the wheel volume: run again with --no-cache.")
            self.reporter.say("    the lock and wheels of the same requirements, from the "
                              "shared cache")
            lock, pip_wheel, digests = reused
        elif reused is not None:  # its wheels came from the cache: nothing to publish
            lock, pip_wheel, digests = reused
            self.reporter.say("    the lock and wheels of the same requirements, "
                              "reused (--refresh resolves again)")
        else:
            lock, pip_wheel = self._resolve(container, run, requirement,
                                            metadata.name or "", find_links, env)
            digests = {name: digest for name, digest in _sha256sums(container.run(
                "cd %s && find . -maxdepth 1 -name '*.whl' -exec sha256sum {} +" % run)
            ).items() if name != wheel_name}
            container.run("python3 %s publish %s %s %s %s"
                          % (CACHE_TOOL, run, WHEELS, project.run_id, shlex.quote(wheel_name)))
            # once published, the wheels it names are in the cache
            container.put_files({run + "/lock-record.json": json.dumps(
                lock_record(lock, pip_wheel, digests)).encode()})
            container.run("python3 %s remember %s/lock-record.json %s"
                          % (CACHE_TOOL, run, record))
        if self.shared is not None:
            shared_wheels.keep_lock(self.shared, container, run, key, lock, pip_wheel,
                                    digests)
        digests = dict(digests, **{wheel_name: hashlib.sha256(project.data).hexdigest()})
        self.wheel_container = container
        return WheelBuild(metadata, wheel_name, lock, pip_wheel, digests, key)

    def _project_wheel(self, container: Container, builder_image: str, run_id: str,
                       source: bytes, build_requires: Sequence[str],
                       backend: tuple[str, Sequence[str]], env: Mapping[str, str]) -> None:
        """Build the project's wheel from :data:`PROJECT_COPY` into /tmp/project-wheel.

        pip's build isolation would install the build requirements from the
        index for every build: a code change would need the network and a
        second.  They are installed once into a virtualenv kept in the wheel
        volume (``build-envs/{key}``, the key hashing the requirements, the
        builder and the pip settings), remade with ``--refresh`` or
        ``--no-cache``, and the wheel is built in it by calling the
        backend's ``build_wheel`` hook (:data:`BUILD_HOOK`), as pip would
        without isolation but without pip's half second around it.  The
        requirements are the project's ``[build-system] requires`` and what
        the backend's ``get_requires_for_build_wheel`` adds (a setup.py's
        ``setup_requires``, such as pbr): the hook checks the environment has
        those, and names them when it does not, for an environment that has
        them (remembered in the facts for the next build).  Should that
        fail, the wheel is built the usual way, by pip with isolation.
        """
        run = run_dir(run_id)
        pip = BUILDER_VENV + "/bin/pip"
        name, paths = backend
        remembered = cache_key(build_env_key(builder_image, build_requires, self.pip_files,
                                             self.pip_environment), self.work_name)
        added = _requirement_list(self.facts.get("build-requires", remembered)
                                  if self.facts is not None else None) or []
        try:
            for _ in range(2):
                requires = list(dict.fromkeys(list(build_requires) + added))
                build_env = "%s/build-envs/%s" % (WHEELS, build_env_key(
                    builder_image, requires, self.pip_files, self.pip_environment))
                made = container.run(
                    "touch -c %(env)s && "  # used now: not pruned (see wheel_cache.py)
                    "if [ -n \"$REMAKE\" ] || [ ! -x %(env)s/bin/python ]; then "
                    "T=%(env)s.tmp-%(run)s && rm -rf $T && python3 -m venv --without-pip $T && "
                    "%(pip)s --python $T/bin/python install --quiet %(requires)s && "
                    "python3 %(tool)s settle $T %(env)s %(run)s \"$REMAKE\" && echo made; fi"
                    % {"env": build_env, "run": run_id, "pip": pip, "tool": CACHE_TOOL,
                       "requires": " ".join(shlex.quote(item) for item in requires)},
                    dict(env, REMAKE="1" if self.no_cache or self.refresh else ""),
                    workdir="/tmp").strip()
                try:
                    container.run("%s/bin/python %s %s /tmp/project-wheel %s %s" % (
                        build_env, BUILD_HOOK, shlex.quote(name),
                        shlex.quote(json.dumps(requires)),
                        " ".join(shlex.quote(path) for path in paths)), env,
                        workdir=PROJECT_COPY)
                except CommandFailed as failure:
                    asked = _requirement_list(_build_requires_asked(failure))
                    if asked is None or set(asked) <= set(requires):
                        raise
                    added = [item for item in asked if item not in build_requires]
                    if self.facts is not None:
                        self.facts.put("build-requires", remembered, added)
                    continue
                self.reporter.say("    the project's wheel, built by %s in the %s build "
                                  "environment (%s)" % (name, "new" if made else "kept",
                                                        " ".join(requires)))
                return
        except CommandFailed:
            pass
        self.reporter.say("    the kept build environment could not build the project's "
                          "wheel; building it with pip's build isolation")
        # what the failed attempt left goes: pip gets the source as it was given
        container.run("rm -rf /tmp/project-wheel %s" % PROJECT_COPY)
        container.put_files({}, trees={PROJECT_COPY: source})
        self._run_pip(container, "%s wheel --no-deps -c %s/constraints.txt -w /tmp/project-wheel "
                      "%s" % (pip, run, PROJECT_COPY), env, "the project's own wheel")

    def _resolve(self, container: Container, run: str, requirement: str, project: str,
                 find_links: str, env: Mapping[str, str]) -> tuple[Lock, str]:
        """Resolve ``requirement`` into the lock; its wheels and pip's into ``run``.

        Returns the lock and the name of pip's wheel (in ``run``/tools).
        """
        pip = BUILDER_VENV + "/bin/pip"
        # One resolution for every image, pinned as the lock.
        self._run_pip(container, (
            "%s install --dry-run --ignore-installed --quiet --report /tmp/report.json "
            "%s-c %s/constraints.txt %s"
            % (pip, find_links, run, shlex.quote(requirement))), env, "resolving")
        report = json.loads(container.read_file("/tmp/report.json"))
        lock = lock_from_report(report, project)
        container.put_files({run + "/lock.txt": lock.text().encode()})
        if lock.requirements:
            self._run_pip(container, (
                "%s wheel --no-deps %s-c %s/constraints.txt -w %s -r %s/lock.txt"
                % (pip, find_links, run, run, run)), env, "dependencies")
        pip_version = container.run(
            "%s/bin/python -c 'import pip; print(pip.__version__)'" % BUILDER_VENV).strip()
        self._run_pip(container, (
            "%s wheel --no-deps %s-w %s/tools pip==%s"
            % (pip, find_links, run, pip_version)), env, "pip")
        pip_wheel = container.run("cd %s/tools && ls pip-*.whl | head -n 1" % run).strip()
        container.run("python3 %s unpack %s/tools/%s %s %s" % (
            CACHE_TOOL, run, pip_wheel, pip_directory(pip_wheel), run.rpartition("/")[2]))
        return lock, pip_wheel

    def _run_pip(self, container: Container, command: str, environment: Mapping[str, str],
                 what: str) -> None:
        try:
            container.run(command, environment, workdir="/tmp")
        except CommandFailed as failure:
            failed = failed_wheels(failure.output)
            if failed:
                raise BuildError(
                    "Building the wheel of %s failed: if it compiles code, add the compiler "
                    "and headers it needs to bindep.txt with the [compile] profile."
                    % ", ".join(failed)) from failure
            if "ResolutionImpossible" in failure.output or "conflicting dependencies" in \
                    failure.output:
                raise BuildError("pip found no set of versions that satisfies the project's "
                                 "dependencies and constraints (%s): relax the conflicting "
                                 "requirements or the constraints file." % what) from failure
            if "No matching distribution found" in failure.output:
                match = re.search(r"No matching distribution found for (\S+)", failure.output)
                raise BuildError(
                    "pip found no distribution for %s: check the requirement, the constraints "
                    "file and the package index settings."
                    % (match.group(1) if match else what)) from failure
            raise


def _build_requires_asked(failure: CommandFailed) -> list[str] | None:
    """What the build hook said the backend asks for, when that is why it stopped."""
    if failure.exit_code != 3:
        return None
    for line in failure.output.splitlines():
        if line.startswith(BUILD_REQUIRES_MARK):
            try:
                return json.loads(line[len(BUILD_REQUIRES_MARK):])
            except ValueError:
                return None
    return None


def _requirement_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) and item.strip()
                                       for item in value):
        return list(dict.fromkeys(value))
    return None


def _lock_record(output: str) -> tuple[Lock, str, dict[str, str]] | None:
    """(lock, pip wheel, wheel digests) from what ``wheel_cache.py reuse`` printed.

    None: not reused.
    """
    for line in output.splitlines():
        if line.startswith("pbrx-images-lock:"):
            try:
                data = json.loads(line[len("pbrx-images-lock:"):])
                digests = {str(name): str(data["sha256"][name]) for name in data["wheels"]}
                return (Lock(tuple(str(item) for item in data["lock"])), str(data["pip"]),
                        digests)
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def _sha256sums(output: str) -> dict[str, str]:
    """File name -> digest, from the output of ``sha256sum`` (paths as given)."""
    digests = {}
    for line in output.splitlines():
        digest, _, path = line.strip().partition(" ")
        if digest:
            digests[path.strip().lstrip("*").rpartition("/")[2]] = digest
    return digests


def image_config_changes(base: ImageInfo, entrypoint: tuple[str, ...] | None = None,
                         cmd: tuple[str, ...] | None = None,
                         env: Mapping[str, str] | None = None,
                         labels: Mapping[str, str] | None = None,
                         user: str | None = None) -> list[str]:
    """Dockerfile instructions that give a committed image the intended config.

    Build containers idle with an entrypoint of their own; without these the
    image would keep it.  Defaults restore the base image's.
    """
    entrypoint = entrypoint if entrypoint is not None else base.entrypoint
    cmd = cmd if cmd is not None else base.cmd
    changes = ["ENTRYPOINT %s" % json.dumps(list(entrypoint or []))]
    changes.append("CMD %s" % json.dumps(list(cmd or [])))
    changes.extend("ENV %s=%s" % (key, json.dumps(value)) for key, value in (env or {}).items())
    changes.extend("LABEL %s=%s" % (key, json.dumps(value))
                   for key, value in sorted((labels or {}).items()))
    if user:
        changes.append("USER %s" % user)
    return changes
