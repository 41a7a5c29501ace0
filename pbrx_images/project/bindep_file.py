"""Where bindep is evaluated: a project's bindep file, for a target image.

bindep normally inspects the machine it runs on.  pbrx-images needs the
answer for the *image* being built, so the platform profiles are computed
from the image's ``/etc/os-release`` content instead
(:mod:`pbrx_images.project.bindep_platform`), and the rules are then
selected with bindep's own :meth:`bindep.depends.Depends.active_rules`.

Two package sets are derived (see :class:`DistroPackages`):

* runtime packages -- the rules active for the ``default`` profile, which is
  what ``bindep`` with no arguments installs;
* compile packages -- the rules active for the ``compile`` profile that are
  not already runtime packages; they are only installed in the builder image.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.metadata
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.errors import ProjectError
from pbrx_images.project.bindep_platform import depends_of, platform_profiles

if TYPE_CHECKING:  # bindep is imported when it is needed: it compiles a grammar on import
    from bindep.depends import Depends

BINDEP_FILENAMES = ("bindep.txt", "other-requirements.txt")

SYNTAX_URL = "https://docs.opendev.org/opendev/bindep"

# User profiles we act on, or that are common in OpenStack bindep files and
# therefore not worth a warning when we ignore them.
KNOWN_PROFILES = frozenset({
    "default", "compile", "test", "doc", "docs", "functional", "devstack",
    "pep8", "lint", "bindep",
})

_PARSE_ERROR_POSITION = re.compile(r"Parse error at line (\d+)")


def find_bindep_file(project_dir: Path) -> Path | None:
    """Return the project's bindep file, or None if it has none.

    ``bindep.txt`` is preferred over the legacy ``other-requirements.txt``.
    """
    for name in BINDEP_FILENAMES:
        candidate = project_dir / name
        if candidate.is_file():
            return candidate
    return None


def load_bindep(path: Path, facts: ImageFacts | None = None) -> Depends:
    """Parse the bindep file at *path* with the bindep library.

    bindep compiles its grammar for every file it parses (a quarter of a
    second, on every build).  With *facts*, the rules bindep parsed are kept
    there (kind ``bindep``) by the digest of the text and bindep's version,
    and a later load of the same text uses them.

    Raises :class:`ProjectError` if the file cannot be read or has a syntax
    error; the message names the file, the line number and the line.
    """
    text = _read_text(path)
    return _parse(path, text, _rules_key(text), facts)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ProjectError(
            f"{path.name} is not valid UTF-8 text (byte {error.start}); "
            f"save it as UTF-8."
        ) from error
    except OSError as error:
        reason = error.strerror or str(error)
        raise ProjectError(
            f"Cannot read {path}: {reason}; make the file readable."
        ) from error


def _parse(path: Path, text: str, key: str, facts: ImageFacts | None) -> Depends:
    from bindep.depends import Depends, DependsException

    rules = _rules_of(facts.get("bindep", key)) if facts is not None else None
    if rules is not None:
        return depends_of(rules, str(path))
    try:
        depends = Depends(text, str(path))
    except DependsException as error:
        raise ProjectError(_syntax_error_message(path.name, text, str(error))) from error
    kept = repr(getattr(depends, "_rules", None))
    if facts is not None and _rules_of(kept) == getattr(depends, "_rules", None):
        facts.put("bindep", key, kept)
    return depends


def _rules_key(text: str) -> str:
    return _digest("bindep", _version("bindep"), "parsley", _version("parsley"), text)


def _digest(*parts: str) -> str:
    """The sha256 of *parts*, each ended by a NUL: the key of what the facts keep."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _rules_of(kept: object) -> list | None:
    """The rules written as ``repr`` of what bindep parsed, or None if *kept* is not that.

    bindep's rules are (name, selector, versions) tuples, a selector a list
    of (sense, profile) tuples and lists of them (groups): the ``repr``
    keeps tuples and lists apart, as bindep's evaluation needs.
    """
    if not isinstance(kept, str):
        return None
    try:
        rules = ast.literal_eval(kept)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(rules, list) and all(
            isinstance(rule, tuple) and len(rule) == 3 and isinstance(rule[0], str)
            and isinstance(rule[1], list) and isinstance(rule[2], list) for rule in rules):
        return rules
    return None


def _syntax_error_message(filename: str, text: str, error_text: str) -> str:
    """Describe where *text* fails to parse, for a ProjectError."""
    # Only "\n" ends a line for bindep (and for an editor, once read_text has
    # translated CR and CRLF); str.splitlines would also split at form feeds,
    # U+2028 and the like, and so give wrong line numbers.
    lines = text.split("\n")
    line_number = _first_bad_line(lines)
    if line_number is None:
        # Fall back to the position bindep (parsley) reported.
        match = _PARSE_ERROR_POSITION.search(error_text)
        if match is None:
            return (f"{filename} could not be parsed by bindep; fix its syntax "
                    f"(syntax: {SYNTAX_URL}).")
        line_number = max(1, min(int(match.group(1)), len(lines)))
    line = lines[line_number - 1]
    return (f"{filename} line {line_number}: {_problem(line)}; "
            f"fix the line (syntax: {SYNTAX_URL}).")


def _first_bad_line(lines: Sequence[str]) -> int | None:
    """Return the 1-based number of the first line bindep rejects, if any.

    bindep's grammar is strictly line oriented (every rule, comment and blank
    ends at a newline), so a file parses exactly when each of its lines does.
    The position in bindep's own exception is not reliable (parsley reports
    the furthest point it tried, which can be a later or an earlier line), so
    the offending line is found by parsing each line on its own.
    """
    parser = _line_parser()
    for number, line in enumerate(lines, start=1):
        try:
            parser(line + "\n").rules()
        except Exception:  # parsley raises ParseError and others
            return number
    return None


@functools.lru_cache(maxsize=None)
def _line_parser():
    """bindep's grammar, compiled once (compiling takes a quarter second)."""
    import bindep.depends

    return bindep.depends.makeGrammar(bindep.depends.grammar, {})


def _problem(line: str) -> str:
    """Say in a few words what is wrong with a rejected bindep *line*."""
    stripped = line.strip()
    if line[:1].isspace() and stripped and not stripped.startswith("#"):
        return f"a package name must start the line, found {line!r}"
    first = stripped[:1]
    if first and not (first.isalnum() or first == "/"):
        return f"expected a package name, found {first!r} in {line!r}"
    name = stripped.split()[0] if stripped else ""
    if len(name) == 1:
        return f"package names need at least two characters, found {line!r}"
    if re.search(r"(<|>|==|!=|<=|>=) ", line):
        return (f"a version constraint must not contain spaces "
                f"(write 'name >=1.0'), found {line!r}")
    return f"bindep cannot parse {line!r}"


@dataclasses.dataclass(frozen=True)
class DistroPackages:
    """The distro packages a project needs on one target platform.

    ``platform`` holds the platform profiles of the image; ``runtime`` the
    packages of the ``default`` profile; ``compile`` the packages of the
    ``compile`` profile that are not runtime packages.  Names are in file
    order, without duplicates or version constraints.  ``selected_by`` maps
    each package to the selector of the rule that selected it, as written in
    the file (``"[compile platform:dpkg]"``), or ``""`` for a rule without
    one.
    """

    platform: tuple[str, ...]
    runtime: tuple[str, ...] = ()
    compile: tuple[str, ...] = ()
    selected_by: dict[str, str] = dataclasses.field(
        default_factory=dict, hash=False)

    @property
    def builder(self) -> tuple[str, ...]:
        """Packages for the builder image: runtime then compile packages."""
        return _unique(self.runtime + self.compile)


def evaluate(depends: Depends | None, os_release_text: str, *,
             debian_version_text: str | None = None) -> DistroPackages:
    """Select the packages of *depends* for the image described by the text.

    *depends* None (the project has no bindep file) gives no packages; the
    platform profiles are still computed, so an unusable os-release is
    reported either way.  *debian_version_text* is passed on to
    :func:`platform_profiles`.
    """
    profiles = platform_profiles(os_release_text,
                                 debian_version_text=debian_version_text)
    if depends is None:
        return DistroPackages(platform=tuple(profiles))

    selected_by: dict[str, str] = {}
    runtime = _select(depends, ["default"] + profiles, selected_by)
    compile_all = _select(depends, ["compile"] + profiles, selected_by)
    compile_only = tuple(name for name in compile_all if name not in runtime)
    return DistroPackages(
        platform=tuple(profiles),
        runtime=runtime,
        compile=compile_only,
        selected_by=selected_by,
    )


def _select(depends: Depends, profiles: list[str],
            selected_by: dict[str, str]) -> tuple[str, ...]:
    """Names of the rules active for *profiles*; records their selectors.

    A package already in *selected_by* keeps its first explanation.
    """
    names = []
    for name, selector, _versions in depends.active_rules(profiles):
        names.append(name)
        selected_by.setdefault(name, _selector_text(selector))
    return _unique(names)


def _selector_text(selector: list) -> str:
    """Render a parsed bindep selector back to its ``[...]`` form."""
    if not selector:
        return ""
    parts = []
    for group in selector:
        if isinstance(group, list):  # "(a !b)": all must match
            parts.append("(" + " ".join(_profile_text(p) for p in group) + ")")
        else:
            parts.append(_profile_text(group))
    return "[" + " ".join(parts) + "]"


def _profile_text(profile: tuple[bool, str]) -> str:
    sense, name = profile
    return name if sense else "!" + name


def unknown_profiles(depends: Depends) -> list[str]:
    """User profiles used in *depends* that pbrx-images does not expect.

    Profiles we act on (``default``, ``compile``) and those common in
    OpenStack bindep files are left out; the caller warns about the rest,
    since their packages are never installed.
    """
    # bindep's profiles() also lists platform profiles used inside
    # "(...)" groups, which are not user profiles.
    return [name for name in depends.profiles()
            if name not in KNOWN_PROFILES and not name.startswith("platform:")]


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    """*names* in order, without duplicates."""
    return tuple(dict.fromkeys(names))


#: Bump when what is kept of an evaluation, or how it is made, changes.
EVALUATION_RECIPE = "bindep-evaluation-1"


class BindepFile:
    """A project's bindep file (or none), and bindep's answers about it, kept.

    bindep compiles a grammar when it is imported (a sixth of a second, on
    every build).  With *facts*, what it answered for this text is kept
    there: the parsed rules (kind ``bindep``), the unknown profiles (kind
    ``bindep-profiles``) and the packages it selects for an image's
    os-release (kind ``bindep-packages``), each by a digest of the text and
    of bindep's version; a build of an unchanged file does not import
    bindep.  *path* None: the project has no bindep file.
    """

    def __init__(self, path: Path | None, facts: ImageFacts | None = None) -> None:
        self.path = path
        self.facts = facts
        self.text = _read_text(path) if path is not None else None
        self.key = _rules_key(self.text) if self.text is not None else _rules_key("")
        self._depends: Depends | None = None

    def depends(self) -> Depends | None:
        """The file as bindep parsed it (ProjectError if it cannot); None without a file."""
        if self.path is None or self.text is None:
            return None
        if self._depends is None:
            self._depends = _parse(self.path, self.text, self.key, self.facts)
        return self._depends

    def unknown_profiles(self) -> list[str]:
        """:func:`unknown_profiles` of the file (checking its syntax when not kept)."""
        if self.path is None:
            return []
        kept = self._get("bindep-profiles", self.key)
        if isinstance(kept, list) and all(isinstance(name, str) for name in kept):
            return kept
        depends = self.depends()
        unknown = unknown_profiles(depends) if depends is not None else []
        self._put("bindep-profiles", self.key, unknown)
        return unknown

    def evaluate(self, os_release_text: str) -> DistroPackages:
        """:func:`evaluate` of the file for an image with this os-release."""
        key = _digest(EVALUATION_RECIPE, "file" if self.path else "none", self.key,
                      os_release_text)
        kept = _packages_of(self._get("bindep-packages", key))
        if kept is not None:
            return kept
        packages = evaluate(self.depends(), os_release_text)
        self._put("bindep-packages", key, dataclasses.asdict(packages))
        return packages

    def _get(self, kind: str, key: str) -> Any:
        return self.facts.get(kind, key) if self.facts is not None else None

    def _put(self, kind: str, key: str, data: Any) -> None:
        if self.facts is not None:
            self.facts.put(kind, key, data)


def _packages_of(kept: object) -> DistroPackages | None:
    """The :class:`DistroPackages` kept as a dict, or None if *kept* is not that."""
    if not isinstance(kept, dict) or set(kept) != {"platform", "runtime", "compile",
                                                   "selected_by"}:
        return None
    names = [kept[field] for field in ("platform", "runtime", "compile")]
    selected_by = kept["selected_by"]
    if not all(isinstance(value, list) and all(isinstance(item, str) for item in value)
               for value in names) or not isinstance(selected_by, dict) or not all(
            isinstance(key, str) and isinstance(value, str)
            for key, value in selected_by.items()):
        return None
    return DistroPackages(tuple(names[0]), tuple(names[1]), tuple(names[2]), dict(selected_by))
