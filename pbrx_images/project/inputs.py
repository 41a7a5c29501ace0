"""What a build reads and checks before it contacts the engine.

Pure code (no Docker): the project's static metadata, build system and
bindep file, the constraints, the host's pip configuration for the build
containers, the images' creation time.  :func:`read_inputs` is the first
step of :func:`pbrx_images.build` and of ``--dry-run``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pbrx_images.cache.files import facts_dir
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.oci.image_archive import rfc3339
from pbrx_images.oci.layer import DEFAULT_EPOCH
from pbrx_images.plan.names import check_prefix, check_push_target, check_tag, full_name
from pbrx_images.project import bindep_file
from pbrx_images.project import labels as labels_module
from pbrx_images.project.metadata import ProjectMetadata, image_name, read_project
from pbrx_images.project.pip_config import (PROXY_VARIABLES, ContainerPipConfig,
                                            read_host_pip_config)
from pbrx_images.project.pyproject import LEGACY_BUILD_BACKEND, read_pyproject
from pbrx_images.project.settings import Options
from pbrx_images.ui.output import Reporter


@dataclass
class BuildInputs:
    """What is read and checked before the engine is contacted."""

    static: ProjectMetadata
    rules: bindep_file.BindepFile  #: the bindep file (or none) and bindep's answers about it
    constraints: bytes
    pip: ContainerPipConfig
    work_name: str
    dockerfiles: frozenset[str]
    created: str  #: the images' creation time (SOURCE_DATE_EPOCH when set, else 1970)
    epoch: int  #: the same in seconds: the mtime of every file of the Python layers
    bindep: tuple[str, bytes] | None = None  #: the bindep file's name and content
    #: the project's ``[build-system] requires`` (pip's default when it names none)
    build_requires: tuple[str, ...] = ()
    git: bool = True  #: the project is a git checkout (has .git): the builder gets git
    #: the project's ``[build-system] build-backend`` and ``backend-path`` (or pip's default)
    backend: tuple[str, tuple[str, ...]] = (LEGACY_BUILD_BACKEND, ())
    #: the host's proxy variables, given to the runtime containers
    proxy_environment: Mapping[str, str] = field(default_factory=dict)
    source_date_epoch: str | None = None  #: as set in the environment


def read_inputs(options: Options, reporter: Reporter, environ: Mapping[str, str],
                home: Path) -> BuildInputs:
    """Read and check everything of the build that needs no engine; say what to know.

    pyproject.toml is the one :func:`~pbrx_images.project.settings.resolve`
    read into ``options`` (read here only for options made without it).

    A bad tag or prefix, a push that would go to Docker Hub by accident, an
    unreadable pyproject.toml or bindep.txt: each is an error here, before
    any container runs.
    """
    project_dir = options.project_dir
    pyproject = options.pyproject or read_pyproject(project_dir)
    static = read_project(project_dir, pyproject)
    build_requires = pyproject.build_requirements()
    backend = pyproject.build_backend()
    for tag in (options.tag,) + options.more_tags:
        check_tag(tag)
    check_prefix(options.prefix)
    if options.push:  # every image shares the prefix, so one name tells
        check_push_target(full_name(check_prefix(options.prefix), "image", options.tag))
    bindep_path = bindep_file.find_bindep_file(project_dir)
    bindep = bindep_file.BindepFile(bindep_path, ImageFacts(facts_dir(),
                                                            not options.no_cache))
    constraints = options.constraints.read_bytes() if options.constraints else b""
    pip = read_host_pip_config(environ, home).for_container()
    work_name = image_name(static.name or project_dir.name)
    if bindep_path is None:
        reporter.note("no bindep.txt or other-requirements.txt: no distro packages are "
                      "installed")
    else:
        unknown = bindep.unknown_profiles()
        if unknown:
            reporter.note("%s uses profiles build-images does not act on: %s"
                          % (bindep_path.name, ", ".join(unknown)))
    for note in pip.notes:
        reporter.note(note)
    dockerfiles = frozenset(path.name for path in project_dir.glob("Dockerfile.*")
                            if path.is_file())
    epoch = labels_module.source_date_epoch(environ, DEFAULT_EPOCH)
    assert epoch is not None
    return BuildInputs(static, bindep, constraints, pip, work_name, dockerfiles,
                       rfc3339(epoch), epoch,
                       (bindep_path.name, bindep_path.read_bytes()) if bindep_path else None,
                       build_requires, (project_dir / ".git").exists(), backend,
                       {key: value for key, value in environ.items() if key in PROXY_VARIABLES},
                       environ.get("SOURCE_DATE_EPOCH"))
