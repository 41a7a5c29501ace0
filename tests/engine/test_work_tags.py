"""Work tags of runs that were killed are removed by the next build; a live run's stay."""
from __future__ import annotations

import io

import pytest

from pbrx_images.engine import WORK_REPOSITORY, connect
from pbrx_images.ui.output import Reporter
from tests.engine.helpers import build_images, work_tags

pytestmark = pytest.mark.engine

DEAD_RUN = "deadc0de0001"
LIVE_RUN = "a11fe0000001"


@pytest.fixture
def tags(docker_client, base_image):
    """A work tag of a run with no container left, and one of a run whose container is there."""
    dead = "%ssweep-test-base:%s" % (WORK_REPOSITORY, DEAD_RUN)
    live = "%ssweep-test-base:%s" % (WORK_REPOSITORY, LIVE_RUN)
    image = docker_client.images.get(base_image)
    for tag in (dead, live):
        repository, _, name = tag.rpartition(":")
        image.tag(repository, name)
    container = docker_client.containers.create(
        base_image, ["true"], name="pbrx-images-sweep-test-wheels-%s-1" % LIVE_RUN)
    yield dead, live
    container.remove(force=True)
    for tag in (dead, live):
        if tag in work_tags(docker_client):
            docker_client.images.remove(tag)


def test_only_the_dead_runs_work_tags_are_removed(tags, docker_client, base_image):
    dead, live = tags
    engine = connect(Reporter(stream=io.StringIO()))
    assert engine.remove_dead_work_tags() == [dead]
    remaining = work_tags(docker_client)
    assert dead not in remaining and live in remaining
    assert docker_client.images.get(base_image)  # only the tag went
    assert engine.remove_dead_work_tags() == []


def test_a_build_removes_them_and_says_so(tags, docker_client, base_image, example_project):
    dead, live = tags
    run = build_images(str(example_project), "--base-image", base_image, "--dry-run")
    assert run.exit_code == 0
    assert dead in work_tags(docker_client)  # a dry run changes nothing on the engine
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "sweep")
    assert run.exit_code == 0, run.output
    assert "removed %s, left by a build that was killed" % dead in run.output
    remaining = work_tags(docker_client)
    assert dead not in remaining and live in remaining
