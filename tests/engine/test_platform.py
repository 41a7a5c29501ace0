"""--platform against the real engine (amd64 here, no binfmt emulation)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile

import docker.api
import docker.errors
import pytest

from pbrx_images.errors import BuildError
from pbrx_images.pipeline import build
from pbrx_images.project.settings import resolve
from pbrx_images.ui.output import Reporter
from tests.engine.helpers import build_images

pytestmark = pytest.mark.engine

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
#: ELF header offset of e_machine, and AArch64's number
E_MACHINE, EM_AARCH64 = 18, 183


@pytest.fixture
def engine_calls(monkeypatch):
    """The platform of every container create and build the build asks the engine for."""
    calls: list[tuple[str, object]] = []
    real_create = docker.api.APIClient.create_container
    real_build = docker.api.APIClient.build

    def create(self, *args, **kwargs):
        calls.append(("create", kwargs.get("platform")))
        return real_create(self, *args, **kwargs)

    def build_(self, *args, **kwargs):
        calls.append(("build", kwargs.get("platform")))
        return real_build(self, *args, **kwargs)

    monkeypatch.setattr(docker.api.APIClient, "create_container", create)
    monkeypatch.setattr(docker.api.APIClient, "build", build_)
    return calls


def test_amd64_build_passes_the_platform_to_every_create_and_build(
        example_project, base_image, docker_client, engine_calls, tmp_path):
    with open(tmp_path / "out.txt", "w") as stream:
        result = build(resolve(example_project, base_image=base_image, tag="platform-amd64",
                               platform="x86_64", network="host"), Reporter(stream=stream))
    assert len(result.images) == 3
    kinds = {kind for kind, _ in engine_calls}
    assert kinds == {"create"}  # images are loaded, not built; pgtool-version is config-only
    assert {platform for _, platform in engine_calls} == {"linux/amd64"}
    for image in result.images:
        assert docker_client.images.get(image.id).attrs["Architecture"] == "amd64"
    assert "Debian GNU/Linux 12 (bookworm), apt, linux/amd64" in (
        tmp_path / "out.txt").read_text()
    for image in result.images:
        docker_client.images.remove(image.name)


def test_dry_run_shows_the_platform(example_project, base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--dry-run",
                       "--platform", "linux/x86_64")
    assert run.exit_code == 0
    assert "Platform: linux/amd64\n" in run.output
    assert "(Debian GNU/Linux 12 (bookworm), apt, linux/amd64)" in run.output
    default = build_images(str(example_project), "--base-image", base_image, "--dry-run")
    assert "Platform: the engine's own (no --platform)" in default.output


def test_arm64_with_an_amd64_base_fails_before_any_container(
        example_project, base_image, engine_calls, tmp_path):
    with pytest.raises(BuildError) as raised:
        with open(tmp_path / "out.txt", "w") as stream:
            build(resolve(example_project, base_image=base_image, tag="platform-arm64",
                          platform="linux/arm64"), Reporter(stream=stream))
    assert str(raised.value) == (
        "The base image %s is for linux/amd64, not linux/arm64 as --platform asks: name one "
        "built for linux/arm64 with --base-image, or pull that platform's variant of a "
        "multi-platform image first (docker pull --platform linux/arm64 %s)."
        % (base_image, base_image))
    assert engine_calls == []


def test_arm64_from_the_command_line_is_one_sentence(example_project, base_image):
    run = build_images(str(example_project), "--base-image", base_image,
                       "--platform", "linux/aarch64", "--tag", "platform-arm64")
    assert run.exit_code == 1
    assert "build-images: error: The base image %s is for linux/amd64, not linux/arm64" \
        % base_image in run.output
    assert "Traceback" not in run.output and "==> Builder image" not in run.output


@pytest.fixture
def arm64_image(docker_client):
    """A tiny image that says it is linux/arm64, whose /bin/sh is an AArch64 program.

    /bin/sh runs build containers' idle command.  It is the host's own tail
    with the ELF machine patched, so the kernel refuses it exactly as it
    refuses a real arm64 binary without emulation.
    """
    binfmt = "/proc/sys/fs/binfmt_misc"
    if os.path.isdir(binfmt) and any(name.startswith("qemu-aarch64")
                                     for name in os.listdir(binfmt)):
        pytest.skip("this machine emulates arm64 (qemu binfmt): nothing to test")
    tail = bytearray(open(shutil.which("tail") or "/usr/bin/tail", "rb").read())
    tail[E_MACHINE:E_MACHINE + 2] = EM_AARCH64.to_bytes(2, "little")
    layer = _tar({"etc/os-release": (OS_RELEASE, 0o644), "bin/sh": (bytes(tail), 0o755)})
    config = json.dumps({
        "architecture": "arm64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "pbrx-images test: an arm64 image"}],
    }).encode()
    name = "pbrx-images-test/engines-fake-arm64:" + hashlib.sha256(config).hexdigest()[:12]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [name],
                            "Layers": ["layer/layer.tar"]}]).encode()
    docker_client.images.load(_tar({"config.json": (config, 0o644),
                                    "manifest.json": (manifest, 0o644),
                                    "layer/layer.tar": (layer, 0o644)}))
    yield name
    with pytest.raises(docker.errors.NotFound):
        docker_client.images.remove(name)
        docker_client.images.get(name)


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("platform", [["--platform", "linux/arm64"], []],
                         ids=["platform", "no-platform"])
def test_missing_emulation_is_named(example_project, docker_client, arm64_image, platform):
    run = build_images(str(example_project), "--base-image", arm64_image, *platform,
                       "--tag", "platform-emulation")
    assert run.exit_code == 1
    assert ("build-images: error: The engine cannot run linux/arm64 containers (exec "
            "/bin/sh: exec format error): running another architecture needs "
            "emulation, qemu-user-static with binfmt_misc") in run.output
    assert "exec format error" in run.output and "qemu-user-static" in run.output
    assert "Traceback" not in run.output
    assert not docker_client.containers.list(all=True, filters={"ancestor": arm64_image})
