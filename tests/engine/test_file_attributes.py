"""The runtime-packages layer keeps every file as the package manager left it.

Real Debian packages, each chosen for what its maintainer scripts or its
files leave: ``iputils-ping`` a file capability (``setcap cap_net_raw+ep``,
an extended attribute, with ``libcap2-bin``), ``sudo`` setuid binaries,
``bzip2`` hard links.  The image build-images makes is compared, file by
file, with a ``docker commit`` of a container of the same base image in
which the same install ran: type, mode, owner, size, content, link target
and xattrs are identical, except for what the layer documents it leaves
out (noise: package-manager caches, logs, temporary files; mtimes; the
source mtime in timestamp-based ``.pyc`` headers).
"""
from __future__ import annotations

import hashlib
import tarfile
from typing import Iterator

import pytest

from pbrx_images.oci.changes_layer import is_noise, pyc_with_mtime
from pbrx_images.oci.layer import pyc_source
from pbrx_images.oci.tar import chunk_stream, member_path, member_xattrs
from pbrx_images.plan.package_manager import PackageManager
from tests.engine.helpers import (build_images, labelled_base, remove_volume, run_image,
                                  write_python_project)

pytestmark = pytest.mark.engine

PREFIX = "pbrx-test-attrs"
PROJECT = "attrsapp"
LABEL = "org.pbrx-test.file-attributes"
PACKAGES = ("libcap2-bin", "iputils-ping", "sudo", "bzip2")
#: What build-images adds to the bindep packages, and runs after them.
ADDED = ("dumb-init",)
VENV_COMMAND = "python3 -m venv --without-pip /opt/venv && rm -rf /root/.cache /tmp/* /var/tmp/*"
#: Paths the engine writes into every container (bind-mount targets), not a layer's.
ENGINE_PATHS = ("etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv")
CAPABILITY_CHECK = ("import os; print(os.getxattr('/usr/bin/ping', 'security.capability')"
                    ".hex())")


@pytest.fixture(scope="module")
def own_base(docker_client, base_image) -> Iterator[str]:
    """The base image under a label of this module (a new ID), removed with what it made."""
    with labelled_base(docker_client, base_image, PREFIX, LABEL) as (tag, _):
        try:
            yield tag
        finally:
            remove_volume(docker_client, "pbrx-images-wheels-%s" % PROJECT)


@pytest.fixture(scope="module")
def builds(tmp_path_factory, own_base):
    """The project built twice from nothing (``--no-cache``), the second with ``--user``."""
    project = write_python_project(
        tmp_path_factory.mktemp("attrs") / PROJECT,
        PROJECT, {PROJECT + "/__init__.py": "", "bindep.txt": "\n".join(PACKAGES) + "\n"},
        version="1.0", dependencies=[])
    runs = {}
    for tag, extra in (("first", ()), ("second", ("--user", "attrs:10004"))):
        runs[tag] = build_images(str(project), "--base-image", own_base, "--prefix", PREFIX,
                                 "--tag", tag, "--network", "host", "--no-cache", *extra)
        assert runs[tag].exit_code == 0, runs[tag].output
    return runs


@pytest.fixture(scope="module")
def reference(docker_client, own_base) -> Iterator[str]:
    """A ``docker commit`` of a container of the base image in which the same install ran."""
    script = "%s && %s" % (PackageManager("apt").install_command(PACKAGES + ADDED),
                           VENV_COMMAND)
    container = docker_client.containers.create(own_base, ["sh", "-c", script],
                                                network_mode="host")
    try:
        container.start()
        assert container.wait(timeout=900)["StatusCode"] == 0, container.logs()
        image = container.commit("%s/reference" % PREFIX, "latest")
    finally:
        container.remove(force=True)
    try:
        yield image.id
    finally:
        docker_client.images.remove(image.id, force=True)


def runtime_packages_image(client, base_image_name: str, base_name: str) -> str:
    """The runtime-packages image under ``base_name``: the parent layers of the -base image."""
    wanted = client.api.inspect_image(base_name)["RootFS"]["Layers"]
    base_layers = len(client.api.inspect_image(base_image_name)["RootFS"]["Layers"])
    for image in client.images.list(name="pbrx-images-cache/runtime"):
        layers = image.attrs["RootFS"]["Layers"]
        if len(layers) == base_layers + 1 and wanted[:len(layers)] == layers:
            return image.id
    raise AssertionError("no cached runtime-packages image is below %s" % base_name)


def exported(client, image: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """The members of the whole file system of a container of ``image`` (not started)."""
    container = client.containers.create(image, ["true"])
    try:
        stream = chunk_stream(container.export(chunk_size=1 << 20))
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as archive:
            for member in archive:
                yield archive, member
    finally:
        container.remove(force=True)


def describe(client, image: str) -> tuple[dict[str, tuple], set[frozenset[str]]]:
    """Path -> (kind, mode, uid, gid, size, content digest, link target, xattrs), and the
    sets of paths that are hard links of one file; noise and the engine's paths left out.

    A hard link is described as the file it links (its content, its xattrs), so the
    path that carries the content may differ.  A timestamp-based ``.pyc`` is hashed
    with its source mtime set to 0, as the layer writes it.
    """
    files: dict[str, tuple] = {}
    links: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    contents: dict[str, bytes] = {}
    for archive, member in exported(client, image):
        path = member_path(member.name, "/")
        if not path or path in ENGINE_PATHS or path.split("/")[0] in ("dev", "proc", "sys") \
                or is_noise(path, member.isdir()):
            continue
        digest = ""
        if member.isreg():
            data = archive.extractfile(member).read()
            if path.endswith(".pyc"):
                contents[path] = data
            digest = hashlib.sha256(data).hexdigest()
            sizes[path] = member.size
        kind = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
                tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "file", tarfile.FIFOTYPE: "fifo",
                tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block"}[member.type]
        target = member_path(member.linkname, "/") if member.islnk() else ""
        if target:
            links.setdefault(target, {target}).add(path)
            files[path] = ("link", target, member.mode & 0o7777, member.uid, member.gid)
            continue
        files[path] = (kind, member.mode & 0o7777, member.uid, member.gid, member.size,
                       digest, member.linkname if member.issym() else "",
                       member_xattrs(member), (member.devmajor, member.devminor)
                       if kind in ("char", "block") else ())
    for path, data in contents.items():  # as the layer writes byte code of its sources
        source = pyc_source(path)
        rewritten = pyc_with_mtime(data, 0, sizes.get(source)) if source in files else None
        if rewritten is not None:
            files[path] = files[path][:5] + (hashlib.sha256(rewritten).hexdigest(),) + \
                files[path][6:]
    for path, value in list(files.items()):  # a hard link: the file it links
        if value[0] == "link":
            files[path] = files[value[1]]
    return files, {frozenset(group) for group in links.values()}


def test_the_packages_left_what_this_test_looks_for(docker_client, reference):
    """The chosen packages still exercise each kind: else the comparison proves less."""
    files, hard_links = describe(docker_client, reference)
    assert dict(files["usr/bin/ping"][7])["security.capability"]
    assert files["usr/bin/sudo"][1] & 0o4000
    assert any("usr/bin/bzip2" in group for group in hard_links)


def test_the_runtime_packages_image_keeps_every_file_as_installed(
        docker_client, builds, reference, own_base):
    ours = runtime_packages_image(docker_client, own_base, "%s/%s-base:first"
                                  % (PREFIX, PROJECT))
    mine, my_links = describe(docker_client, ours)
    theirs, their_links = describe(docker_client, reference)
    different = {path: (mine.get(path), theirs.get(path))
                 for path in sorted(set(mine) | set(theirs)) if mine.get(path) != theirs.get(path)}
    assert different == {}
    assert my_links == their_links


def test_capabilities_survive_into_the_images_with_and_without_user(docker_client, builds):
    for tag in ("first", "second"):
        code, output = run_image(docker_client, "%s/%s-base:%s" % (PREFIX, PROJECT, tag),
                                 ["/usr/bin/python3", "-c", CAPABILITY_CHECK], entrypoint=[])
        assert code == 0, output
        assert output.strip().startswith("01000002"), output  # VFS_CAP_REVISION_2
        code, output = run_image(docker_client, "%s/%s-base:%s" % (PREFIX, PROJECT, tag),
                                 ["/sbin/getcap", "/usr/bin/ping"], entrypoint=[])
        assert (code, output.strip()) == (0, "/usr/bin/ping cap_net_raw=ep"), tag


def test_two_builds_from_nothing_give_the_same_runtime_packages_layer(docker_client, builds,
                                                                      own_base):
    first = docker_client.api.inspect_image("%s/%s-base:first" % (PREFIX, PROJECT))
    second = docker_client.api.inspect_image("%s/%s-base:second" % (PREFIX, PROJECT))
    base = len(docker_client.api.inspect_image(own_base)["RootFS"]["Layers"])
    assert first["RootFS"]["Layers"][base] == second["RootFS"]["Layers"][base]
