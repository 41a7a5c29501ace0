from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pbrx_images.plan.package_manager import (DETECT_SCRIPT, INIT_PACKAGE, INIT_PATH, MANAGERS,
                                              PackageManager, from_detect_output)

SH = shutil.which("sh") or "/bin/sh"
ODD_NAMES = ["libfoo", "it's", "a b", "$(reboot)", "x;rm -rf /", "g++", "libstdc++6"]


# --- install_command --------------------------------------------------------

def test_apt_command():
    assert PackageManager("apt").install_command(["libpq5", "tzdata"]) == (
        "apt-get update"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y"
        " --no-install-recommends libpq5 tzdata"
        " && apt-get clean"
        " && rm -rf /var/lib/apt/lists/*"
    )


def test_apk_command():
    assert PackageManager("apk").install_command(["libpq", "tzdata"]) == (
        "apk add --no-cache libpq tzdata")


def test_dnf_command():
    assert PackageManager("dnf").install_command(["postgresql-libs"]) == (
        "dnf install -y --setopt=install_weak_deps=0 --nodocs postgresql-libs"
        " && dnf clean all"
        " && rm -rf /var/cache/dnf /var/cache/yum /var/cache/libdnf5"
    )


def test_microdnf_command():
    command = PackageManager("microdnf").install_command(["gcc"])
    assert command.startswith(
        "microdnf install -y --setopt=install_weak_deps=0 --nodocs gcc && microdnf clean all")
    assert "rm -rf /var/cache/dnf /var/cache/yum" in command


def test_yum_command():
    command = PackageManager("yum").install_command(["gcc"])
    assert command.startswith("yum install -y --setopt=tsflags=nodocs gcc && yum clean all")
    assert "install_weak_deps" not in command
    assert "/var/cache/yum" in command


@pytest.mark.parametrize("name", MANAGERS)
def test_package_names_are_quoted(name):
    command = PackageManager(name).install_command(ODD_NAMES)
    assert "'it'\"'\"'s'" in command
    assert "'a b'" in command
    assert "'$(reboot)'" in command
    assert "'x;rm -rf /'" in command
    assert " g++ " in command or "'g++'" in command


@pytest.mark.parametrize("name", MANAGERS)
def test_order_is_kept(name):
    command = PackageManager(name).install_command(["zlib1g", "acl", "make"])
    assert command.index("zlib1g") < command.index("acl") < command.index("make")


@pytest.mark.parametrize("name", MANAGERS)
def test_empty_package_list_does_nothing(name):
    assert PackageManager(name).install_command([]) == "true"
    assert PackageManager(name).install_command(()) == "true"


@pytest.mark.parametrize("name", MANAGERS)
@pytest.mark.parametrize("packages", [[], ["gcc"], ODD_NAMES])
def test_command_is_valid_sh(name, packages):
    command = PackageManager(name).install_command(packages)
    result = subprocess.run([SH, "-n", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", MANAGERS)
def test_odd_names_reach_the_manager_as_single_arguments(name, tmp_path):
    # Run the command with every program replaced by one printing its
    # arguments, to prove the quoting round-trips through sh.
    log = tmp_path / "log"
    for program in ("apt-get", "apk", "dnf", "microdnf", "yum", "rm"):
        stub = tmp_path / program
        stub.write_text(f'#!{SH}\nfor a in "$@"; do printf "%s\\n" "$a"; done >> {log}\n')
        stub.chmod(0o755)
    command = PackageManager(name).install_command(ODD_NAMES)
    env = {"PATH": str(tmp_path)}
    subprocess.run([SH, "-c", command], env=env, check=True)
    arguments = log.read_text().splitlines()
    for package in ODD_NAMES:
        assert package in arguments


@pytest.mark.parametrize("bad", ["", "-y", "--allow-unauthenticated"])
def test_option_like_names_are_refused(bad):
    with pytest.raises(ValueError):
        PackageManager("apt").install_command(["gcc", bad])


def test_unknown_manager_is_refused():
    with pytest.raises(ValueError, match="unknown package manager"):
        PackageManager("pacman")


def test_package_manager_is_frozen():
    manager = PackageManager("apk")
    with pytest.raises(AttributeError):
        manager.name = "apt"  # type: ignore[misc]
    assert manager == PackageManager("apk")
    assert hash(manager) == hash(PackageManager("apk"))


# --- missing_packages -------------------------------------------------------

APT_OUTPUT = """\
Reading package lists...
Building dependency tree...
Reading state information...
Package python-dev is not available, but is referred to by another package.
This may mean that the package is missing, has been obsoleted, or
is only available from another source

E: Unable to locate package libre2-9
E: Unable to locate package libfoo-dev
E: Package 'python-dev' has no installation candidate
E: Couldn't find any package by glob 'libbar*'
E: Couldn't find any package by regex 'libbaz.+'
E: Unable to locate package libre2-9
"""

APK_OUTPUT = """\
fetch https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz
fetch https://dl-cdn.alpinelinux.org/alpine/v3.19/community/x86_64/APKINDEX.tar.gz
ERROR: unable to select packages:
  libpq5 (no such package):
    required by: world[libpq5]
  libpq-dev (no such package):
    required by: world[libpq-dev]
"""

DNF4_OUTPUT = """\
Last metadata expiration check: 0:00:02 ago on Mon 01 Jan 2024 12:00:00 PM UTC.
No match for argument: libpq5
No match for argument: libpq-dev
Error: Unable to find a match: libpq5 libpq-dev
"""

DNF5_OUTPUT = """\
Updating and loading repositories:
 Fedora 41 - x86_64                     100% |  12.3 MiB/s |  35.6 MiB |  00m03s
Repositories loaded.
Failed to resolve the transaction:
No match for argument: libpq5
You can try to add to command line:
  --skip-unavailable to skip unavailable packages
"""

MICRODNF_OUTPUT = """\
Downloading metadata...
Downloading metadata...
error: No package matches 'libpq5'
"""

YUM3_OUTPUT = """\
Loaded plugins: fastestmirror, ovl
No package libpq5 available.
No package libpq-dev available.
Error: Nothing to do
"""


def test_apt_missing_packages():
    assert PackageManager("apt").missing_packages(APT_OUTPUT) == [
        "libre2-9", "libfoo-dev", "python-dev", "libbar*", "libbaz.+"]


def test_apt_missing_package_after_progress_on_the_same_line():
    """stderr's error can land before stdout's newline (seen in CI)."""
    output = ("Reading package lists...\n"
              "Building dependency tree...E: Unable to locate package no-such-package-pbrx\n"
              "\nReading state information...\n")
    assert PackageManager("apt").missing_packages(output) == ["no-such-package-pbrx"]
    assert PackageManager("apt").missing_packages("NOTE: Unable to locate package x") == []


def test_apk_missing_packages():
    assert PackageManager("apk").missing_packages(APK_OUTPUT) == ["libpq5", "libpq-dev"]


def test_dnf_missing_packages():
    assert PackageManager("dnf").missing_packages(DNF4_OUTPUT) == ["libpq5", "libpq-dev"]
    assert PackageManager("dnf").missing_packages(DNF5_OUTPUT) == ["libpq5"]


def test_dnf_unable_to_find_a_match_alone():
    output = "Error: Unable to find a match: foo bar\n"
    assert PackageManager("dnf").missing_packages(output) == ["foo", "bar"]


def test_microdnf_missing_packages():
    assert PackageManager("microdnf").missing_packages(MICRODNF_OUTPUT) == ["libpq5"]
    assert PackageManager("microdnf").missing_packages(DNF4_OUTPUT) == ["libpq5", "libpq-dev"]


def test_yum_missing_packages():
    assert PackageManager("yum").missing_packages(YUM3_OUTPUT) == ["libpq5", "libpq-dev"]
    assert PackageManager("yum").missing_packages(DNF4_OUTPUT) == ["libpq5", "libpq-dev"]


def test_coloured_output():
    output = "\x1b[1m\x1b[31mNo match for argument: \x1b[0mlibpq5\n"
    assert PackageManager("dnf").missing_packages(output) == ["libpq5"]


@pytest.mark.parametrize("name", MANAGERS)
def test_other_failures_have_no_missing_packages(name):
    output = (
        "E: Failed to fetch http://deb.debian.org/debian/pool/main/g/gcc.deb  404  Not Found\n"
        "ERROR: https://dl-cdn.alpinelinux.org/alpine/v3.19/main: temporary error\n"
        "Error: Failed to download metadata for repo 'fedora'\n"
    )
    assert PackageManager(name).missing_packages(output) == []
    assert PackageManager(name).missing_packages("") == []


# --- detection --------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("apt\n", "apt"),
    ("apk", "apk"),
    ("  dnf  \n\n", "dnf"),
    ("microdnf\n", "microdnf"),
    ("yum\n", "yum"),
    ("some warning\nyum\n", "yum"),
])
def test_from_detect_output(text, expected):
    assert from_detect_output(text) == PackageManager(expected)


@pytest.mark.parametrize("text", ["", "\n", "pacman\n", "apt-get\n", "apt\nsomething else\n"])
def test_from_detect_output_nothing_usable(text):
    assert from_detect_output(text) is None


def _detect(tmp_path: Path, programs: list[str]) -> str:
    for program in programs:
        stub = tmp_path / program
        stub.write_text(f"#!{SH}\nexit 0\n")
        stub.chmod(0o755)
    env = {"PATH": str(tmp_path)}
    result = subprocess.run([SH, "-c", DETECT_SCRIPT], env=env, check=True,
                            capture_output=True, text=True)
    return result.stdout


@pytest.mark.parametrize("programs, expected", [
    (["apt-get", "apk", "microdnf", "dnf", "yum"], "apt\n"),
    (["apk", "dnf"], "apk\n"),
    (["dnf", "microdnf", "yum"], "microdnf\n"),
    (["dnf", "yum"], "dnf\n"),
    (["yum"], "yum\n"),
    (["apt"], ""),  # only apt-get counts
    ([], ""),
])
def test_detect_script(tmp_path, programs, expected):
    assert _detect(tmp_path, programs) == expected


def test_detect_script_is_valid_sh():
    subprocess.run([SH, "-n", "-c", DETECT_SCRIPT], check=True)


def test_detect_round_trip(tmp_path):
    assert from_detect_output(_detect(tmp_path, ["apk"])) == PackageManager("apk")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert from_detect_output(_detect(empty, [])) is None


def test_init_constants():
    assert INIT_PACKAGE == "dumb-init"
    assert INIT_PATH == "/usr/bin/dumb-init"
    assert os.path.isabs(INIT_PATH)
