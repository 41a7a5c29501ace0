"""--platform: parsing, normalisation and the base image check (no engine)."""
from __future__ import annotations

import pytest

from pbrx_images.errors import BuildError, ProjectError
from pbrx_images.plan import target_platform
from pbrx_images.plan.target_platform import Platform, check_base, of_image, parse
from pbrx_images.project.settings import resolve


@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64"),
    ("x86_64", "linux/amd64"),
    ("amd64", "linux/amd64"),
    ("LINUX/AMD64", "linux/amd64"),
    (" linux/amd64 ", "linux/amd64"),
    ("linux/amd64/v1", "linux/amd64"),
    ("linux/amd64/v3", "linux/amd64/v3"),
    ("linux/arm64", "linux/arm64"),
    ("linux/aarch64", "linux/arm64"),
    ("aarch64", "linux/arm64"),
    ("linux/arm64/v8", "linux/arm64"),
    ("linux/arm/v7", "linux/arm/v7"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/armhf", "linux/arm/v7"),
    ("linux/armv7l", "linux/arm/v7"),
    ("linux/arm/v6", "linux/arm/v6"),
    ("linux/armel", "linux/arm/v6"),
    ("linux/i386", "linux/386"),
    ("linux/ppc64el", "linux/ppc64le"),
    ("linux/s390x", "linux/s390x"),
    ("linux/riscv64", "linux/riscv64"),
])
def test_platforms_are_normalised(text, expected):
    assert str(parse(text)) == expected


@pytest.mark.parametrize("text, says", [
    ("", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("linux/", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("/amd64", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("linux/amd64/v2/x", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("linux amd64", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("linux/$(reboot)", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("sparc", "is not OS/ARCHITECTURE[/VARIANT]"),
    ("windows/amd64", "only makes Linux images"),
    ("darwin/arm64", "only makes Linux images"),
    ("amd64/linux", "the OS comes first, as in --platform linux/amd64"),
    ("linux/sparc", "unknown architecture 'sparc'"),
    ("linux/arm/v9", "arm has no variant 'v9' (its variants are v5, v6, v7)"),
    ("linux/arm64/v7", "arm64 has no variant 'v7'"),
    ("linux/386/v2", "386 has no variant 'v2' (it has none)"),
    ("linux/armhf/v6", "armhf is v7, not variant v6"),
])
def test_bad_platforms_are_one_clear_sentence(text, says):
    with pytest.raises(ProjectError) as raised:
        parse(text)
    message = str(raised.value)
    assert says in message
    assert message.startswith("--platform %r" % text) and message.endswith(".")
    assert "\n" not in message


@pytest.mark.parametrize("os_name, architecture, variant, expected", [
    ("linux", "amd64", "", "linux/amd64"),
    ("linux", "arm64", "v8", "linux/arm64"),
    ("linux", "arm", "v7", "linux/arm/v7"),
    ("linux", "arm", "", "linux/arm/v7"),
    ("", "amd64", "", "linux/amd64"),
    ("linux", "mips", "", "linux/mips"),  # unknown to us, kept as the engine says
])
def test_image_platforms(os_name, architecture, variant, expected):
    assert str(of_image(os_name, architecture, variant)) == expected


def test_base_of_the_requested_platform_passes():
    check_base(parse("linux/x86_64"), of_image("linux", "amd64"), "base:1")
    check_base(parse("linux/arm64/v8"), of_image("linux", "arm64"), "base:1")


def test_base_of_another_platform_fails_clearly():
    with pytest.raises(BuildError) as raised:
        check_base(parse("linux/arm64"), of_image("linux", "amd64"), "base:1")
    assert str(raised.value).startswith(
        "The base image base:1 is for linux/amd64, not linux/arm64 as --platform asks: ")
    with pytest.raises(BuildError):
        check_base(parse("linux/arm/v6"), of_image("linux", "arm", "v7"), "base:1")


def test_emulation_missing_names_qemu_and_binfmt():
    message = str(target_platform.emulation_missing(
        "linux/arm64", "exec /usr/bin/tail: exec format error\n"))
    assert message.startswith("The engine cannot run linux/arm64 containers (exec ")
    assert "linux/arm64" in message and "qemu-user-static" in message
    assert "binfmt" in message and "exec /usr/bin/tail: exec format error" in message


def test_options_keep_the_normalised_platform(tmp_path):
    assert resolve(tmp_path).platform is None
    assert resolve(tmp_path, platform="aarch64").platform == "linux/arm64"
    with pytest.raises(ProjectError):
        resolve(tmp_path, platform="linux/sparc")


def test_platform_is_a_value():
    assert parse("linux/arm/v7") == Platform("linux", "arm", "v7")
