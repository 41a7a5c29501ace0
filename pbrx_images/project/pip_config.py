"""Forward the host's pip configuration and proxy settings into build containers.

Users behind corporate proxies or with private package indexes configure pip
on their machine; the pip run inside a build container should behave the
same.  :func:`read_host_pip_config` collects what pip on the host would use
(its global and user configuration files, ``PIP_CONFIG_FILE``, ``PIP_*``
environment variables and the proxy variables) and
:meth:`HostPipConfig.for_container` turns that into files and environment
variables for the container:

* options that name host files (``cert``, ``constraint``, ...) have the files
  copied into the container and their values rewritten;
* package locations on the host's disk (``find-links``/``index-url``/
  ``extra-index-url`` paths and ``file:`` URLs) are dropped, because the
  container cannot see them, while remote URLs are kept;
* options that only make sense for an installation on the host (``target``,
  ``user``, ``cache-dir``, ...) are dropped.

:func:`pbrx_images.project.urls.redact` hides credentials in URLs before text is
logged, and
:meth:`ContainerPipConfig.secret_values` lists the strings that must never be
written into an image.
"""

from __future__ import annotations

import configparser
import io
import locale
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pbrx_images.errors import BuildError
from pbrx_images.project.urls import (file_url_to_path, is_loopback_url, is_remote_url, redact,
                                      secrets_in)

__all__ = [
    "DEFAULT_DIRECTORY",
    "ContainerPipConfig",
    "HostPipConfig",
    "pip_config_files",
    "read_host_pip_config",
    "redact",
]

#: Where the forwarded pip configuration is put in a build container.
DEFAULT_DIRECTORY = "/tmp/pbrx-images-pip"

#: Proxy variables forwarded as they are, in lower and upper case.
PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY",
    "https_proxy", "HTTPS_PROXY",
    "no_proxy", "NO_PROXY",
    "all_proxy", "ALL_PROXY",
)

# Options whose value names host files, mapped to whether the value may list
# several of them separated by whitespace (pip's "append" options).
_FILE_OPTIONS = {
    "cert": False,
    "client-cert": False,
    "constraint": True,
    "build-constraint": True,
    "requirement": True,
}

# Options whose value lists package locations (URLs or paths).
_LOCATION_OPTIONS = frozenset({"find-links", "index-url", "extra-index-url"})

# Options that describe an installation on the host and are never forwarded.
_HOST_ONLY_OPTIONS = frozenset({
    "break-system-packages",
    "cache-dir",
    "log",
    "log-file",
    "prefix",
    "python",
    "require-venv",
    "require-virtualenv",
    "root",
    "src",
    "target",
    "user",
})

# Options whose whole value is a proxy URL.
_PROXY_OPTIONS = frozenset({"proxy"})
_PROXY_URL_VARIABLES = frozenset(
    name for name in PROXY_VARIABLES if name.lower() != "no_proxy"
)

# --------------------------------------------------------------------------
# Reading the host's configuration


def pip_config_files(
    environ: Mapping[str, str], home: Path, root: Path = Path("/")
) -> list[Path]:
    """Return the configuration files pip reads on Linux, lowest priority first.

    This follows pip's own rules: the global files (``pip/pip.conf`` in each
    of ``XDG_CONFIG_DIRS``, then ``/etc/pip.conf``), the user files
    (``~/.pip/pip.conf``, then ``pip/pip.conf`` in ``XDG_CONFIG_HOME``) unless
    ``PIP_CONFIG_FILE`` names an existing file, and finally
    ``PIP_CONFIG_FILE``.  ``PIP_CONFIG_FILE=/dev/null`` means no files at all.
    pip's "site" file (in the running virtualenv) is deliberately left out:
    it belongs to this tool's own environment, not to the user's setup.

    ``root`` is prefixed to the global paths so tests can use a fake ``/``.
    """
    config_file = environ.get("PIP_CONFIG_FILE") or None
    if config_file == os.devnull:
        return []

    files = []
    config_dirs = environ.get("XDG_CONFIG_DIRS", "")
    if not config_dirs.strip():
        config_dirs = "/etc/xdg"
    for directory in config_dirs.split(os.pathsep):
        if directory:
            files.append(_below(root, _expand_user(directory, home)) / "pip" / "pip.conf")
    files.append(_below(root, "/etc") / "pip.conf")

    if not (config_file and os.path.exists(config_file)):
        config_home = environ.get("XDG_CONFIG_HOME", "")
        user_dir = Path(config_home) if config_home.strip() else home / ".config"
        files.append(home / ".pip" / "pip.conf")
        files.append(user_dir / "pip" / "pip.conf")

    if config_file:
        files.append(Path(config_file))
    return files


def read_host_pip_config(
    environ: Mapping[str, str], home: Path, root: Path = Path("/")
) -> HostPipConfig:
    """Collect the pip configuration and proxy settings of the host.

    ``environ`` is the host environment (usually ``os.environ``) and ``home``
    the user's home directory; ``root`` is only for tests (see
    :func:`pip_config_files`).  Files are merged per section and key, later
    files winning, like pip does.  A file that cannot be read is skipped with
    a note (pip skips it too); a file pip could not parse raises
    :class:`BuildError`.
    """
    home = Path(home)
    read: list[Path] = []
    sections: dict[str, dict[str, str]] = {}
    origins: dict[tuple[str, str], Path] = {}
    notes: list[str] = []

    for path in pip_config_files(environ, home, root):
        parser = _read_config_file(path, notes)
        if parser is None:
            continue
        read.append(path)
        for section in parser.sections():
            for key, value in parser.items(section):
                key = _normalize_name(key)
                sections.setdefault(section, {})[key] = value
                origins[(section, key)] = path

    environment = {
        name: value
        for name, value in environ.items()
        if (name.startswith("PIP_") and name != "PIP_CONFIG_FILE") or name in PROXY_VARIABLES
    }
    return HostPipConfig(
        config_files=read,
        sections=sections,
        origins=origins,
        environment=environment,
        notes=notes,
        home=home,
    )


def _below(root: Path, path: str) -> Path:
    """Return absolute ``path`` as seen below ``root``."""
    return Path(root) / path.lstrip("/")


def _expand_user(path: str, home: Path) -> str:
    """Expand a leading ``~`` with ``home``."""
    if path == "~" or path.startswith("~/"):
        return str(home) + path[1:]
    return path


def _normalize_name(name: str) -> str:
    """Normalize an option name the way pip does (``Index_URL`` → ``index-url``)."""
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _read_config_file(path: Path, notes: list[str]) -> configparser.RawConfigParser | None:
    """Parse one pip configuration file as pip does; None if there is none."""
    if not os.path.exists(path):  # False, as for pip, also for names too long or with NUL
        return None
    encoding = locale.getpreferredencoding(False)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as error:
        raise BuildError(
            f"The pip configuration file {path} contains characters that are not valid"
            f" {encoding} (at byte {error.start}), so pip cannot use it either; fix the file,"
            f" or set PIP_CONFIG_FILE={os.devnull} to build without the host's pip"
            f" configuration."
        ) from error
    except OSError as error:
        notes.append(
            f"The pip configuration file {path} cannot be read ({error.strerror or error})"
            f" and was ignored, as pip itself does."
        )
        return None

    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as error:
        raise BuildError(
            f"The pip configuration file {path} cannot be parsed{_error_line(error)}"
            f" ({_first_line(error)}), so pip cannot use it either; fix the file, or set"
            f" PIP_CONFIG_FILE={os.devnull} to build without the host's pip configuration."
        ) from error
    return parser


def _error_line(error: configparser.Error) -> str:
    """Return " at line N" for a configparser error, if it knows the line."""
    lineno = getattr(error, "lineno", None)
    if lineno is None and isinstance(error, configparser.ParsingError) and error.errors:
        lineno = error.errors[0][0]
    return f" at line {lineno}" if lineno else ""


def _first_line(error: configparser.Error) -> str:
    if isinstance(error, configparser.MissingSectionHeaderError):
        return "a line comes before any [section] header"
    if isinstance(error, configparser.ParsingError):
        return "a line is neither a [section] header nor a 'key = value' line"
    return str(error).splitlines()[0]


# --------------------------------------------------------------------------
# The configuration for a build container


@dataclass(repr=False)
class ContainerPipConfig:
    """pip configuration for commands run in a build container.

    ``files`` maps absolute container paths to their contents; they must be
    in place before ``environment`` is used.  ``notes`` are sentences about
    host settings that were not forwarded.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    secrets: frozenset[str] = frozenset()

    def secret_values(self) -> set[str]:
        """Return the strings that must never end up in an image.

        These are the passwords and tokens of URLs in the forwarded settings,
        the full URLs that carry them, every proxy URL and the contents of
        forwarded client certificates (which hold a private key).
        """
        return set(self.secrets)

    def __repr__(self) -> str:
        return redact(
            f"ContainerPipConfig(files={sorted(self.files)!r},"
            f" environment={self.environment!r}, notes={self.notes!r})"
        )


@dataclass(repr=False)
class HostPipConfig:
    """The pip configuration and proxy settings found on the host.

    ``config_files`` are the files that were read, lowest priority first;
    ``sections`` their merged contents with pip-normalized keys, and
    ``origins`` the file each ``(section, key)`` came from.  ``environment``
    holds the ``PIP_*`` variables (except ``PIP_CONFIG_FILE``) and proxy
    variables, as found.  ``notes`` are sentences about files that were
    skipped.
    """

    config_files: list[Path] = field(default_factory=list)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    origins: dict[tuple[str, str], Path] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    home: Path = field(default_factory=Path.home)

    def for_container(self, directory: str = DEFAULT_DIRECTORY) -> ContainerPipConfig:
        """Translate this configuration for a build container.

        The merged configuration files become ``<directory>/pip.conf``, named
        by ``PIP_CONFIG_FILE``; host files named by options are read now and
        copied to ``<directory>``.
        """
        return _Translation(self, directory).run()

    def __repr__(self) -> str:
        return redact(
            f"HostPipConfig(config_files={[str(path) for path in self.config_files]!r},"
            f" sections={self.sections!r}, environment={self.environment!r})"
        )


class _Translation:
    """The work of :meth:`HostPipConfig.for_container`."""

    def __init__(self, host: HostPipConfig, directory: str) -> None:
        self.host = host
        self.directory = directory.rstrip("/") or "/"
        self.config_path = posixpath.join(self.directory, "pip.conf")
        self.files: dict[str, bytes] = {}
        self.copies: dict[str, str] = {}  # host path -> container path
        self.notes: list[str] = list(host.notes)
        self.local_locations: dict[str, list[str]] = {}  # location -> where it was set
        self.secrets: set[str] = set()

    def run(self) -> ContainerPipConfig:
        sections: dict[str, dict[str, str]] = {}
        for section, options in self.host.sections.items():
            for key, value in options.items():
                origin = self.host.origins.get((section, key))
                where = f"{_printable(key)} in [{_printable(section)}]"
                if origin:
                    where += f" of {origin}"
                new_value = self.translate(key, value, where)
                if new_value is not None:
                    sections.setdefault(section, {})[key] = new_value
                    self.collect_secrets(new_value, is_proxy=key in _PROXY_OPTIONS)

        environment: dict[str, str] = {}
        if sections:
            self.files[self.config_path] = self.render(sections)
            environment["PIP_CONFIG_FILE"] = self.config_path
        for name, value in self.host.environment.items():
            if name.startswith("PIP_"):
                new_value = self.translate(_normalize_name(name[4:]), value, _printable(name))
            else:
                new_value = value
            if new_value is not None:
                environment[name] = new_value
                self.collect_secrets(new_value, is_proxy=name in _PROXY_URL_VARIABLES)

        self.note_local_locations()
        self.note_loopback_proxies(environment)
        return ContainerPipConfig(
            files=self.files,
            environment=environment,
            notes=self.notes,
            secrets=frozenset(self.secrets),
        )

    def translate(self, option: str, value: str, where: str) -> str | None:
        """Return the container value of one option; None to drop it."""
        if option in _HOST_ONLY_OPTIONS:
            return None
        if option in _FILE_OPTIONS:
            return self.copy_files(option, value, where)
        if option in _LOCATION_OPTIONS:
            return self.keep_remote_locations(value, where)
        return value

    def copy_files(self, option: str, value: str, where: str) -> str | None:
        """Copy the host files named by ``value``; return the rewritten value."""
        items = value.split() if _FILE_OPTIONS[option] else [value.strip()]
        kept = []
        for item in items:
            if not item:
                continue
            if is_remote_url(item):
                kept.append(item)  # e.g. constraint = https://releases.example.org/c.txt
                continue
            container_path = self.copy_file(option, item, where)
            if container_path is not None:
                kept.append(container_path)
        return " ".join(kept) or None

    def copy_file(self, option: str, item: str, where: str) -> str | None:
        """Copy one host file into ``files``; None (with a note) if unreadable."""
        host_path = os.path.abspath(_expand_user(file_url_to_path(item), self.host.home))
        if host_path in self.copies:
            return self.copies[host_path]
        try:
            content = Path(host_path).read_bytes()
        except (OSError, ValueError) as error:  # ValueError: a NUL in the name
            self.notes.append(
                f"Not forwarding {_printable(redact(item))} ({where}) to the build container:"
                f" the file cannot be read ({getattr(error, 'strerror', None) or error})."
            )
            return None
        container_path = self.unique_path(posixpath.basename(host_path))
        self.files[container_path] = content
        self.copies[host_path] = container_path
        if option == "client-cert":
            self.secrets.add(content.decode("utf-8", errors="replace").strip())
        return container_path

    def unique_path(self, basename: str) -> str:
        """Return a path in the directory named like ``basename`` and not yet used."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", basename).lstrip(".") or "file"
        stem, dot, suffix = name.partition(".")
        candidate, number = name, 1
        while posixpath.join(self.directory, candidate) in self.files or candidate == "pip.conf":
            number += 1
            candidate = f"{stem}-{number}{dot}{suffix}"
        return posixpath.join(self.directory, candidate)

    def keep_remote_locations(self, value: str, where: str) -> str | None:
        """Return ``value`` without its host-local paths and ``file:`` URLs."""
        kept = []
        for item in value.split():
            if is_remote_url(item):
                kept.append(item)
            else:
                self.local_locations.setdefault(item, []).append(where)
        return " ".join(kept) or None

    def note_local_locations(self) -> None:
        if not self.local_locations:
            return
        described = "; ".join(
            f"{_printable(redact(location))} ({', '.join(wheres)})"
            for location, wheres in self.local_locations.items()
        )
        self.notes.append(
            f"Not forwarding package locations on the host's disk, which the build"
            f" container cannot see: {described}."
        )

    def note_loopback_proxies(self, environment: Mapping[str, str]) -> None:
        by_value: dict[str, list[str]] = {}
        for name, value in environment.items():
            if name in _PROXY_URL_VARIABLES and is_loopback_url(value):
                by_value.setdefault(value, []).append(name)
        for value, names in by_value.items():
            self.notes.append(
                f"The proxy {_printable(redact(value))} ({', '.join(names)}) is on the host's"
                f" loopback interface, which a build container only reaches when it uses the"
                f" host's network; it is forwarded as it is."
            )

    def collect_secrets(self, value: str, is_proxy: bool) -> None:
        self.secrets.update(secrets_in(value, is_proxy))

    def render(self, sections: Mapping[str, Mapping[str, str]]) -> bytes:
        """Return the merged pip.conf for the container."""
        parser = configparser.RawConfigParser()
        for section, options in sections.items():
            parser.add_section(section)
            for key, value in options.items():
                parser.set(section, key, value)
        text = io.StringIO()
        text.write("# Written by pbrx-images from the host's pip configuration:\n")
        for path in self.host.config_files:
            text.write(f"#   {path}\n")
        parser.write(text)
        return text.getvalue().encode("utf-8")


def _printable(text: str) -> str:
    """Return ``text``, with escapes for characters that are not printable.

    Keeps notes on one line whatever a configuration file contains.
    """
    return text if text.isprintable() else repr(text)[1:-1]
