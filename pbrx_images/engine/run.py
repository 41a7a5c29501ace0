"""The names and clean-up of one build on the engine.

Every container of a run is named ``pbrx-images-{project}-{role}-{run}-{n}``
and every work image ``pbrx-images-work/{project}-{what}:{run}``, so that the
sweep of a later build (:meth:`pbrx_images.engine.Engine.remove_dead_containers`,
:meth:`~pbrx_images.engine.Engine.remove_dead_work_tags`) can tell what a
killed build left; the run's directory in the wheel volume is removed at
the end whatever happens.
"""
from __future__ import annotations

import contextlib
import uuid

from pbrx_images import engine as engine_module
from pbrx_images.engine import Container, Engine
from pbrx_images.errors import BuildError
from pbrx_images.plan.wheel_volume import WHEELS, run_dir


class Run:
    """Names and clean-up of one build on the engine."""

    def __init__(self, engine: Engine, work_name: str) -> None:
        self.engine = engine
        self.work_name = work_name
        self.id = uuid.uuid4().hex[:12]
        self.volume = "pbrx-images-wheels-%s" % work_name
        self.work_tags: list[str] = []
        self._containers = 0

    def container_name(self, role: str) -> str:
        self._containers += 1
        return "%s%s-%s-%s-%d" % (engine_module.CONTAINER_PREFIX, self.work_name, role,
                                  self.id, self._containers)

    def work_tag(self, what: str) -> str:
        tag = "%s%s-%s:%s" % (engine_module.WORK_REPOSITORY, self.work_name, what, self.id)
        self.work_tags.append(tag)
        return tag

    def remove_containers(self) -> None:
        """Remove any container of this run still there (a clean-up cut short)."""
        with contextlib.suppress(BuildError):
            self.engine.remove_run_containers(self.id)

    def drop_work_tags(self) -> None:
        for tag in reversed(self.work_tags):
            with contextlib.suppress(BuildError):
                self.engine.untag(tag)
        self.work_tags.clear()

    def remove_run_files(self, image: str, container: Container | None = None) -> None:
        """Delete this run's directory from the wheel volume (the cache stays).

        In ``container`` (the wheel container, still running) when given and
        it can; otherwise in a new container of ``image``.
        """
        command = "rm -rf %s" % run_dir(self.id)
        if container is not None:
            with contextlib.suppress(BuildError, engine_module.CommandFailed):
                container.run(command)
                return
        with contextlib.suppress(BuildError):
            with self.engine.container(image, self.container_name("cleanup"),
                                       {WHEELS: (self.volume, False)}) as container:
                container.run(command)
