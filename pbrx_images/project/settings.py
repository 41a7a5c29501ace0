"""The options of a build: command line over project settings over defaults.

A project may set options in ``[tool.build-images]`` of ``pyproject.toml``
or ``[build_images]`` of ``setup.cfg`` (keys spelled with ``-`` or ``_``);
what is given on the command line wins.
"""
from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pbrx_images.errors import BuildError, ProjectError
from pbrx_images.plan import BASE_EXTRAS_KEY, ExtrasFor, check_prefix, check_tag, target_platform
from pbrx_images.plan.names import check_cache_reference
from pbrx_images.project.pyproject import PyProject, read_pyproject

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
DEFAULT_TAG = "latest"
#: Settings a project may keep in its files, with their meaning.
PROJECT_SETTINGS = ("base-image", "prefix", "tag", "constraints", "cache-from", "cache-to",
                    "extras", "build-args", "only", "labels", "network", "user", "platform",
                    "sbom-dir", "smoke-test")
#: How setup.cfg spells a setting that is on or off.
_CFG_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
#: A build argument's name, as Dockerfiles spell ``ARG``.
_BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The build argument build-images sets itself: the base image's work tag.
RESERVED_BUILD_ARG = "BASE_IMAGE"


@dataclass(frozen=True)
class Options:
    """Everything that shapes a build besides the project itself."""

    project_dir: Path
    base_image: str = DEFAULT_BASE_IMAGE
    prefix: str | None = None
    tag: str = DEFAULT_TAG
    constraints: Path | None = None
    no_cache: bool = False
    debug: bool = False
    network: str | None = None  #: network of build containers; None = the engine's default
    smoke_test: bool = False  #: run each script with --help before tagging
    dry_run: bool = False  #: print the plan; build nothing
    user: str | None = None  #: the images' user, created in the base image; None = root
    uid: int | None = None  #: that user's UID; None = the distribution picks one
    push: bool = False  #: push every image to the registry in its name once all are tagged
    sbom_dir: Path | None = None  #: where the SBOMs go; None = cache.files.sbom_dir()
    platform: str | None = None  #: normalised ``os/arch[/variant]``; None = the engine's
    #: build even if the last build of the same inputs left its images as they were
    refresh: bool = False
    #: registry repository the shared build cache is read from (``--cache-from``)
    cache_from: str | None = None
    #: registry repository the shared build cache is written to after a build (``--cache-to``)
    cache_to: str | None = None
    #: extras of other names than the script's, per image (``--extra``, settings' ``extras``)
    extras: tuple[ExtrasFor, ...] = ()
    #: ``--build-arg KEY=VALUE``: for ``Dockerfile.{script}`` builds, beside ``BASE_IMAGE``
    build_args: tuple[tuple[str, str], ...] = ()
    #: tags every image gets besides :attr:`tag` (``-t a -t b``: ``("b",)``)
    more_tags: tuple[str, ...] = ()
    #: ``--only``: the console scripts whose images are built (and the base image); () = all
    only: tuple[str, ...] = ()
    #: ``--label KEY=VALUE``: on every image, after (and over) the OCI labels
    labels: tuple[tuple[str, str], ...] = ()
    #: the project's pyproject.toml as :func:`resolve` read it; None = read it when needed
    pyproject: PyProject | None = field(default=None, compare=False, repr=False)


def project_settings(project_dir: Path, pyproject: PyProject) -> dict[str, Any]:
    """Settings from ``pyproject.toml`` and ``setup.cfg``; pyproject wins.

    Each is a string, but ``extras``: a dict of image (script or ``base``)
    to :class:`~pbrx_images.plan.ExtrasFor`, merged image by image.
    """
    settings: dict[str, Any] = {}
    setup_cfg = project_dir / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.RawConfigParser()
        try:
            parser.read(setup_cfg, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            parser = configparser.RawConfigParser()  # metadata reading reports it
        if parser.has_section("build_images"):
            _merge(settings, _checked(dict(parser.items("build_images")),
                                      "[build_images] in %s" % setup_cfg, cfg=True))
    if pyproject.present:
        tool = pyproject.data.get("tool", {})
        if not isinstance(tool, dict):
            raise ProjectError("%s: 'tool' must be a table (such as [tool.build-images]); "
                               "fix it." % pyproject.path)
        table = tool.get("build-images")
        if table is not None:
            where = "[tool.build-images] in %s" % pyproject.path
            if not isinstance(table, dict):
                raise ProjectError("%s must be a table." % where)
            _merge(settings, _checked(table, where))
    return settings


def _merge(settings: dict[str, Any], more: Mapping[str, Any]) -> None:
    for name, value in more.items():
        if name in ("extras", "build-args", "labels"):
            settings.setdefault(name, {}).update(value)
        else:
            settings[name] = value


def _checked(table: Mapping[str, Any], where: str, cfg: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name not in PROJECT_SETTINGS:
            raise ProjectError("%s has an unknown setting %r: the known ones are %s."
                               % (where, key, ", ".join(PROJECT_SETTINGS)))
        if name == "extras":
            result[name] = (_cfg_extras(value, where) if cfg
                            else _toml_extras(value, where))
            continue
        if name in ("build-args", "labels"):
            check = _build_arg_name if name == "build-args" else _label_key
            result[name] = (_cfg_pairs if cfg else _toml_pairs)(value, where, name, check)
            continue
        if name == "only":
            names = (str(value).replace(",", " ").split() if cfg else
                     [value] if isinstance(value, str) else value)
            if not isinstance(names, list) or not names or not all(
                    isinstance(item, str) and item.strip() for item in names):
                raise ProjectError("%s: 'only' must be a list of console scripts, e.g. "
                                   "only = [\"food\"]." % where)
            result[name] = tuple(item.strip() for item in names)
            continue
        if name == "tag" and isinstance(value, (str, list)):
            # (several: a list, or in setup.cfg commas or lines; "release 1" is one wrong tag)
            tags = ([tag for tag in value.replace("\n", ",").split(",") if tag.strip()]
                    if isinstance(value, str) else value)
            if not tags or not all(isinstance(tag, str) and tag.strip() for tag in tags):
                raise ProjectError("%s: 'tag' must be a tag or a list of tags, e.g. tag = "
                                   "[\"latest\", \"1.2\"]." % where)
            try:
                result[name] = tuple(check_tag(tag.strip()) for tag in tags)
            except BuildError as error:
                raise _in(where, error) from None
            continue
        if name == "smoke-test":
            flag = value if isinstance(value, bool) else _CFG_BOOLEANS.get(
                str(value).strip().lower())
            if flag is None:
                raise ProjectError("%s: 'smoke-test' must be true or false." % where)
            result[name] = flag
            continue
        if not isinstance(value, str) or not value.strip():
            raise ProjectError("%s: %r must be a non-empty string." % (where, key))
        if name in ("prefix", "cache-from", "cache-to", "user", "platform"):
            try:
                if name == "prefix":
                    check_prefix(value.strip())
                elif name == "user":
                    parse_user(value.strip())
                elif name == "platform":
                    target_platform.parse(value.strip())
                else:
                    check_cache_reference(value.strip(), name)
            except BuildError as error:
                raise _in(where, error) from None
        result[name] = value.strip()
    return result


def _in(where: str, error: BuildError) -> ProjectError:
    """A check's error about a setting, said of where the setting is written."""
    message = str(error)
    return ProjectError("%s: %s" % (where, message[:1].lower() + message[1:]))


def _toml_extras(value: Any, where: str) -> dict[str, ExtrasFor]:
    """``[tool.build-images.extras]``: ``script = ["extra", ...]`` (or one string)."""
    if not isinstance(value, dict):
        raise ProjectError("%s: 'extras' must be a table of script = [extras], e.g. "
                           "[tool.build-images.extras] food = [\"d\"]." % where)
    result = {}
    for script, extras in value.items():
        if isinstance(extras, str):
            extras = [extras]
        if not isinstance(extras, list) or not all(
                isinstance(extra, str) and extra.strip() for extra in extras):
            raise ProjectError("%s: extras.%s must be a list of extra names, e.g. "
                               "%s = [\"d\"]." % (where, script, script))
        result[script] = ExtrasFor(script, tuple(extra.strip() for extra in extras),
                                   "extras.%s in %s" % (script, where))
    return result


def _cfg_extras(value: Any, where: str) -> dict[str, ExtrasFor]:
    """setup.cfg's ``extras =``: one ``script = extra, extra`` a line."""
    result = {}
    for line in str(value).splitlines():
        if not line.strip():
            continue
        script, equals, extras = line.partition("=")
        names = [extra.strip() for extra in extras.split(",")]
        if not equals or not script.strip() or not all(names):
            raise ProjectError("%s: the extras line %r is not 'script = extra, extra': fix "
                               "it." % (where, line.strip()))
        result[script.strip()] = ExtrasFor(script.strip(), tuple(names),
                                           "extras (%s) in %s" % (script.strip(), where))
    return result


def _toml_pairs(value: Any, where: str, setting: str, check: Callable[[str, str], str]
                ) -> dict[str, str]:
    """A table of ``KEY = "value"`` (``[tool.build-images.build-args]``, ``.labels``)."""
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ProjectError("%s: '%s' must be a table of KEY = \"value\", e.g. "
                           "[tool.build-images.%s] NAME = \"...\"." % (where, setting, setting))
    return {check(key, "%s: %s" % (where, setting)): item for key, item in value.items()}


def _cfg_pairs(value: Any, where: str, setting: str, check: Callable[[str, str], str]
               ) -> dict[str, str]:
    """setup.cfg's multi-line ``KEY = value`` settings (``build-args =``, ``labels =``)."""
    result = {}
    for line in str(value).splitlines():
        if line.strip():
            key, equals, item = line.partition("=")
            if not equals:
                raise ProjectError("%s: the %s line %r is not 'KEY = value': fix it."
                                   % (where, setting, line.strip()))
            result[check(key.strip(), "%s: %s" % (where, setting))] = item.strip()
    return result


def _pairs(given: Sequence[str], option: str, example: str,
           check: Callable[[str, str], str]) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options (the last one for a key wins)."""
    result = {}
    for item in given:
        key, equals, value = item.partition("=")
        if not equals:
            raise ProjectError("%s %r is not KEY=VALUE, e.g. %s %s." % (option, item, option,
                                                                        example))
        result[check(key, option)] = value
    return result


def parse_build_args(given: Sequence[str]) -> dict[str, str]:
    """``--build-arg KEY=VALUE`` options (the last one for a key wins)."""
    return _pairs(given, "--build-arg", "VERSION=1.2", _build_arg_name)


def parse_labels(given: Sequence[str]) -> dict[str, str]:
    """``--label KEY=VALUE`` options (the last one for a key wins)."""
    return _pairs(given, "--label", "org.example.team=infra", _label_key)


def _label_key(key: str, where: str) -> str:
    if not key or key != key.strip() or any(character.isspace() for character in key):
        raise ProjectError("%s: %r is not a label's key (no spaces, not empty): fix it."
                           % (where, key))
    return key


def _build_arg_name(key: str, where: str) -> str:
    if key == RESERVED_BUILD_ARG:
        raise ProjectError("%s: %s is the base image's work tag, which build-images sets "
                           "itself: name the argument otherwise." % (where, key))
    if not _BUILD_ARG.fullmatch(key):
        raise ProjectError("%s: %r is not a build argument's name (letters, digits and _, "
                           "not first a digit): fix it." % (where, key))
    return key


def _only(given: Sequence[str]) -> tuple[str, ...]:
    names = [name.strip() for item in given for name in item.split(",")]
    if not all(names):
        raise ProjectError("--only was given an empty name: give a console script, e.g. "
                           "--only food.")
    return tuple(dict.fromkeys(names))


def parse_extras(given: Sequence[str]) -> dict[str, ExtrasFor]:
    """``--extra SCRIPT=EXTRA[,EXTRA...]`` options, by image (the last one for an image wins)."""
    result = {}
    for item in given:
        script, equals, extras = item.partition("=")
        names = [extra.strip() for extra in extras.split(",")]
        if not equals or not script.strip() or not all(names):
            raise ProjectError("--extra %r is not SCRIPT=EXTRA[,EXTRA...], e.g. --extra "
                               "food=d, or --extra %s=EXTRA for the base image."
                               % (item, BASE_EXTRAS_KEY))
        result[script.strip()] = ExtrasFor(script.strip(), tuple(names), "--extra " + item)
    return result


def resolve(project_dir: Path, base_image: str | None = None, prefix: str | None = None,
            tag: str | Sequence[str] | None = None, constraints: str | None = None,
            no_cache: bool = False,
            debug: bool = False, network: str | None = None,
            smoke_test: bool = False, dry_run: bool = False,
            user: str | None = None, push: bool = False,
            sbom_dir: str | None = None, platform: str | None = None,
            refresh: bool = False, cache_from: str | None = None,
            cache_to: str | None = None, extras: Sequence[str] = (),
            build_args: Sequence[str] = (), only: Sequence[str] = (),
            labels: Sequence[str] = ()) -> Options:
    """Options from the command line (None = not given) over the project's settings.

    ``extras`` are ``--extra`` values; they win image by image over the
    settings' ``extras``; ``build_args``, ``--build-arg`` values, key by key;
    ``only``, ``--only`` values, replace the setting; ``labels``, ``--label``
    values, key by key.  ``tag`` is one tag or several (``-t``, repeated):
    every image gets each, the first is :attr:`Options.tag`.
    """
    project_dir = project_dir.resolve()
    if not project_dir.exists():
        raise ProjectError("The project directory %s does not exist: give the path of a "
                           "Python project." % project_dir)
    if not project_dir.is_dir():
        raise ProjectError("%s is not a directory: give the path of a Python project."
                           % project_dir)
    pyproject = read_pyproject(project_dir)
    settings = project_settings(project_dir, pyproject)
    given_tags = [tag] if isinstance(tag, str) else list(tag or ())
    tags = tuple(given_tags) or settings.get("tag") or (DEFAULT_TAG,)
    constraints_path = None
    if constraints is not None:
        constraints_path = Path(constraints).resolve()
    elif "constraints" in settings:
        constraints_path = (project_dir / settings["constraints"]).resolve()
    if constraints_path is not None and not constraints_path.is_file():
        raise ProjectError("The constraints file %s %s: fix the path given to --constraints "
                           "or in the project's settings." % (
                               constraints_path,
                               "is not a file" if constraints_path.exists() else "does not exist"))
    if base_image is not None and not base_image.strip():
        raise ProjectError("--base-image was given an empty value: give an image such as %s."
                           % DEFAULT_BASE_IMAGE)
    return Options(
        project_dir=project_dir,
        base_image=base_image if base_image is not None else settings.get(
            "base-image", DEFAULT_BASE_IMAGE),
        prefix=prefix if prefix is not None else settings.get("prefix"),
        tag=tags[0],
        more_tags=tuple(dict.fromkeys(more for more in tags[1:] if more != tags[0])),
        constraints=constraints_path,
        no_cache=no_cache,
        debug=debug,
        network=network if network is not None else settings.get("network"),
        smoke_test=smoke_test or settings.get("smoke-test", False),
        dry_run=dry_run,
        push=push,
        sbom_dir=_sbom_dir(sbom_dir) if sbom_dir is not None else _sbom_dir(
            settings.get("sbom-dir"), project_dir),
        platform=str(target_platform.parse(platform)) if platform is not None else (
            str(target_platform.parse(settings["platform"])) if "platform" in settings
            else None),
        refresh=refresh,
        cache_from=_cache_reference(cache_from, settings.get("cache-from"), "--cache-from"),
        cache_to=_cache_reference(cache_to, settings.get("cache-to"), "--cache-to"),
        extras=tuple({**settings.get("extras", {}), **parse_extras(extras)}.values()),
        build_args=tuple(sorted({**settings.get("build-args", {}),
                                 **parse_build_args(build_args)}.items())),
        only=_only(only) if only else settings.get("only", ()),
        labels=tuple(sorted({**settings.get("labels", {}), **parse_labels(labels)}.items())),
        pyproject=pyproject,
        **parse_user(user if user is not None else settings.get("user")),
    )


def _cache_reference(given: str | None, setting: str | None, option: str) -> str | None:
    """The repository of ``--cache-from``/``--cache-to`` (or its setting); "" turns it off."""
    value = given if given is not None else setting
    if value is None or not value.strip():
        return None
    try:
        return check_cache_reference(value.strip(), option)
    except BuildError as error:
        raise ProjectError(str(error)) from None


def _sbom_dir(value: str | None, relative_to: Path | None = None) -> Path | None:
    """``--sbom-dir`` (relative to the current directory), or the setting (to the project)."""
    if value is None:
        return None
    if not value.strip():
        raise ProjectError("--sbom-dir was given an empty value: give a directory such as "
                           "./sbom.")
    path = ((relative_to / value) if relative_to is not None else Path(value)).resolve()
    if path.exists() and not path.is_dir():
        raise ProjectError("--sbom-dir %s is not a directory: give a directory (it is created "
                           "when missing)." % path)
    return path


_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def parse_user(value: str | None) -> dict[str, Any]:
    """``NAME[:UID]`` as the ``user`` and ``uid`` options."""
    if value is None:
        return {"user": None, "uid": None}
    name, colon, uid = value.partition(":")
    if not _USER.fullmatch(name) or name == "root" or (colon and not uid.isdigit()) or (
            uid and not 0 < int(uid) < 2**31):
        raise ProjectError("--user %r is not NAME[:UID] with a lower-case user name other "
                           "than root and a UID from 1 upwards, e.g. --user app:10001." % value)
    return {"user": name, "uid": int(uid) if uid else None}
