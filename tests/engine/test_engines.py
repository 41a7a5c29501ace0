"""Any engine the Docker SDK reaches: no bind mounts, a remote TCP engine."""
from __future__ import annotations

import os

import docker.api
import pytest

from pbrx_images.pipeline import build
from pbrx_images.project.settings import resolve
from pbrx_images.ui.output import Reporter
from tests.engine.helpers import build_images

pytestmark = pytest.mark.engine


def test_no_container_has_a_bind_mount(example_project, docker_client, base_image,
                                       monkeypatch, tmp_path):
    """Every container the build creates is inspected on the engine as it is made."""
    seen = {}
    real_create = docker.api.APIClient.create_container

    def create_and_inspect(self, *args, **kwargs):
        created = real_create(self, *args, **kwargs)
        attrs = self.inspect_container(created["Id"])
        seen[attrs["Name"]] = (attrs["HostConfig"].get("Binds"),
                               [(mount["Type"], mount["Destination"], mount["RW"])
                                for mount in attrs.get("Mounts") or ()])
        return created

    monkeypatch.setattr(docker.api.APIClient, "create_container", create_and_inspect)
    with open(tmp_path / "out.txt", "w") as stream:
        result = build(resolve(example_project, base_image=base_image, tag="nobind",
                               no_cache=True), Reporter(stream=stream))
    assert len(result.images) == 3
    roles = {name.split("-")[-3] for name in seen}  # pbrx-images-{project}-{role}-{run}-{n}
    assert {"probe", "builder", "wheels", "runtime", "base", "script"} <= roles
    assert "cleanup" not in roles  # the wheel container, kept, removes the run's files
    for name, (binds, mounts) in seen.items():
        assert not binds, name
        assert {kind for kind, _, _ in mounts} <= {"volume"}, (name, mounts)
    # the source is copied into the wheel container: its only volume is the wheel volume
    wheels = [mounts for name, (_, mounts) in seen.items() if "-wheels-" in name]
    assert wheels and all(mounts == [("volume", "/run/pbrx-images/wheels", True)]
                          for mounts in wheels)


@pytest.mark.parametrize("second_engine", ["tcp"], indirect=True)
def test_full_build_against_a_tcp_engine(example_project, second_engine, base_image):
    assert second_engine.socket.startswith("tcp://127.0.0.1:")
    env = dict(os.environ, DOCKER_HOST=second_engine.socket)
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       "--tag", "tcp", env=env)
    assert run.exit_code == 0
    client = second_engine.client()
    output = client.containers.run("pgtool-report:tcp", remove=True, network_mode="host")
    assert b"psycopg2" in output
    assert not [c for c in client.containers.list(all=True)
                if c.name.startswith("pbrx-images-")]
