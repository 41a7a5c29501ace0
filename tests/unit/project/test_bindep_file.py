from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bindep.depends
import pytest
from bindep.depends import Depends

from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.errors import BuildError, ProjectError
from pbrx_images.project import bindep_file, bindep_platform
from pbrx_images.project.bindep_file import (BINDEP_FILENAMES, BindepFile, DistroPackages,
                                             evaluate, find_bindep_file, load_bindep,
                                             platform_profiles, unknown_profiles)
from tests.unit.os_releases import (ALPINE_3_19, DEBIAN_BOOKWORM, DEBIAN_TRIXIE, FEDORA_39,
                                    UBUNTU_JAMMY)

BINDEP_TXT = """\
# This is a cross-platform list tracking distribution packages needed for
# install and tests; see https://docs.opendev.org/opendev/bindep for details.

gcc [compile]
libpq-dev [compile platform:dpkg]
libpq5 [platform:dpkg]
postgresql-devel [compile platform:rpm]
postgresql-libs [platform:rpm]
postgresql-dev [compile platform:apk]
libpq [platform:apk]
libre2-9 [platform:debian-bookworm]
libre2-11 [platform:debian-trixie]
libffi-dev [compile platform:dpkg platform:apk]
libffi-devel [compile platform:rpm]
libxml2 [!platform:alpine]
tzdata
python3-dev [compile platform:dpkg] >=3.9
libssl-dev [compile !platform:rpm !platform:apk]
libjpeg-turbo8-dev [(compile platform:ubuntu)]
libpq5 [platform:ubuntu]
gcc [platform:rpm]
mysql-client [test platform:dpkg]
graphviz [doc]
"""


@pytest.fixture(scope="module")
def depends() -> Depends:
    return Depends(BINDEP_TXT)


def test_os_release_without_id_is_an_error_even_without_bindep_file():
    with pytest.raises(BuildError):
        evaluate(None, "NAME=nothing\n")


# --- evaluate ---------------------------------------------------------------

def test_evaluate_bookworm(depends):
    packages = evaluate(depends, DEBIAN_BOOKWORM)
    assert packages.runtime == ("libpq5", "libre2-9", "libxml2", "tzdata")
    assert packages.compile == (
        "gcc", "libpq-dev", "libffi-dev", "python3-dev", "libssl-dev")
    assert "platform:debian-bookworm" in packages.platform


def test_evaluate_trixie(depends):
    packages = evaluate(depends, DEBIAN_TRIXIE)
    assert packages.runtime == ("libpq5", "libre2-11", "libxml2", "tzdata")
    assert "libre2-9" not in packages.builder


def test_evaluate_ubuntu_jammy(depends):
    packages = evaluate(depends, UBUNTU_JAMMY)
    assert packages.runtime == ("libpq5", "libxml2", "tzdata")
    assert packages.compile == (
        "gcc", "libpq-dev", "libffi-dev", "python3-dev", "libssl-dev",
        "libjpeg-turbo8-dev")


def test_evaluate_alpine(depends):
    packages = evaluate(depends, ALPINE_3_19)
    assert packages.runtime == ("libpq", "tzdata")
    assert packages.compile == ("gcc", "postgresql-dev", "libffi-dev")


def test_evaluate_fedora(depends):
    packages = evaluate(depends, FEDORA_39)
    # "gcc [platform:rpm]" makes gcc a runtime package on rpm platforms.
    assert packages.runtime == ("postgresql-libs", "libxml2", "tzdata", "gcc")
    assert packages.compile == ("postgresql-devel", "libffi-devel")


def test_builder_is_runtime_then_compile(depends):
    packages = evaluate(depends, FEDORA_39)
    assert packages.builder == (
        "postgresql-libs", "libxml2", "tzdata", "gcc", "postgresql-devel",
        "libffi-devel")


def test_other_profiles_are_never_installed(depends):
    for text in (DEBIAN_BOOKWORM, UBUNTU_JAMMY, ALPINE_3_19, FEDORA_39):
        builder = evaluate(depends, text).builder
        assert "mysql-client" not in builder
        assert "graphviz" not in builder


def test_negation_excludes_only_the_named_platform(depends):
    assert "libxml2" not in evaluate(depends, ALPINE_3_19).builder
    for text in (DEBIAN_BOOKWORM, UBUNTU_JAMMY, FEDORA_39):
        assert "libxml2" in evaluate(depends, text).runtime


def test_package_families(depends):
    bookworm = evaluate(depends, DEBIAN_BOOKWORM)
    alpine = evaluate(depends, ALPINE_3_19)
    fedora = evaluate(depends, FEDORA_39)
    assert "libpq5" in bookworm.runtime and "libpq-dev" in bookworm.compile
    assert "postgresql-devel" not in bookworm.builder
    assert "postgresql-devel" in fedora.compile
    assert "libpq5" not in fedora.builder and "libpq-dev" not in fedora.builder
    assert "libpq" in alpine.runtime and "postgresql-dev" in alpine.compile
    assert "libpq5" not in alpine.builder


def test_compile_only_packages_are_not_runtime(depends):
    packages = evaluate(depends, DEBIAN_BOOKWORM)
    assert "gcc" not in packages.runtime
    assert "gcc" in packages.compile
    assert not set(packages.runtime) & set(packages.compile)


def test_duplicates_and_versions_are_dropped(depends):
    packages = evaluate(depends, UBUNTU_JAMMY)
    assert packages.builder.count("libpq5") == 1
    assert "python3-dev" in packages.compile  # ">=3.9" is not part of it


def test_selected_by(depends):
    packages = evaluate(depends, UBUNTU_JAMMY)
    assert packages.selected_by["libpq-dev"] == "[compile platform:dpkg]"
    assert packages.selected_by["libpq5"] == "[platform:dpkg]"  # first rule
    assert packages.selected_by["tzdata"] == ""
    assert packages.selected_by["gcc"] == "[compile]"
    assert packages.selected_by["libssl-dev"] == "[compile !platform:rpm !platform:apk]"
    assert packages.selected_by["libjpeg-turbo8-dev"] == "[(compile platform:ubuntu)]"
    assert set(packages.selected_by) == set(packages.builder)


def test_evaluate_without_bindep_file():
    packages = evaluate(None, DEBIAN_BOOKWORM)
    assert packages == DistroPackages(platform=tuple(platform_profiles(DEBIAN_BOOKWORM)))
    assert packages.runtime == packages.compile == packages.builder == ()
    assert packages.selected_by == {}


def test_distro_packages_is_frozen_and_hashable(depends):
    packages = evaluate(depends, ALPINE_3_19)
    with pytest.raises(AttributeError):
        packages.runtime = ()  # type: ignore[misc]
    hash(packages)


# --- unknown_profiles -------------------------------------------------------

def test_unknown_profiles():
    depends = Depends(
        "gcc [compile]\n"
        "foo [test doc docs functional devstack pep8 lint bindep default]\n"
        "bar [benchmark platform:dpkg]\n"
        "baz [(selenium !platform:rpm)]\n"
        "qux [!nodocs]\n"
    )
    assert unknown_profiles(depends) == ["benchmark", "nodocs", "selenium"]


def test_unknown_profiles_of_sample_file(depends):
    assert unknown_profiles(depends) == []


# --- find_bindep_file / load_bindep ----------------------------------------

def test_find_bindep_file_prefers_bindep_txt(tmp_path):
    assert find_bindep_file(tmp_path) is None
    (tmp_path / "other-requirements.txt").write_text("gcc\n")
    assert find_bindep_file(tmp_path) == tmp_path / "other-requirements.txt"
    (tmp_path / "bindep.txt").write_text("gcc\n")
    assert find_bindep_file(tmp_path) == tmp_path / "bindep.txt"
    assert BINDEP_FILENAMES == ("bindep.txt", "other-requirements.txt")


def test_find_bindep_file_ignores_directories(tmp_path):
    (tmp_path / "bindep.txt").mkdir()
    assert find_bindep_file(tmp_path) is None


def test_load_bindep(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text(BINDEP_TXT)
    depends = load_bindep(path)
    assert evaluate(depends, ALPINE_3_19).runtime == ("libpq", "tzdata")


def test_load_bindep_accepts_empty_file_and_missing_final_newline(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text("")
    assert evaluate(load_bindep(path), ALPINE_3_19).builder == ()
    path.write_text("gcc [compile]")
    assert evaluate(load_bindep(path), ALPINE_3_19).compile == ("gcc",)


def test_load_bindep_accepts_crlf(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_bytes(b"gcc [compile]\r\nlibpq5 [platform:dpkg]\r\n")
    assert evaluate(load_bindep(path), DEBIAN_BOOKWORM).builder == ("libpq5", "gcc")


GROUPS_TXT = ("make [(compile platform:dpkg)]\nlibpq5 [(platform:dpkg !platform:ubuntu)]\n"
              "libpq [platform:rpm] <=16\n")


def _grammars(monkeypatch) -> list[str]:
    """The grammars bindep compiles from now on (it still compiles them)."""
    compiled: list[str] = []
    make = bindep.depends.makeGrammar

    def counted(grammar, *args, **kwargs):
        compiled.append(grammar)
        return make(grammar, *args, **kwargs)
    monkeypatch.setattr(bindep.depends, "makeGrammar", counted)
    return compiled


def test_load_bindep_keeps_parsed_rules_in_facts(tmp_path, monkeypatch):
    path = tmp_path / "bindep.txt"
    path.write_text(BINDEP_TXT + GROUPS_TXT)
    facts = ImageFacts(tmp_path / "facts")
    parsed = load_bindep(path, facts)
    assert [p.name for p in (tmp_path / "facts").iterdir()] != []
    compiled = _grammars(monkeypatch)
    kept = load_bindep(path, facts)
    assert compiled == []
    assert kept._rules == parsed._rules  # tuples and lists as bindep made them
    assert [type(group) for rule in kept._rules for group in rule[1]] == \
        [type(group) for rule in parsed._rules for group in rule[1]]
    for os_release in (DEBIAN_BOOKWORM, UBUNTU_JAMMY, FEDORA_39, ALPINE_3_19):
        assert evaluate(kept, os_release) == evaluate(parsed, os_release)
    assert unknown_profiles(kept) == unknown_profiles(parsed)
    assert kept.filename == str(path)


def test_load_bindep_parses_a_changed_file_again(tmp_path):
    path = tmp_path / "bindep.txt"
    facts = ImageFacts(tmp_path / "facts")
    path.write_text("gcc [compile]\n")
    assert evaluate(load_bindep(path, facts), DEBIAN_BOOKWORM).compile == ("gcc",)
    path.write_text("gcc [compile]\nmake [compile]\n")
    assert evaluate(load_bindep(path, facts), DEBIAN_BOOKWORM).compile == ("gcc", "make")


@pytest.mark.parametrize("kept", ["not python", "[('gcc', 'compile', [])]", "42", "__import__"])
def test_load_bindep_parses_again_when_the_kept_rules_are_unusable(tmp_path, kept):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc [compile]\n")
    facts = ImageFacts(tmp_path / "facts")
    load_bindep(path, facts)
    (kept_file,) = (tmp_path / "facts").iterdir()
    kept_file.write_text(json.dumps(kept))
    assert evaluate(load_bindep(path, facts), DEBIAN_BOOKWORM).compile == ("gcc",)


def test_load_bindep_keeps_no_rules_of_a_file_with_a_syntax_error(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc [compile\n")
    with pytest.raises(ProjectError):
        load_bindep(path, ImageFacts(tmp_path / "facts"))
    assert not (tmp_path / "facts").exists()


def test_load_bindep_with_facts_disabled_parses_every_time(tmp_path, monkeypatch):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc [compile]\n")
    load_bindep(path, ImageFacts(tmp_path / "facts"))
    compiled = _grammars(monkeypatch)
    load_bindep(path, ImageFacts(tmp_path / "facts", enabled=False))
    assert len(compiled) == 1


# ---- BindepFile: bindep's answers kept, bindep imported only when needed


def test_bindep_file_answers_as_bindep_and_keeps_the_answers(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text(BINDEP_TXT + GROUPS_TXT)
    facts = ImageFacts(tmp_path / "facts")
    first = BindepFile(path, facts)
    parsed = load_bindep(path)
    assert first.unknown_profiles() == unknown_profiles(parsed)
    for os_release in (DEBIAN_BOOKWORM, UBUNTU_JAMMY, FEDORA_39, ALPINE_3_19):
        assert first.evaluate(os_release) == evaluate(parsed, os_release)
    kept = sorted(p.name.rsplit("-", 2)[0] for p in (tmp_path / "facts").iterdir())
    assert kept == ["bindep"] + ["bindep-packages"] * 4 + ["bindep-profiles"]
    again = BindepFile(path, facts)
    assert again.unknown_profiles() == first.unknown_profiles()
    for os_release in (DEBIAN_BOOKWORM, UBUNTU_JAMMY, FEDORA_39, ALPINE_3_19):
        assert again.evaluate(os_release) == evaluate(parsed, os_release)
    assert again._depends is None  # answered from the facts, never parsed


def test_bindep_file_kept_answers_need_no_bindep(tmp_path):
    """A build of an unchanged file does not import bindep (it compiles a grammar)."""
    path = tmp_path / "bindep.txt"
    path.write_text(BINDEP_TXT)
    BindepFile(path, ImageFacts(tmp_path / "facts")).evaluate(DEBIAN_BOOKWORM)
    BindepFile(path, ImageFacts(tmp_path / "facts")).unknown_profiles()
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pbrx_images import pipeline\n"
        "from pbrx_images.project.bindep_file import BindepFile\n"
        "from pbrx_images.cache.image_facts import ImageFacts\n"
        "rules = BindepFile(Path(sys.argv[1]), ImageFacts(Path(sys.argv[2])))\n"
        "print(json.dumps([rules.unknown_profiles(), rules.evaluate(sys.argv[3]).compile]))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bindep', 'distro'))))\n")
    run = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "facts"),
                          DEBIAN_BOOKWORM], capture_output=True, text=True, check=True)
    answers, modules = run.stdout.splitlines()
    assert json.loads(answers) == [unknown_profiles(load_bindep(path)),
                                   list(evaluate(load_bindep(path), DEBIAN_BOOKWORM).compile)]
    assert modules == "[]"


def test_bindep_file_checks_the_syntax_of_a_file_not_kept(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc [compile\n")
    with pytest.raises(ProjectError, match="bindep.txt"):
        BindepFile(path, ImageFacts(tmp_path / "facts")).unknown_profiles()


@pytest.mark.parametrize("kept", [42, {"platform": ["x"]}, {
    "platform": ["platform:dpkg"], "runtime": [1], "compile": [], "selected_by": {}}])
def test_bindep_file_evaluates_again_when_the_kept_packages_are_unusable(tmp_path, kept):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc [compile]\n")
    facts = ImageFacts(tmp_path / "facts")
    BindepFile(path, facts).evaluate(DEBIAN_BOOKWORM)
    for kept_file in (tmp_path / "facts").iterdir():
        if "packages" in kept_file.name:
            kept_file.write_text(json.dumps(kept))
    assert BindepFile(path, facts).evaluate(DEBIAN_BOOKWORM).compile == ("gcc",)


def test_bindep_file_without_a_file(tmp_path):
    rules = BindepFile(None, ImageFacts(tmp_path / "facts"))
    assert rules.unknown_profiles() == []
    assert rules.depends() is None
    packages = rules.evaluate(DEBIAN_BOOKWORM)
    assert packages == evaluate(None, DEBIAN_BOOKWORM)
    assert BindepFile(None, ImageFacts(tmp_path / "facts")).evaluate(DEBIAN_BOOKWORM) == \
        packages


def test_platform_profiles_compile_no_grammar(monkeypatch):
    bindep_platform._profiles_depends.cache_clear()
    compiled = _grammars(monkeypatch)
    assert "platform:debian-12" in platform_profiles(DEBIAN_BOOKWORM)
    assert compiled == []


def _syntax_error(tmp_path: Path, text: str, name: str = "bindep.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ProjectError) as info:
        load_bindep(path)
    return str(info.value)


def test_syntax_error_names_file_line_and_content(tmp_path):
    message = _syntax_error(tmp_path, "gcc\nlibpq5\n[compile] libpq-dev\n")
    assert message.startswith("bindep.txt line 3: expected a package name, found '['")
    assert "'[compile] libpq-dev'" in message
    assert "https://docs.opendev.org/opendev/bindep" in message


def test_syntax_error_line_is_the_real_one(tmp_path):
    # parsley reports line 3 for this file; the broken line is 2.
    message = _syntax_error(tmp_path, "foo\nbar [\nbaz\n")
    assert message.startswith("bindep.txt line 2: ")
    assert "'bar ['" in message
    # parsley reports line 2 here; the broken line is 3.
    message = _syntax_error(tmp_path, "gcc\nlibpq5\nfoo >= x\n")
    assert message.startswith("bindep.txt line 3: ")
    assert "'foo >= x'" in message


def test_syntax_error_in_last_line_without_newline(tmp_path):
    message = _syntax_error(tmp_path, "gcc\nlibpq5 [platform:dpkg")
    assert message.startswith("bindep.txt line 2: ")


def test_syntax_error_after_comments_and_blank_lines(tmp_path):
    message = _syntax_error(tmp_path, "# comment\n\ngcc [compile]\n\nfoo bar\n")
    assert message.startswith("bindep.txt line 5: bindep cannot parse 'foo bar'")


def test_syntax_error_one_character_name(tmp_path):
    message = _syntax_error(tmp_path, "gcc\nx [compile]\n")
    assert message.startswith("bindep.txt line 2: package names need at least two")


def test_syntax_error_version_with_space(tmp_path):
    message = _syntax_error(tmp_path, "gcc\nlibpq5 >= 12\n")
    assert message.startswith(
        "bindep.txt line 2: a version constraint must not contain spaces")


def test_syntax_error_indented_rule(tmp_path):
    message = _syntax_error(tmp_path, "gcc\n  libpq5\n")
    assert message.startswith("bindep.txt line 2: a package name must start the line")


def test_syntax_error_uses_the_file_name(tmp_path):
    message = _syntax_error(tmp_path, "gcc\n!bad\n", name="other-requirements.txt")
    assert message.startswith("other-requirements.txt line 2: ")


def test_syntax_error_message_is_one_sentence(tmp_path):
    message = _syntax_error(tmp_path, "gcc [compile\n")
    assert message.endswith(").")
    assert "\n" not in message


def test_syntax_error_falls_back_to_bindep_position():
    # Every line parses alone but bindep still fails: use its position.
    message = bindep_file._syntax_error_message(
        "bindep.txt", "gcc\nfoo\n",
        "Requirements parsing error: \nfoo\n^\nParse error at line 2, column 0: x")
    assert message.startswith("bindep.txt line 2: ")


def test_not_utf8_is_a_project_error(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_bytes(b"gcc\nlib\xe9\n")
    with pytest.raises(ProjectError, match="not valid UTF-8"):
        load_bindep(path)


def test_unreadable_file_is_a_project_error(tmp_path):
    path = tmp_path / "bindep.txt"
    path.mkdir()  # reading a directory fails even as root
    with pytest.raises(ProjectError, match="Cannot read"):
        load_bindep(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_permission_denied_is_a_project_error(tmp_path):
    path = tmp_path / "bindep.txt"
    path.write_text("gcc\n")
    path.chmod(0)
    with pytest.raises(ProjectError, match="Permission denied"):
        load_bindep(path)
