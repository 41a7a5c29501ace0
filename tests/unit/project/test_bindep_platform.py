"""Tests for pbrx_images.project.bindep_platform: bindep's own answer, for an image."""
from __future__ import annotations

import platform
import threading
from pathlib import Path

import bindep.depends
import distro
import pytest
from bindep.depends import Depends

from pbrx_images.errors import BuildError
from pbrx_images.project.bindep_platform import platform_profiles
from tests.unit.os_releases import (ALPINE_3_19, DEBIAN_BOOKWORM, DEBIAN_SID, DEBIAN_TRIXIE,
                                    FEDORA_39, UBUNTU_JAMMY)


# --- platform_profiles ----------------------------------------------------

def test_platform_profiles_debian_bookworm():
    profiles = platform_profiles(DEBIAN_BOOKWORM)
    assert profiles == [
        "platform:base-py3",
        "platform:debian",
        "platform:debian-12",
        "platform:debian-bookworm",
        "platform:dpkg",
    ]


def test_platform_profiles_debian_trixie():
    profiles = platform_profiles(DEBIAN_TRIXIE)
    assert "platform:debian-trixie" in profiles
    assert "platform:debian-13" in profiles
    assert "platform:debian-bookworm" not in profiles
    assert "platform:dpkg" in profiles


def test_platform_profiles_ubuntu_jammy():
    assert platform_profiles(UBUNTU_JAMMY) == [
        "platform:base-py3",
        "platform:dpkg",
        "platform:ubuntu",
        "platform:ubuntu-22",
        "platform:ubuntu-22.04",
        "platform:ubuntu-jammy",
    ]


def test_platform_profiles_alpine():
    assert platform_profiles(ALPINE_3_19) == [
        "platform:alpine",
        "platform:alpine-3",
        "platform:alpine-3.19",
        "platform:alpine-3.19.1",
        "platform:apk",
    ]


def test_platform_profiles_fedora():
    assert platform_profiles(FEDORA_39) == [
        "platform:base-py3",
        "platform:fedora",
        "platform:fedora-39",
        "platform:redhat",
        "platform:rpm",
    ]


def test_alpine_on_debian_host_has_no_dpkg():
    # This host may well be Debian: none of its identity may leak in.
    profiles = platform_profiles(ALPINE_3_19)
    assert "platform:dpkg" not in profiles
    assert not any("debian" in p or "ubuntu" in p for p in profiles)


def test_host_etc_files_do_not_leak(monkeypatch, tmp_path):
    # Pretend the host's /etc says Debian 12 everywhere distro could look.
    fake_etc = tmp_path / "etc"
    fake_etc.mkdir()
    (fake_etc / "os-release").write_text(DEBIAN_BOOKWORM)
    (fake_etc / "debian_version").write_text("12.5\n")
    (fake_etc / "lsb-release").write_text("DISTRIB_ID=Debian\nDISTRIB_RELEASE=12\n")
    (fake_etc / "redhat-release").write_text("Fedora release 39 (Thirty Nine)\n")
    monkeypatch.setattr(distro.distro, "_UNIXCONFDIR", str(fake_etc))
    monkeypatch.setattr(distro.distro, "_UNIXUSRLIBDIR", str(tmp_path / "usr/lib"))

    assert platform_profiles(ALPINE_3_19)[-1] == "platform:apk"
    # Without VERSION_ID, distro falls back to <etc>/debian_version: it must
    # be the image's (here: absent), never the host's "12.5".
    sid = platform_profiles(DEBIAN_SID)
    assert not any(p.startswith("platform:debian-12") for p in sid)
    assert "platform:debian-trixie" in sid


def test_debian_version_of_the_image_is_used_when_given():
    profiles = platform_profiles(DEBIAN_SID, debian_version_text="trixie/sid\n")
    assert "platform:debian-trixie/sid" in profiles
    assert "platform:debian-trixie" in profiles


def test_parity_with_bindep_on_this_host():
    os_release = Path("/etc/os-release")
    if platform.system() != "Linux" or not os_release.is_file():
        pytest.skip("needs a Linux host with /etc/os-release")
    debian_version = Path("/etc/debian_version")
    expected = Depends("").platform_profiles()
    assert platform_profiles(
        os_release.read_text(),
        debian_version_text=(debian_version.read_text()
                             if debian_version.is_file() else None),
    ) == expected


def test_bindep_module_globals_are_restored():
    platform_profiles(ALPINE_3_19)
    assert bindep.depends.distro is distro
    assert bindep.depends.platform is platform


def test_bindep_module_globals_are_restored_after_failure():
    with pytest.raises(BuildError):
        platform_profiles("ID=ubuntu\n")  # bindep fails without a version
    assert bindep.depends.distro is distro
    assert bindep.depends.platform is platform


def test_concurrent_calls_do_not_mix_platforms():
    results: dict[int, list[str]] = {}

    def run(index: int) -> None:
        text = ALPINE_3_19 if index % 2 else DEBIAN_BOOKWORM
        results[index] = platform_profiles(text)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, profiles in results.items():
        expected = "platform:apk" if index % 2 else "platform:dpkg"
        assert expected in profiles
    assert len(results) == 8


@pytest.mark.parametrize("text", [
    "",
    'NAME="Some Linux"\nVERSION_ID=1\n',
    'ID=""\nNAME="Empty ID"\n',
])
def test_os_release_without_id_is_an_error(text):
    with pytest.raises(BuildError, match="no usable /etc/os-release"):
        platform_profiles(text)
