"""Tests for pbrx_images.project.pip_config."""

from __future__ import annotations

import configparser
import os
import textwrap
from pathlib import Path

import pytest

from pbrx_images.errors import BuildError
from pbrx_images.project.pip_config import (DEFAULT_DIRECTORY, HostPipConfig, pip_config_files,
                                            read_host_pip_config, redact)

CA_BUNDLE = b"-----BEGIN CERTIFICATE-----\nMIIFakeCA\n-----END CERTIFICATE-----\n"
CONSTRAINTS = b"torch<=2.14.1\ntorchvision<=0.29.1\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def parse_conf(content: bytes) -> dict[str, dict[str, str]]:
    """Read a pip.conf the way pip does."""
    parser = configparser.RawConfigParser()
    parser.read_string(content.decode("utf-8"))
    return {section: dict(parser.items(section)) for section in parser.sections()}


def machine_setup(root: Path, home: Path) -> dict[str, str]:
    """Reproduce this development machine's pip setup below root and home."""
    cert = write(root / "etc/ssl/certs/ca-certificates.crt", CA_BUNDLE)
    constraints = write(root / "etc/xdg/pip/constraints.txt", CONSTRAINTS)
    write(root / "etc/xdg/pip/pip.conf", f"[global]\nconstraint = {constraints}\n")
    write(root / "etc/pip.conf", f"[global]\ncert = {cert}\n")
    write(home / ".config/pip/pip.conf", """\
        [global]
        find-links = /opt/wheels
        extra-index-url = file:///opt/pypi/simple file:///opt/pypi-more/simple
        """)
    return {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "PIP_CERT": str(cert),
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_FIND_LINKS": "/opt/wheels",
    }


# --------------------------------------------------------------------------
# Which files pip reads


def test_config_files_in_pip_order(root: Path, home: Path) -> None:
    assert pip_config_files({}, home, root) == [
        root / "etc/xdg/pip/pip.conf",
        root / "etc/pip.conf",
        home / ".pip/pip.conf",
        home / ".config/pip/pip.conf",
    ]


def test_config_files_follow_xdg_variables(root: Path, home: Path, tmp_path: Path) -> None:
    environ = {
        "XDG_CONFIG_DIRS": f"/opt/conf{os.pathsep}~/shared",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    assert pip_config_files(environ, home, root) == [
        root / "opt/conf/pip/pip.conf",
        root / str(home).lstrip("/") / "shared/pip/pip.conf",
        root / "etc/pip.conf",
        home / ".pip/pip.conf",
        tmp_path / "config/pip/pip.conf",
    ]


def test_existing_pip_config_file_replaces_user_files(root: Path, home: Path) -> None:
    config_file = write(home / "ci-pip.conf", "[global]\ntimeout = 5\n")

    assert pip_config_files({"PIP_CONFIG_FILE": str(config_file)}, home, root) == [
        root / "etc/xdg/pip/pip.conf",
        root / "etc/pip.conf",
        config_file,
    ]


def test_missing_pip_config_file_keeps_user_files(root: Path, home: Path) -> None:
    missing = home / "missing.conf"

    files = pip_config_files({"PIP_CONFIG_FILE": str(missing)}, home, root)

    assert files[-3:] == [home / ".pip/pip.conf", home / ".config/pip/pip.conf", missing]


def test_pip_config_file_devnull_means_no_files(root: Path, home: Path) -> None:
    assert pip_config_files({"PIP_CONFIG_FILE": os.devnull}, home, root) == []


# --------------------------------------------------------------------------
# This machine's setup


def test_machine_setup(root: Path, home: Path) -> None:
    environ = machine_setup(root, home)

    host = read_host_pip_config(environ, home, root)
    container = host.for_container()

    assert host.config_files == [
        root / "etc/xdg/pip/pip.conf",
        root / "etc/pip.conf",
        home / ".config/pip/pip.conf",
    ]
    conf_path = f"{DEFAULT_DIRECTORY}/pip.conf"
    cert_path = f"{DEFAULT_DIRECTORY}/ca-certificates.crt"
    constraints_path = f"{DEFAULT_DIRECTORY}/constraints.txt"
    assert sorted(container.files) == sorted([conf_path, cert_path, constraints_path])
    assert container.files[cert_path] == CA_BUNDLE
    assert container.files[constraints_path] == CONSTRAINTS
    assert parse_conf(container.files[conf_path]) == {
        "global": {"constraint": constraints_path, "cert": cert_path},
    }
    assert container.environment == {
        "PIP_CONFIG_FILE": conf_path,
        "PIP_CERT": cert_path,
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    assert len(container.notes) == 1
    note = container.notes[0]
    assert note.startswith("Not forwarding package locations on the host's disk")
    for location in ("/opt/wheels", "file:///opt/pypi/simple", "file:///opt/pypi-more/simple"):
        assert location in note
    assert "PIP_FIND_LINKS" in note
    assert str(home / ".config/pip/pip.conf") in note
    assert container.secret_values() == set()


def test_other_directory(root: Path, home: Path) -> None:
    environ = machine_setup(root, home)

    container = read_host_pip_config(environ, home, root).for_container("/build/pip/")

    assert container.environment["PIP_CONFIG_FILE"] == "/build/pip/pip.conf"
    assert container.environment["PIP_CERT"] == "/build/pip/ca-certificates.crt"
    assert all(path.startswith("/build/pip/") for path in container.files)


def test_no_configuration_at_all(root: Path, home: Path) -> None:
    container = read_host_pip_config({"PATH": "/bin"}, home, root).for_container()

    assert container.files == {}
    assert container.environment == {}
    assert container.notes == []


# --------------------------------------------------------------------------
# Merging and PIP_CONFIG_FILE


def test_later_files_override_per_key_and_sections_are_kept(root: Path, home: Path) -> None:
    write(root / "etc/pip.conf", """\
        [global]
        timeout = 60
        index-url = https://pypi.example.org/simple

        [install]
        no-binary = :none:
        """)
    write(home / ".pip/pip.conf", "[global]\nretries = 2\n")
    write(home / ".config/pip/pip.conf", """\
        [global]
        Timeout = 10

        [wheel]
        no-deps = yes

        [download]
        platform = manylinux2014_x86_64
        """)

    host = read_host_pip_config({}, home, root)
    container = host.for_container()

    assert host.sections == {
        "global": {
            "timeout": "10",
            "index-url": "https://pypi.example.org/simple",
            "retries": "2",
        },
        "install": {"no-binary": ":none:"},
        "wheel": {"no-deps": "yes"},
        "download": {"platform": "manylinux2014_x86_64"},
    }
    assert host.origins[("global", "timeout")] == home / ".config/pip/pip.conf"
    assert parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"]) == host.sections


def test_pip_config_file_overrides_global_and_skips_user(root: Path, home: Path) -> None:
    write(root / "etc/pip.conf", "[global]\ntimeout = 60\nretries = 7\n")
    write(home / ".config/pip/pip.conf", "[global]\nno-cache-dir = yes\n")
    config_file = write(home / "ci.conf", "[global]\ntimeout = 5\n")

    host = read_host_pip_config({"PIP_CONFIG_FILE": str(config_file)}, home, root)
    container = host.for_container()

    assert host.sections == {"global": {"timeout": "5", "retries": "7"}}
    assert host.environment == {}  # PIP_CONFIG_FILE itself is not forwarded
    assert container.environment == {"PIP_CONFIG_FILE": f"{DEFAULT_DIRECTORY}/pip.conf"}


def test_pip_config_file_devnull_ignores_files_but_not_variables(
    root: Path, home: Path
) -> None:
    environ = machine_setup(root, home)
    environ["PIP_CONFIG_FILE"] = os.devnull

    host = read_host_pip_config(environ, home, root)
    container = host.for_container()

    assert host.config_files == []
    assert host.sections == {}
    assert "PIP_CONFIG_FILE" not in container.environment
    assert container.environment["PIP_CERT"] == f"{DEFAULT_DIRECTORY}/ca-certificates.crt"
    assert sorted(container.files) == [f"{DEFAULT_DIRECTORY}/ca-certificates.crt"]


# --------------------------------------------------------------------------
# Host files


def test_several_paths_in_one_value(root: Path, home: Path, tmp_path: Path) -> None:
    first = write(tmp_path / "a/constraints.txt", b"a<2\n")
    second = write(tmp_path / "b/constraints.txt", b"b<3\n")
    upper = "https://releases.openstack.org/constraints/upper/master"
    write(home / ".config/pip/pip.conf", f"""\
        [install]
        constraint =
            {first}
            {upper}
            {second}
        """)
    environ = {
        "PIP_CONSTRAINT": f"{second} file://{first}",
        "PIP_BUILD_CONSTRAINT": f"  {first}  ",
    }

    container = read_host_pip_config(environ, home, root).for_container()

    first_copy = f"{DEFAULT_DIRECTORY}/constraints.txt"
    second_copy = f"{DEFAULT_DIRECTORY}/constraints-2.txt"
    assert container.files[first_copy] == b"a<2\n"
    assert container.files[second_copy] == b"b<3\n"
    conf = parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"])
    assert conf["install"]["constraint"] == f"{first_copy} {upper} {second_copy}"
    assert container.environment["PIP_CONSTRAINT"] == f"{second_copy} {first_copy}"
    assert container.environment["PIP_BUILD_CONSTRAINT"] == first_copy
    assert container.notes == []


def test_unreadable_cert_is_dropped_with_a_note(root: Path, home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere/corp-ca.pem"
    good = write(tmp_path / "constraints.txt", b"x<1\n")
    write(root / "etc/pip.conf", f"[global]\ncert = {missing}\nconstraint = {good} {missing}\n")
    environ = {"PIP_CLIENT_CERT": str(tmp_path)}  # a directory cannot be read as a file

    container = read_host_pip_config(environ, home, root).for_container()

    conf = parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"])
    assert conf == {"global": {"constraint": f"{DEFAULT_DIRECTORY}/constraints.txt"}}
    assert "PIP_CLIENT_CERT" not in container.environment
    assert len(container.notes) == 3
    cert_note = container.notes[0]
    assert cert_note == (
        f"Not forwarding {missing} (cert in [global] of {root / 'etc/pip.conf'}) to the build"
        f" container: the file cannot be read (No such file or directory)."
    )
    assert "(constraint in [global]" in container.notes[1]
    assert "PIP_CLIENT_CERT" in container.notes[2]


def test_relative_cert_path_and_home(root: Path, home: Path) -> None:
    write(home / "certs/ca.pem", CA_BUNDLE)
    write(home / ".pip/pip.conf", "[global]\ncert = ~/certs/ca.pem\n")

    container = read_host_pip_config({}, home, root).for_container()

    assert container.files[f"{DEFAULT_DIRECTORY}/ca.pem"] == CA_BUNDLE


def test_client_cert_contents_are_secret(root: Path, home: Path, tmp_path: Path) -> None:
    key = b"-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n"
    client = write(tmp_path / "client.pem", key + CA_BUNDLE)

    container = read_host_pip_config(
        {"PIP_CLIENT_CERT": str(client)}, home, root
    ).for_container()

    assert container.environment["PIP_CLIENT_CERT"] == f"{DEFAULT_DIRECTORY}/client.pem"
    assert (key + CA_BUNDLE).decode().strip() in container.secret_values()


def test_copied_files_do_not_clash_with_pip_conf(root: Path, home: Path, tmp_path: Path) -> None:
    requirements = write(tmp_path / "pip.conf", b"requests\n")
    write(root / "etc/pip.conf", f"[install]\nrequirement = {requirements}\n")

    container = read_host_pip_config({}, home, root).for_container()

    conf = parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"])
    assert conf["install"]["requirement"] == f"{DEFAULT_DIRECTORY}/pip-2.conf"
    assert container.files[f"{DEFAULT_DIRECTORY}/pip-2.conf"] == b"requests\n"


# --------------------------------------------------------------------------
# Package locations, host-only options, environment


def test_remote_locations_are_kept_and_local_ones_dropped(root: Path, home: Path) -> None:
    write(home / ".config/pip/pip.conf", """\
        [global]
        index-url = https://user:s3cr%40t@pypi.corp.example/simple
        extra-index-url =
            file:///opt/pypi/simple
            https://mirror.example.org/simple
        find-links = ./wheels
        """)
    environ = {
        "PIP_INDEX_URL": "/srv/pypi",
        "PIP_EXTRA_INDEX_URL": "https://__token__:pypi-AgEtoken@upload.example/simple",
        "PIP_FIND_LINKS": "https://download.example.org/wheels.html ~/wheels",
    }

    container = read_host_pip_config(environ, home, root).for_container()

    conf = parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"])
    assert conf == {
        "global": {
            "index-url": "https://user:s3cr%40t@pypi.corp.example/simple",
            "extra-index-url": "https://mirror.example.org/simple",
        },
    }
    assert "PIP_INDEX_URL" not in container.environment
    assert container.environment["PIP_EXTRA_INDEX_URL"] == environ["PIP_EXTRA_INDEX_URL"]
    assert container.environment["PIP_FIND_LINKS"] == "https://download.example.org/wheels.html"
    [note] = container.notes
    for location in ("file:///opt/pypi/simple", "./wheels", "/srv/pypi", "~/wheels"):
        assert location in note
    assert "mirror.example.org" not in note


def test_host_only_options_are_dropped_silently(root: Path, home: Path) -> None:
    write(home / ".config/pip/pip.conf", """\
        [install]
        user = true
        target = /home/me/lib
        no-compile = yes

        [global]
        cache-dir = /var/cache/pip
        log = /tmp/pip.log
        """)
    environ = {
        name: "x"
        for name in (
            "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PIP_REQUIRE_VIRTUALENV", "PIP_ROOT",
            "PIP_SRC", "PIP_CACHE_DIR", "PIP_LOG", "PIP_BREAK_SYSTEM_PACKAGES",
        )
    }
    environ["PIP_ROOT_USER_ACTION"] = "ignore"
    environ["PIP_NO_CACHE_DIR"] = "1"

    container = read_host_pip_config(environ, home, root).for_container()

    conf = parse_conf(container.files[f"{DEFAULT_DIRECTORY}/pip.conf"])
    assert conf == {"install": {"no-compile": "yes"}}
    assert container.environment == {
        "PIP_CONFIG_FILE": f"{DEFAULT_DIRECTORY}/pip.conf",
        "PIP_ROOT_USER_ACTION": "ignore",
        "PIP_NO_CACHE_DIR": "1",
    }
    assert container.notes == []


def test_proxies_are_forwarded_in_both_cases(root: Path, home: Path) -> None:
    environ = {
        "http_proxy": "http://proxy.corp.example:3128",
        "HTTPS_PROXY": "http://alice:pa55word@proxy.corp.example:3128",
        "no_proxy": "localhost,127.0.0.1,.corp.example",
        "NO_PROXY": "localhost,127.0.0.1,.corp.example",
        "ALL_PROXY": "socks5://proxy.corp.example:1080",
        "ftp_proxy": "http://not-forwarded:21",
        "HOME": str(home),
    }

    host = read_host_pip_config(environ, home, root)
    container = host.for_container()

    expected = {k: v for k, v in environ.items() if k not in ("ftp_proxy", "HOME")}
    assert host.environment == expected
    assert container.environment == expected
    assert container.notes == []
    secrets = container.secret_values()
    assert "pa55word" in secrets
    assert "http://alice:pa55word@proxy.corp.example:3128" in secrets
    assert "http://proxy.corp.example:3128" in secrets
    assert "socks5://proxy.corp.example:1080" in secrets
    assert "alice" not in secrets
    assert not any("localhost" in secret for secret in secrets)


def test_loopback_proxy_gets_a_note(root: Path, home: Path) -> None:
    environ = {"http_proxy": "http://127.0.0.1:3128", "HTTP_PROXY": "http://127.0.0.1:3128"}

    container = read_host_pip_config(environ, home, root).for_container()

    assert container.environment == environ
    [note] = container.notes
    assert "http://127.0.0.1:3128 (http_proxy, HTTP_PROXY)" in note


def test_credentials_are_kept_in_the_environment_but_redacted(root: Path, home: Path) -> None:
    environ = {
        "PIP_INDEX_URL": "https://bob:hunter2@pypi.corp.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://ghp_T0k3n@git.example/simple",
        "https_proxy": "carol:p%40ss@proxy.corp.example:8080",
    }
    write(root / "etc/pip.conf", "[global]\nproxy = http://dave:letmein@proxy:80\n")

    container = read_host_pip_config(environ, home, root).for_container()

    assert container.environment["PIP_INDEX_URL"] == environ["PIP_INDEX_URL"]
    assert container.environment["PIP_EXTRA_INDEX_URL"] == environ["PIP_EXTRA_INDEX_URL"]
    assert container.environment["https_proxy"] == environ["https_proxy"]
    secrets = container.secret_values()
    assert {
        "hunter2",
        "https://bob:hunter2@pypi.corp.example/simple",
        "ghp_T0k3n",
        "p%40ss",
        "p@ss",
        "carol:p%40ss@proxy.corp.example:8080",
        "letmein",
        "http://dave:letmein@proxy:80",
    } <= secrets
    assert "bob" not in secrets

    logged = redact(repr(container))
    for secret in ("hunter2", "ghp_T0k3n", "letmein"):
        assert secret not in logged
    assert "https://***@pypi.corp.example/simple" in logged


# --------------------------------------------------------------------------
# Broken configuration files


def test_unparsable_config_file(root: Path, home: Path) -> None:
    path = write(home / ".config/pip/pip.conf", "[global]\ntimeout = 5\nthis is wrong\n")

    with pytest.raises(BuildError) as caught:
        read_host_pip_config({}, home, root)

    message = str(caught.value)
    assert message.startswith(f"The pip configuration file {path} cannot be parsed at line 3")
    assert f"PIP_CONFIG_FILE={os.devnull}" in message


def test_config_file_without_section(root: Path, home: Path) -> None:
    write(root / "etc/pip.conf", "\ntimeout = 5\n")

    with pytest.raises(BuildError, match="cannot be parsed at line 2"):
        read_host_pip_config({}, home, root)


def test_unreadable_config_file_is_skipped_with_a_note(root: Path, home: Path) -> None:
    (home / ".config/pip/pip.conf").mkdir(parents=True)
    write(root / "etc/pip.conf", "[global]\ntimeout = 5\n")

    host = read_host_pip_config({}, home, root)

    assert host.sections == {"global": {"timeout": "5"}}
    [note] = host.notes
    assert note.startswith(f"The pip configuration file {home / '.config/pip/pip.conf'}")
    assert host.for_container().notes == [note]


def test_host_repr_is_redacted() -> None:
    host = HostPipConfig(environment={"PIP_INDEX_URL": "https://u:secret@h/simple"})

    assert "secret" not in repr(host)
