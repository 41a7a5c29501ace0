"""Property-based tests: user input is accepted, or refused with a BuildError.

Everything pbrx-images reads from a user's project or machine (bindep.txt,
setup.cfg, pyproject.toml, the project's wheel, pip's configuration and
report, an image's os-release, the tag and prefix options) must either be
accepted or be refused with :class:`pbrx_images.errors.BuildError` carrying a
one-line message; never with another exception.  These tests feed the
readers random text and text generated from rough grammars of the real
formats, with random mistakes mixed in.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import bindep.depends
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pbrx_images.errors import BuildError, ProjectError
from pbrx_images.plan import Plan, check_prefix, check_tag, make_plan
from pbrx_images.plan.lock import Lock, lock_from_report
from pbrx_images.plan.os_release import parse_os_release
from pbrx_images.project.bindep_file import (KNOWN_PROFILES, DistroPackages, evaluate, load_bindep,
                                             unknown_profiles)
from pbrx_images.project.metadata import ProjectMetadata, read_project
from pbrx_images.project.pip_config import ContainerPipConfig, HostPipConfig, read_host_pip_config
from pbrx_images.project.wheel_metadata import read_wheel
from tests.unit.os_releases import ALPINE_3_19, DEBIAN_BOOKWORM, FEDORA_39, UBUNTU_JAMMY

# PBRX_IMAGES_FUZZ_EXAMPLES=5000 searches harder than the default run does.
FUZZ = settings(
    max_examples=int(os.environ.get("PBRX_IMAGES_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

# Characters that make trouble: brackets and markers of the formats, control
# characters (NUL, vertical tab, form feed, the separators str.splitlines
# breaks on), a byte order mark, combining and astral characters.
JUNK = st.sampled_from(list(
    "[](){}!#=:;,.'\"\\/ \t\x00\x01\x0b\x0c\x1c\x7f\x85\u00a0\u00e9\u2028\u202e\ufeff"
    "\u0301\U0001f600"
)) | st.characters(blacklist_categories=("Cs",))

# Text on one line, as str.splitlines sees it.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
line_text = st.text(st.characters(blacklist_categories=("Cs",),
                                  blacklist_characters=LINE_BREAKS), max_size=30)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory for one example (pytest's tmp_path is per test)."""
    with tempfile.TemporaryDirectory(prefix="pbrx-images-fuzz-") as directory:
        yield Path(directory)


def assert_one_sentence(error: BaseException, *names: str) -> None:
    """The message of *error* is one non-empty line mentioning *names*."""
    message = str(error)
    assert message.strip(), "the error has no message"
    assert len(message.splitlines()) == 1, f"the message spans lines: {message!r}"
    for name in names:
        assert name in message, f"{name!r} is not mentioned in {message!r}"


@st.composite
def mutated(draw: st.DrawFn, text: str, max_edits: int = 3) -> str:
    """*text* with a few characters inserted, deleted or replaced."""
    for _ in range(draw(st.integers(0, max_edits))):
        position = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        if kind == "insert":
            text = text[:position] + draw(JUNK) + text[position:]
        elif kind == "delete":
            text = text[:position] + text[position + 1:]
        else:
            text = text[:position] + draw(JUNK) + text[position + 1:]
    return text


def with_mistakes(strategy: st.SearchStrategy[str], max_edits: int = 3):
    """Mostly *strategy*'s text as it is, sometimes with random edits."""
    return st.one_of(strategy, strategy.flatmap(lambda text: mutated(text, max_edits)))


@st.composite
def join_lines(draw: st.DrawFn, lines: list[str]) -> str:
    """*lines* joined with LF, CRLF or CR, with or without a final line end."""
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    end = newline if draw(st.booleans()) else ""
    return newline.join(lines) + (end if lines else "")


def joined_lines(lines: st.SearchStrategy[str], max_lines: int = 8):
    """Files of up to *max_lines* lines of *lines*."""
    return st.lists(lines, max_size=max_lines).flatmap(join_lines)


def encoded(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """UTF-8 bytes of *texts*, sometimes with a stray non-UTF-8 byte or in Latin-1."""
    def spoil(draw: st.DrawFn, text: str) -> bytes:
        data = text.encode("utf-8")
        how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "byte", "latin-1", "bom"]))
        if how == "byte":
            position = draw(st.integers(0, len(data)))
            return data[:position] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + \
                data[position:]
        if how == "latin-1":
            return text.encode("latin-1", "replace")
        if how == "bom":
            return b"\xef\xbb\xbf" + data
        return data

    @st.composite
    def strategy(draw: st.DrawFn) -> bytes:
        return spoil(draw, draw(texts))

    return strategy()


# --------------------------------------------------------------------------
# bindep.txt


@pytest.fixture(scope="module", autouse=True)
def compile_bindep_grammar_once() -> Iterator[None]:
    """Let every Depends() of this module share one compiled bindep grammar.

    ``Depends()`` compiles its parsley grammar on every call (a third of a
    second), which would make a few hundred examples take minutes; the
    compiled grammar is stateless, so sharing it changes nothing else.
    """
    compile_grammar = bindep.depends.makeGrammar
    compiled: dict[str, Any] = {}

    def make_grammar(source, bindings, *args, **kwargs):
        if bindings or args or kwargs:
            return compile_grammar(source, bindings, *args, **kwargs)
        if source not in compiled:
            compiled[source] = compile_grammar(source, bindings)
        return compiled[source]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bindep.depends, "makeGrammar", make_grammar)
        yield


good_package_names = st.one_of(
    st.from_regex(r"[a-z0-9/][a-z0-9.+_/-]{1,15}", fullmatch=True),
    st.sampled_from(["gcc", "libffi-dev", "python3-devel", "libpq5", "/usr/bin/env", "g++"]),
)
package_names = good_package_names | st.sampled_from(
    ["a", "-dash", "_under", "Upper", "näme", "ﬁle", "x\x00y"])

good_profile_names = st.one_of(
    st.sampled_from(sorted(KNOWN_PROFILES)),
    st.sampled_from(["platform:dpkg", "platform:rpm", "platform:apk", "platform:debian",
                     "platform:ubuntu-jammy", "platform:fedora", "platform:alpine",
                     "platform:debian-12", "platform:redhat", "platform:", "py27", "x.y"]),
    st.from_regex(r"[a-z0-9:.-]{1,12}", fullmatch=True),
)
profile_names = good_profile_names | st.sampled_from(
    ["Upper", "under_score", "sp ace", "platform:déb", "", "!"])


def profiles(sloppy: bool) -> st.SearchStrategy[str]:
    return st.builds(lambda negated, name: ("!" if negated else "") + name,
                     st.booleans(), profile_names if sloppy else good_profile_names)


def groups(sloppy: bool) -> st.SearchStrategy[str]:
    return profiles(sloppy) | st.lists(profiles(sloppy), max_size=3).map(
        lambda items: "(" + " ".join(items) + ")")


@st.composite
def selectors(draw: st.DrawFn, sloppy: bool) -> str:
    items = draw(st.lists(groups(sloppy), max_size=4))
    if sloppy:
        separator = draw(st.sampled_from([" ", "  ", ""]))
        opening = draw(st.sampled_from([" [", " [ ", "[", "  [", " [[", " ("]))
        closing = draw(st.sampled_from(["]", " ]", "", "]]", ")"]))
    else:
        separator = draw(st.sampled_from([" ", "  "]))
        opening = draw(st.sampled_from([" [", " [ ", "  ["]))
        closing = draw(st.sampled_from(["]", " ]"]))
    return opening + separator.join(items) + closing


@st.composite
def version_constraints(draw: st.DrawFn, sloppy: bool) -> str:
    operators = ["<", "<=", "==", "!=", ">=", ">"]
    versions = st.from_regex(r"[0-9][0-9a-z.+~]{0,6}", fullmatch=True)
    if sloppy:
        operators += ["=", "~=", ">= ", "=>"]
        versions = versions | line_text
    items = draw(st.lists(st.builds(lambda op, version: op + version,
                                    st.sampled_from(operators), versions),
                          min_size=1, max_size=3))
    return " " + ",".join(items)


def comments(sloppy: bool = True) -> st.SearchStrategy[str]:
    spaces = ["", " ", "  "] + (["\t"] if sloppy else [])
    return st.builds(lambda space, text: space + "#" + text, st.sampled_from(spaces), line_text)


@st.composite
def rules(draw: st.DrawFn, sloppy: bool) -> str:
    line = draw(package_names if sloppy else good_package_names)
    if draw(st.booleans()):
        line += draw(selectors(sloppy))
    if draw(st.booleans()):
        line += draw(version_constraints(sloppy))
    if draw(st.booleans()):
        line += draw(comments(sloppy).map(lambda comment: " " + comment))
    return line


def bindep_lines(sloppy: bool) -> st.SearchStrategy[str]:
    if not sloppy:
        return rules(False) | comments(False) | st.sampled_from(["", " ", "  # comment"])
    return st.one_of(with_mistakes(rules(True)), comments(True),
                     st.sampled_from(["", "\t", " x", "  # indented comment"]), line_text)


bindep_texts = st.one_of(
    joined_lines(bindep_lines(sloppy=False), max_lines=10),
    joined_lines(bindep_lines(sloppy=False) | bindep_lines(sloppy=True), max_lines=10),
    st.text(),
)

RELEASES = [DEBIAN_BOOKWORM, UBUNTU_JAMMY, ALPINE_3_19, FEDORA_39]


def editor_lines(text: str) -> list[str]:
    """The lines of *text* as an editor shows them (ended by LF, CRLF or CR)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@FUZZ
@given(text=bindep_texts, release=st.sampled_from(RELEASES))
@example(text="gcc\x0c[compile]\nlibffi-dev\n", release=DEBIAN_BOOKWORM)
@example(text="gcc [compile\n", release=DEBIAN_BOOKWORM)
@example(text="gcc\u2028[ x\n", release=DEBIAN_BOOKWORM)
@example(text="g" * 5000 + " [" + "(" * 2000, release=DEBIAN_BOOKWORM)
@example(text="\x00\n", release=DEBIAN_BOOKWORM)
def test_bindep_text_is_loaded_or_refused(text: str, release: str) -> None:
    with scratch() as directory:
        path = directory / "bindep.txt"
        path.write_bytes(text.encode("utf-8"))
        try:
            depends = load_bindep(path)
        except ProjectError as error:
            assert_one_sentence(error, "bindep.txt")
            match = re.search(r"bindep.txt line (\d+)", str(error))
            if match:  # the line named is the line of the file quoted
                lines = editor_lines(text)
                number = int(match.group(1))
                assert 1 <= number <= len(lines), str(error)
                assert repr(lines[number - 1]) in str(error)
            return
    check_depends(depends, release)


@FUZZ
@given(data=st.binary() | encoded(bindep_texts))
def test_bindep_bytes_are_loaded_or_refused(data: bytes) -> None:
    with scratch() as directory:
        path = directory / "bindep.txt"
        path.write_bytes(data)
        try:
            depends = load_bindep(path)
        except ProjectError as error:
            assert_one_sentence(error, "bindep.txt")
            return
    check_depends(depends, DEBIAN_BOOKWORM)


def check_depends(depends: bindep.depends.Depends, release: str) -> None:
    unknown = unknown_profiles(depends)
    assert all(isinstance(name, str) for name in unknown)
    assert not set(unknown) & KNOWN_PROFILES
    packages = evaluate(depends, release)
    assert isinstance(packages, DistroPackages)
    assert packages.platform
    assert not set(packages.runtime) & set(packages.compile)
    names = {rule[0] for rule in depends._rules}
    assert set(packages.builder) <= names
    assert set(packages.selected_by) == set(packages.builder)


# --------------------------------------------------------------------------
# os-release

OS_RELEASE_KEYS = ["ID", "ID_LIKE", "VERSION_ID", "VERSION_CODENAME", "VERSION", "NAME",
                   "PRETTY_NAME", "UBUNTU_CODENAME", "id", "ID ", " ID"]
DISTRO_IDS = ["debian", "ubuntu", "pop", "fedora", "rhel", "centos", "rocky", "almalinux",
              "alpine", "opensuse-leap", "opensuse-tumbleweed", "sles", "arch", "manjaro",
              "gentoo", "amzn", "ol", "redhatenterpriseserver",
              "redhatenterpriseworkstation", "suselinux", "", "Debian GNU/Linux", "none"]
OS_RELEASE_VALUES = st.one_of(
    st.sampled_from(DISTRO_IDS),
    st.sampled_from(["12", "22.04", "3.19.1", "39", "7", "8.9", "", "rolling", "1..2",
                     "bookworm", "jammy", "Red Hat Enterprise Linux Server",
                     "Workstation", "10 (buster)", "$(id)", "a b"]),
    line_text,
)


@st.composite
def os_release_lines(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(OS_RELEASE_KEYS) | st.from_regex(r"[A-Z_]{1,8}", fullmatch=True))
    value = draw(OS_RELEASE_VALUES)
    quote = draw(st.sampled_from(["", '"', "'", '"', "unbalanced"]))
    if quote == "unbalanced":
        return f'{key}="{value}'
    return f"{key}={quote}{value}{quote}"


@st.composite
def os_release_files(draw: st.DrawFn) -> str:
    lines = draw(st.lists(with_mistakes(os_release_lines(), 2) | comments() | st.just(""),
                          max_size=7))
    if draw(st.integers(0, 3)):  # usually with an ID
        distro_id = draw(st.sampled_from(DISTRO_IDS) | line_text)
        quote = draw(st.sampled_from(["", '"', "'"]))
        lines.insert(draw(st.integers(0, len(lines))), f"ID={quote}{distro_id}{quote}")
    return draw(join_lines(lines))


os_release_texts = os_release_files() | st.text()


def sample_depends() -> bindep.depends.Depends:
    return bindep.depends.Depends(
        "gcc [compile]\nlibpq5 [platform:dpkg]\npostgresql-libs [platform:rpm]\n"
        "libffi-dev [compile platform:dpkg platform:apk]\nlibxml2 [!platform:alpine]\n"
        "tzdata\nfoo [(compile platform:ubuntu)]\nbar [platform:rhel-8]\n"
    )


@FUZZ
@given(text=os_release_texts, with_bindep=st.booleans())
@example(text='ID=ubuntu\nVERSION_ID="rolling"\n', with_bindep=True)
@example(text='ID=rhel\nNAME="Red Hat Enterprise Linux Server"\n', with_bindep=True)
@example(text='ID="unterminated\n', with_bindep=True)
@example(text="ID=debian\nVERSION_ID='1\n2'\n", with_bindep=True)
def test_evaluate_on_any_os_release(text: str, with_bindep: bool) -> None:
    depends = sample_depends() if with_bindep else None
    try:
        packages = evaluate(depends, text)
    except BuildError as error:
        assert_one_sentence(error, "os-release")
        return
    assert isinstance(packages, DistroPackages)
    assert packages.platform
    assert all(isinstance(p, str) and p.startswith("platform:") for p in packages.platform)


@FUZZ
@given(text=os_release_texts)
def test_parse_os_release_never_fails(text: str) -> None:
    result = parse_os_release(text)
    assert isinstance(result, dict)
    for key, value in result.items():
        assert isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)
        assert isinstance(value, str)


def shell_quoted(value: str) -> str:
    return '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'


@FUZZ
@given(values=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True),
                              line_text, max_size=6))
def test_parse_os_release_reads_quoted_values_back(values: dict[str, str]) -> None:
    text = "".join(f"{key}={shell_quoted(value)}\n" for key, value in values.items())
    assert parse_os_release(text) == values


# --------------------------------------------------------------------------
# setup.cfg and pyproject.toml

SECTIONS = ["metadata", "entry_points", "extras", "options", "options.entry_points",
            "options.extras_require", "files", "Metadata", "DEFAULT", "global"]
SECTION_KEYS = {
    "metadata": ["name", "version", "Name", "VERSION", "summary"],
    "Metadata": ["name"],
    "entry_points": ["console_scripts", "gui_scripts", "Console_Scripts"],
    "options.entry_points": ["console_scripts", "gui_scripts"],
    "options": ["entry_points", "packages"],
}
script_names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True),
    st.sampled_from(["foo", "foo-api", "Foo_API", "foo.api", "---", "", "ü", "a b"]),
    line_text,
)
ini_values = st.one_of(
    st.sampled_from(["foo", "1.0", "attr: foo.__version__", "file: VERSION", "", " x ",
                     "%(here)s", "%", "$HOME"]),
    line_text,
)


@st.composite
def console_script_values(draw: st.DrawFn) -> str:
    entries = draw(st.lists(
        st.one_of(
            st.builds(lambda name, target: f"{name} = {target}", script_names,
                      st.sampled_from(["foo.cli:main", "", "x", "a:b:c"])),
            line_text, comments(), st.just(""),
        ),
        max_size=4,
    ))
    indent = draw(st.sampled_from(["    ", "\t", " "]))
    return "".join("\n" + indent + entry for entry in entries)


@st.composite
def ini_sections(draw: st.DrawFn) -> str:
    section = draw(st.sampled_from(SECTIONS) | line_text)
    keys = SECTION_KEYS.get(section, [])
    lines = [f"[{section}]"]
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(keys) | script_names) if keys else draw(script_names)
        if key.lower() == "console_scripts" or draw(st.integers(0, 4)) == 0:
            value = draw(console_script_values())
        else:
            value = " " + draw(ini_values)
        separator = draw(st.sampled_from(["=", "=", ":", " =", ""]))
        lines.append(f"{key}{separator}{value}")
    return "\n".join(lines)


setup_cfg_texts = st.one_of(
    st.lists(with_mistakes(ini_sections(), 2) | comments() | line_text, max_size=5).map(
        "\n".join),
    st.text(),
)


def toml_string(value: str) -> str:
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7f:
            escaped.append("\\u%04x" % ord(char))
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(key)} = {toml_value(item)}"
                           for key, item in value.items()) + "}"


toml_scalars = st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
DYNAMIC = ["name", "version", "scripts", "optional-dependencies", "dependencies", "readme"]
project_tables = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["foo", "Foo_Bar", "", " ", "---", "fôo"]) | script_names
    | toml_values,
    "version": st.sampled_from(["1.0", "", "0.1.dev0"]) | toml_values,
    "scripts": st.dictionaries(script_names, st.just("foo.cli:main") | toml_values,
                               max_size=4) | toml_values,
    "optional-dependencies": st.dictionaries(
        script_names, st.lists(st.text(max_size=8), max_size=2) | toml_values, max_size=3,
    ) | toml_values,
    "dynamic": st.lists(st.sampled_from(DYNAMIC) | st.text(max_size=8), max_size=4)
    | toml_values,
    "description": toml_values,
})


@st.composite
def pyproject_texts(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["table", "table", "subtables", "inline", "value", "none"]))
    head = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    if style == "none":
        return head
    if style == "value":
        return head + f"project = {toml_value(draw(toml_values))}\n"
    project = draw(project_tables)
    if style == "inline":
        return f"project = {toml_value(project)}\n" + head
    subtables = {}
    if style == "subtables":
        subtables = {key: project.pop(key) for key in ("scripts", "optional-dependencies")
                     if isinstance(project.get(key), dict)}
    text = head + "[project]\n" + "".join(
        f"{toml_string(key)} = {toml_value(value)}\n" for key, value in project.items())
    for key, table in subtables.items():
        text += f"[project.{key}]\n" + "".join(
            f"{toml_string(name)} = {toml_value(value)}\n" for name, value in table.items())
    return text


pyproject_toml_texts = st.one_of(with_mistakes(pyproject_texts(), 2), st.text())


def check_metadata(result: ProjectMetadata) -> None:
    assert isinstance(result, ProjectMetadata)
    for value in (result.name, result.version):
        assert value is None or isinstance(value, str)
    for names in (result.console_scripts, result.extras):
        assert names is None or (isinstance(names, tuple)
                                 and all(isinstance(name, str) for name in names))


# The grammar of an image reference in the distribution project
# (github.com/distribution/reference/regexp.go), which the engine enforces.
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = _ALNUM + r"(?:(?:[._]|__|-+)" + _ALNUM + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (r"(?:" + _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
           r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
REFERENCE = re.compile(r"(?:" + _DOMAIN + r"/)?" + _PATH_COMPONENT
                       + r"(?:/" + _PATH_COMPONENT + r")*(?::" + _TAG + r")?")


def check_plan(result: ProjectMetadata) -> None:
    """make_plan on metadata read from a project gives a Plan or a BuildError."""
    if result.name is None:
        result = dataclasses.replace(result, name="example-project")
    try:
        planned = make_plan(result, DistroPackages(platform=()), "base:img")
    except BuildError as error:
        assert_one_sentence(error)
        return
    assert isinstance(planned, Plan)
    names = [image.name for image in planned.images]
    assert len(set(names)) == len(names)
    for name in names:
        assert REFERENCE.fullmatch(name), name


@FUZZ
@given(setup_cfg=st.none() | encoded(setup_cfg_texts),
       pyproject=st.none() | encoded(pyproject_toml_texts),
       setup_py=st.booleans())
@example(setup_cfg=None, pyproject=b"a = " + b"[" * 5000, setup_py=False)
@example(setup_cfg=None, pyproject=b"a = " + b"{b = " * 5000, setup_py=False)
@example(setup_cfg=b"[metadata]\nname = foo\n[metadata\x0c]\n[metadata\x0c]\n",
         pyproject=None, setup_py=False)
@example(setup_cfg=b"[metadata]\nname = foo\x0cbar\n\x0c junk\n", pyproject=None,
         setup_py=False)
@example(setup_cfg=None, pyproject=b'[project]\nname = "\xc3\xa9"\n', setup_py=False)
@example(setup_cfg=b"[entry_points]\nconsole_scripts =\n  a\x85b = x:y\n  ab = x:y\n",
         pyproject=None, setup_py=False)
def test_project_metadata_is_read_or_refused(setup_cfg: bytes | None, pyproject: bytes | None,
                                             setup_py: bool) -> None:
    with scratch() as directory:
        if setup_cfg is not None:
            (directory / "setup.cfg").write_bytes(setup_cfg)
        if pyproject is not None:
            (directory / "pyproject.toml").write_bytes(pyproject)
        if setup_py:
            (directory / "setup.py").write_text("import setuptools\nsetuptools.setup()\n")
        try:
            result = read_project(directory)
        except ProjectError as error:
            assert_one_sentence(error, str(directory))
            return
    check_metadata(result)
    check_plan(result)


# --------------------------------------------------------------------------
# Wheels

dist_info_names = st.sampled_from(["foo-1.0.dist-info", "Foo-1.0.dist-info",
                                   "bar-2.0.dist-info", "foo-1.0.data", "x\ny.dist-info"])
metadata_texts = st.one_of(
    st.lists(st.one_of(
        st.builds(lambda key, value: f"{key}: {value}",
                  st.sampled_from(["Name", "Version", "Provides-Extra", "Metadata-Version",
                                   "Summary", "name"]),
                  st.sampled_from(["foo", "1.0", "api", "", "=?utf-8?q?f=C3=B6o?="])
                  | line_text),
        line_text,
    ), max_size=6).map(lambda lines: "\n".join(lines) + "\n"),
    st.text(),
)
entry_points_texts = st.one_of(
    st.lists(st.one_of(
        st.sampled_from(["[console_scripts]", "[gui_scripts]", "[console_scripts]"]),
        st.builds(lambda name: f"{name} = foo.cli:main", script_names),
        line_text,
    ), max_size=6).map(lambda lines: "\n".join(lines) + "\n"),
    st.text(),
)


@st.composite
def wheel_files(draw: st.DrawFn) -> bytes:
    """A zip archive shaped like a wheel, perhaps with a few bytes spoiled."""
    buffer = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                        zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for dist_info in draw(st.lists(dist_info_names, min_size=1, max_size=2, unique=True)):
            archive.writestr(f"{dist_info}/METADATA", draw(encoded(metadata_texts)))
            if draw(st.booleans()):
                archive.writestr(f"{dist_info}/entry_points.txt",
                                 draw(encoded(entry_points_texts)))
        other_names = st.text(min_size=1, max_size=20).filter(
            lambda name: name.strip("/") and "\x00" not in name)
        for name in draw(st.lists(other_names, max_size=2)):
            archive.writestr(name, draw(st.binary(max_size=20)))
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.sampled_from([0, 0, 1, 3]))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.integers(0, 5)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # wheel_files may repeat a name
@FUZZ
@given(data=st.binary() | wheel_files(),
       name=st.sampled_from(["foo-1.0-py3-none-any.whl", "Foo-1.0-py3-none-any.whl", "x.whl"]))
def test_wheel_metadata_is_read_or_refused(data: bytes, name: str) -> None:
    path = Path("/run/wheels") / name
    try:
        result = read_wheel(path, data)
    except BuildError as error:
        assert_one_sentence(error, name)
        return
    check_metadata(result)
    assert result.console_scripts is not None and result.extras is not None
    check_plan(result)


def test_wheel_that_is_a_directory_is_refused() -> None:
    with scratch() as directory:
        with pytest.raises(BuildError) as caught:
            read_wheel(directory)
    assert_one_sentence(caught.value, str(directory))


# --------------------------------------------------------------------------
# pip configuration

PIP_OPTIONS = ["index-url", "extra-index-url", "find-links", "cert", "client-cert",
               "constraint", "build-constraint", "requirement", "proxy", "trusted-host",
               "timeout", "target", "user", "cache-dir", "no-index", "Index_URL",
               "--index-url"]
PIP_VALUES = st.one_of(
    st.sampled_from([
        "https://pypi.example.org/simple", "https://user:secret@pypi.example.org/simple",
        "http://token@proxy.example.org:3128", "http://127.0.0.1:3128", "localhost:8080",
        "file:///opt/wheels", "file://otherhost/x", "file://[::1/x", "http://[::1",
        "https://[bad/", "http://ex\uff0fample.com/", "http://ex\u2100ample.com/",
        "/opt/wheels", "~/certs/ca.pem", "ca.pem", ".", "", "a\x00b", "/",
        "https://a@b@c/", "http://:@host/", "x" * 300, "180", "true",
    ]),
    line_text,
)


@st.composite
def pip_conf_texts(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(["global", "install", "wheel", "download", "DEFAULT"])
                       if draw(st.integers(0, 4)) else line_text)
        lines.append(f"[{section}]")
        for _ in range(draw(st.integers(0, 4))):
            key = draw(st.sampled_from(PIP_OPTIONS) if draw(st.integers(0, 4)) else script_names)
            values = draw(st.lists(PIP_VALUES, min_size=1, max_size=3))
            if len(values) > 1 and draw(st.booleans()):
                value = "".join("\n    " + value for value in values)
            else:
                value = " " + " ".join(values)
            lines.append(f"{key} ={value}")
    return "\n".join(lines) + "\n"


environment_names = st.one_of(
    st.sampled_from(["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT",
                     "PIP_CLIENT_CERT", "PIP_CONSTRAINT", "PIP_PROXY", "PIP_TARGET",
                     "PIP_DEFAULT_TIMEOUT", "PIP_", "PIP_--CERT", "http_proxy",
                     "HTTPS_PROXY", "no_proxy", "ALL_PROXY", "PATH"]),
    st.from_regex(r"PIP_[A-Z_]{0,12}", fullmatch=True),
)
environment_values = PIP_VALUES.filter(lambda value: "\x00" not in value) | st.sampled_from(
    ["http://127.0.0.1:3128\n", "localhost:3128\x1b[2J", "/tmp/ca\n.pem", "a\u2028b"])


@FUZZ
@given(conf=with_mistakes(pip_conf_texts(), 2) | st.text(),
       where=st.sampled_from(["etc", "xdg", "home", "config", "PIP_CONFIG_FILE"]),
       environ=st.dictionaries(environment_names, environment_values, max_size=5),
       config_file=st.none() | st.sampled_from([os.devnull, "", "a\x00b", "x" * 300])
       | line_text,
       cert=st.none() | st.binary(max_size=30))
def test_pip_configuration_is_read_or_refused(conf: str, where: str, environ: dict[str, str],
                                              config_file: str | None,
                                              cert: bytes | None) -> None:
    with scratch() as directory:
        home, root = directory / "home", directory / "root"
        home.mkdir()
        root.mkdir()
        if cert is not None:  # the file a relative "ca.pem" names
            (home / "ca.pem").write_bytes(cert)
        conf_path = {
            "etc": root / "etc" / "pip.conf",
            "xdg": root / "etc" / "xdg" / "pip" / "pip.conf",
            "home": home / ".pip" / "pip.conf",
            "config": home / ".config" / "pip" / "pip.conf",
            "PIP_CONFIG_FILE": directory / "custom.conf",
        }[where]
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        conf_path.write_text(conf, encoding="utf-8")
        environ = dict(environ)
        if where == "PIP_CONFIG_FILE":
            environ["PIP_CONFIG_FILE"] = str(conf_path)
        elif config_file is not None and "\x00" not in config_file:
            environ["PIP_CONFIG_FILE"] = config_file
        elif config_file is not None:
            environ.pop("PIP_CONFIG_FILE", None)
        old_directory = os.getcwd()
        os.chdir(home)  # relative file names are read from here, not the checkout
        try:
            try:
                host = read_host_pip_config(environ, home, root)
            except BuildError as error:
                assert_one_sentence(error, "pip configuration file")
                return
            assert isinstance(host, HostPipConfig)
            try:
                container = host.for_container()
            except BuildError as error:
                assert_one_sentence(error)
                return
        finally:
            os.chdir(old_directory)
    check_container_config(container, host)


def check_container_config(container: ContainerPipConfig, host: HostPipConfig) -> None:
    assert isinstance(container, ContainerPipConfig)
    assert all(isinstance(path, str) and path.startswith("/") for path in container.files)
    assert all(isinstance(content, bytes) for content in container.files.values())
    assert all(isinstance(key, str) and isinstance(value, str)
               for key, value in container.environment.items())
    for note in container.notes:
        assert_one_sentence(Exception(note))
    assert all(isinstance(secret, str) for secret in container.secret_values())
    config_path = container.environment.get("PIP_CONFIG_FILE")
    if config_path is not None and config_path in container.files:
        # The merged file is one pip can read.
        parser = configparser.RawConfigParser()
        parser.read_string(container.files[config_path].decode("utf-8"))
        assert set(parser.sections()) <= set(host.sections)


# --------------------------------------------------------------------------
# pip's installation report

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly *strategy*, sometimes anything JSON can hold."""
    return st.one_of(strategy, strategy, strategy, json_values)


distribution_names = st.sampled_from(["six", "My_Project", "my-project", "requests", ""]) \
    | st.text(max_size=10)
report_items = st.fixed_dictionaries(
    {"metadata": maybe(st.fixed_dictionaries({}, optional={
        "name": maybe(distribution_names),
        "version": maybe(st.sampled_from(["1.0", "2.0.0rc1", ""]) | st.text(max_size=8)),
    }))},
    optional={
        "is_direct": maybe(st.booleans()),
        "download_info": maybe(st.fixed_dictionaries({}, optional={
            "url": maybe(st.sampled_from(["https://github.com/pypa/sampleproject",
                                          "file:///tmp/x.whl", ""]) | st.text(max_size=8)),
            "vcs_info": maybe(st.fixed_dictionaries({}, optional={
                "vcs": maybe(st.sampled_from(["git", "hg"])),
                "commit_id": maybe(st.text(max_size=8)),
            })),
            "subdirectory": maybe(st.text(max_size=8)),
        })),
    },
)
reports = st.one_of(
    json_values,
    st.fixed_dictionaries({"version": st.just("1"), "install": maybe(st.lists(
        maybe(report_items), max_size=4))}),
)


@FUZZ
@given(report=reports, project=distribution_names)
def test_lock_from_any_report(report: Any, project: str) -> None:
    try:
        result = lock_from_report(report, project)
    except BuildError as error:
        assert_one_sentence(error, "report")
        return
    assert isinstance(result, Lock)
    assert all(isinstance(line, str) for line in result.requirements)
    assert len(result.text().splitlines()) == len(result.requirements)


# --------------------------------------------------------------------------
# --tag and --prefix

@FUZZ
@given(tag=st.text() | st.from_regex(r"[A-Za-z0-9_.-]{0,130}", fullmatch=True))
@example(tag="latest\n")
@example(tag="a" * 129)
def test_check_tag(tag: str) -> None:
    try:
        result = check_tag(tag)
    except BuildError as error:
        assert_one_sentence(error)
        return
    assert result == tag
    assert REFERENCE.fullmatch("name:" + tag)


@FUZZ
@given(prefix=st.text() | st.from_regex(r"[a-z0-9._:/-]{0,40}", fullmatch=True)
       | st.from_regex(r"[a-z0-9]{1,5}([._-]{1,2}[a-z0-9]{1,5}){0,3}(:[0-9]{1,5})?"
                       r"(/[a-z0-9]{1,5}([._-]{1,3}[a-z0-9]{1,5}){0,2}){0,2}/?",
                       fullmatch=True))
@example(prefix="registry.example.com:5000/team/")
@example(prefix="a" * 5000 + "!")
@example(prefix="a" + "-a" * 3000 + "_")
@example(prefix="team/a..b")
@example(prefix="my_registry.example.com:5000/team")
def test_check_prefix(prefix: str) -> None:
    try:
        result = check_prefix(prefix)
    except BuildError as error:
        assert_one_sentence(error)
        return
    if result is None:
        assert not prefix
        return
    assert prefix.rstrip("/") == result
    assert REFERENCE.fullmatch(result + "/name:latest"), result
