"""Tests for pbrx_images.project.settings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pbrx_images.errors import ProjectError
from pbrx_images.project.pyproject import read_pyproject
from pbrx_images.project.settings import (DEFAULT_BASE_IMAGE, DEFAULT_TAG, Options,
                                          project_settings, resolve)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    (path / "setup.cfg").write_text("[metadata]\nname = foo\n", encoding="utf-8")
    return path


def write_setup_cfg(project: Path, section: str) -> None:
    (project / "setup.cfg").write_text(
        "[metadata]\nname = foo\n\n" + textwrap.dedent(section), encoding="utf-8")


def write_pyproject(project: Path, table: str) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "foo"\nversion = "1"\n\n' + textwrap.dedent(table),
        encoding="utf-8")


def test_defaults(project):
    options = resolve(project)
    assert options == Options(project_dir=project.resolve())
    assert options.base_image == DEFAULT_BASE_IMAGE == "python:3.11-slim-bookworm"
    assert options.tag == DEFAULT_TAG == "latest"
    assert options.prefix is None
    assert options.constraints is None
    assert options.no_cache is False
    assert options.debug is False


def test_flags_passed_through(project):
    options = resolve(project, no_cache=True, debug=True)
    assert options.no_cache is True
    assert options.debug is True


def test_project_dir_is_resolved(project, monkeypatch):
    monkeypatch.chdir(project.parent)
    options = resolve(Path("project"))
    assert options.project_dir == project.resolve()
    assert options.project_dir.is_absolute()


def test_pyproject_settings(project):
    (project / "constraints.txt").write_text("six==1.16.0\n")
    write_pyproject(project, """\
        [tool.build-images]
        base-image = "debian:bookworm"
        prefix = "registry.example.com/team"
        tag = "v1"
        constraints = "constraints.txt"
        """)
    options = resolve(project)
    assert options.base_image == "debian:bookworm"
    assert options.prefix == "registry.example.com/team"
    assert options.tag == "v1"
    assert options.constraints == (project / "constraints.txt").resolve()


def test_setup_cfg_settings(project):
    (project / "c.txt").write_text("six==1.16.0\n")
    write_setup_cfg(project, """\
        [build_images]
        base-image = debian:bookworm
        prefix = ghcr.io/org
        tag = v2
        constraints = c.txt
        """)
    options = resolve(project)
    assert options.base_image == "debian:bookworm"
    assert options.prefix == "ghcr.io/org"
    assert options.tag == "v2"
    assert options.constraints == (project / "c.txt").resolve()


def test_underscore_keys_in_setup_cfg(project):
    write_setup_cfg(project, """\
        [build_images]
        base_image = debian:bookworm
        """)
    assert project_settings(project, read_pyproject(project)) == {"base-image": "debian:bookworm"}
    assert resolve(project).base_image == "debian:bookworm"


def test_underscore_keys_in_pyproject(project):
    write_pyproject(project, """\
        [tool.build-images]
        base_image = "debian:bookworm"
        """)
    assert project_settings(project, read_pyproject(project)) == {"base-image": "debian:bookworm"}
    assert resolve(project).base_image == "debian:bookworm"


def test_values_are_stripped(project):
    write_pyproject(project, """\
        [tool.build-images]
        tag = "  v3  "
        """)
    assert resolve(project).tag == "v3"


def test_pyproject_wins_over_setup_cfg(project):
    write_setup_cfg(project, """\
        [build_images]
        base-image = from-setup-cfg
        prefix = cfg
        tag = cfg-tag
        """)
    write_pyproject(project, """\
        [tool.build-images]
        base-image = "from-pyproject"
        tag = "toml-tag"
        """)
    options = resolve(project)
    assert options.base_image == "from-pyproject"
    assert options.tag == "toml-tag"
    assert options.prefix == "cfg"  # only in setup.cfg


def test_command_line_wins_over_project_files(project, tmp_path):
    (project / "project-constraints.txt").write_text("")
    cli_constraints = tmp_path / "cli-constraints.txt"
    cli_constraints.write_text("")
    write_setup_cfg(project, """\
        [build_images]
        base-image = from-setup-cfg
        prefix = cfg
        tag = cfg-tag
        constraints = project-constraints.txt
        """)
    write_pyproject(project, """\
        [tool.build-images]
        base-image = "from-pyproject"
        prefix = "toml"
        tag = "toml-tag"
        """)
    options = resolve(project, base_image="cli-image", prefix="cli/prefix", tag="cli-tag",
                      constraints=str(cli_constraints))
    assert options.base_image == "cli-image"
    assert options.prefix == "cli/prefix"
    assert options.tag == "cli-tag"
    assert options.constraints == cli_constraints.resolve()


def test_empty_prefix_on_the_command_line_clears_the_project_prefix(project):
    write_pyproject(project, """\
        [tool.build-images]
        prefix = "toml"
        """)
    assert resolve(project, prefix="").prefix == ""
    assert resolve(project).prefix == "toml"


def test_constraints_from_project_files_relative_to_the_project(project, tmp_path, monkeypatch):
    (project / "etc").mkdir()
    (project / "etc" / "constraints.txt").write_text("")
    write_pyproject(project, """\
        [tool.build-images]
        constraints = "etc/constraints.txt"
        """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve(project).constraints == (project / "etc" / "constraints.txt").resolve()


def test_constraints_from_command_line_relative_to_cwd(project, tmp_path, monkeypatch):
    (tmp_path / "constraints.txt").write_text("")
    monkeypatch.chdir(tmp_path)
    options = resolve(project, constraints="constraints.txt")
    assert options.constraints == (tmp_path / "constraints.txt").resolve()


def test_missing_constraints_from_project_files(project):
    write_setup_cfg(project, """\
        [build_images]
        constraints = missing.txt
        """)
    with pytest.raises(ProjectError, match="missing.txt"):
        resolve(project)


def test_missing_constraints_from_command_line(project, tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        resolve(project, constraints=str(tmp_path / "nope.txt"))


def test_constraints_that_is_a_directory(project):
    (project / "dir").mkdir()
    with pytest.raises(ProjectError):
        resolve(project, constraints=str(project / "dir"))


def test_unknown_key_in_pyproject(project):
    write_pyproject(project, """\
        [tool.build-images]
        registry = "x"
        """)
    with pytest.raises(ProjectError, match="'registry'") as info:
        resolve(project)
    assert "pyproject.toml" in str(info.value)


def test_unknown_key_in_setup_cfg(project):
    write_setup_cfg(project, """\
        [build_images]
        base-imag = x
        """)
    with pytest.raises(ProjectError, match="'base-imag'") as info:
        resolve(project)
    assert "setup.cfg" in str(info.value)


@pytest.mark.parametrize("value", ['""', '"   "', "1", "true", '[]', '["a", 1]', '["a b"]'])
def test_non_string_or_empty_values_rejected(project, value):
    write_pyproject(project, "[tool.build-images]\ntag = %s\n" % value)
    with pytest.raises(ProjectError, match="'tag'|tag"):
        resolve(project)
    write_pyproject(project, "[tool.build-images]\nbase-image = [\"a\"]\n")
    with pytest.raises(ProjectError, match="'base-image' must be a non-empty string"):
        resolve(project)


def test_several_tags_from_the_settings_and_the_command_line(project):
    write_pyproject(project, '[tool.build-images]\ntag = ["1.2", "latest", "1.2"]\n')
    options = resolve(project)
    assert (options.tag, options.more_tags) == ("1.2", ("latest",))
    write_pyproject(project, "")
    write_setup_cfg(project, "[build_images]\ntag = 1.2, stable\n")
    assert (resolve(project).tag, resolve(project).more_tags) == ("1.2", ("stable",))
    options = resolve(project, tag=["ci", "change-1"])  # the command line replaces them
    assert (options.tag, options.more_tags) == ("ci", ("change-1",))
    assert resolve(project, tag="one").more_tags == ()


def test_build_images_that_is_not_a_table(project):
    write_pyproject(project, '[tool]\nbuild-images = "x"\n')
    with pytest.raises(ProjectError, match="must be a table"):
        resolve(project)


def test_other_tool_tables_and_sections_ignored(project):
    write_setup_cfg(project, """\
        [flake8]
        max-line-length = 99
        """)
    write_pyproject(project, """\
        [tool.black]
        line-length = 99
        """)
    assert project_settings(project, read_pyproject(project)) == {}
    assert resolve(project).tag == "latest"


def test_an_unparsable_setup_cfg_is_left_to_the_metadata_reader(project):
    (project / "setup.cfg").write_text("not an ini file\n")
    assert project_settings(project, read_pyproject(project)) == {}


def test_an_unparsable_pyproject_toml_is_an_error_naming_its_line(project):
    (project / "pyproject.toml").write_text("= not toml\n")
    with pytest.raises(ProjectError, match=r"pyproject.toml is not valid TOML \(.* at line 1"):
        resolve(project)


def test_nonexistent_project_dir(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        resolve(tmp_path / "missing")


def test_file_instead_of_a_directory(tmp_path):
    path = tmp_path / "setup.py"
    path.write_text("")
    with pytest.raises(ProjectError, match="not a directory"):
        resolve(path)


@pytest.mark.parametrize("value, expected", [
    (None, {"user": None, "uid": None}),
    ("app", {"user": "app", "uid": None}),
    ("app:10001", {"user": "app", "uid": 10001}),
])
def test_parse_user(value, expected):
    from pbrx_images.project.settings import parse_user
    assert parse_user(value) == expected


@pytest.mark.parametrize("value", ["root", "App", "app:", "app:x", "app:0", "1app", "a" * 33,
                                   "app:99999999999"])
def test_parse_user_rejects(value):
    from pbrx_images.project.settings import parse_user
    with pytest.raises(ProjectError, match="NAME\\[:UID\\]"):
        parse_user(value)


def test_sbom_dir_resolved_from_the_current_directory(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve(project).sbom_dir is None  # the default, cache.files.sbom_dir()
    assert resolve(project, sbom_dir="out/sboms").sbom_dir == tmp_path.resolve() / "out/sboms"


@pytest.mark.parametrize("value, message", [(" ", "empty value"), ("file", "not a directory")])
def test_sbom_dir_rejects(project, tmp_path, monkeypatch, value, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ProjectError, match=message):
        resolve(project, sbom_dir=value)


def test_the_shared_cache_from_the_project_or_the_command_line(project):
    write_pyproject(project, """\
        [tool.build-images]
        cache-from = "registry.example.com/team/foo-cache"
        cache_to = "registry.example.com/team/foo-cache"
        """)
    options = resolve(project)
    assert (options.cache_from, options.cache_to) == ("registry.example.com/team/foo-cache",) * 2
    options = resolve(project, cache_from="127.0.0.1:5000/other", cache_to="")
    assert (options.cache_from, options.cache_to) == ("127.0.0.1:5000/other", None)
    write_setup_cfg(project, "[build_images]\ncache-from = 127.0.0.1:5000/from-cfg\n")
    (project / "pyproject.toml").unlink()
    assert resolve(project).cache_from == "127.0.0.1:5000/from-cfg"


@pytest.mark.parametrize("where", ["command line", "pyproject"])
def test_a_shared_cache_that_is_not_a_registry_repository_is_refused(project, where):
    if where == "pyproject":
        write_pyproject(project, '[tool.build-images]\ncache-to = "team/cache"\n')
        with pytest.raises(ProjectError, match=r"\[tool.build-images\] in .*: cache-to "
                                               "'team/cache' is not a registry repository"):
            resolve(project)
    else:
        with pytest.raises(ProjectError, match="--cache-to 'team/cache' is not a registry"):
            resolve(project, cache_to="team/cache")


# --------------------------------------------------------------------------
# extras: which extras an image gets when they are not named as its script


def test_extras_from_pyproject_setup_cfg_and_the_command_line(project):
    write_setup_cfg(project, """\
        [build_images]
        extras =
            food = d, cli
            base = core
        """)
    write_pyproject(project, """\
        [tool.build-images.extras]
        food = ["d"]
        tool = "cli"
        """)
    options = resolve(project)
    assert {(m.script, m.extras) for m in options.extras} == {
        ("food", ("d",)), ("base", ("core",)), ("tool", ("cli",))}  # pyproject wins, by image
    where = {m.script: m.given_in for m in options.extras}
    assert where["food"].startswith("extras.food in [tool.build-images] in ")
    assert where["base"].startswith("extras (base) in [build_images] in ")
    options = resolve(project, extras=["food=server,cli", "other=x"])
    assert {(m.script, m.extras) for m in options.extras} == {
        ("food", ("server", "cli")), ("base", ("core",)), ("tool", ("cli",)),
        ("other", ("x",))}
    assert {m.script: m.given_in for m in options.extras}["food"] == "--extra food=server,cli"


@pytest.mark.parametrize("given", ["food", "=d", "food=", "food=d,,cli", "food= , "])
def test_an_extra_option_that_is_not_script_equals_extras_is_refused(project, given):
    with pytest.raises(ProjectError, match=r"^--extra .* is not SCRIPT=EXTRA\[,EXTRA\.\.\.\]"):
        resolve(project, extras=[given])


@pytest.mark.parametrize("table, message", [
    ('[tool.build-images]\nextras = "food=d"\n', "'extras' must be a table"),
    ('[tool.build-images.extras]\nfood = [1]\n', "extras.food must be a list of extra names"),
    ('[tool.build-images.extras]\nfood = [""]\n', "extras.food must be a list of extra names"),
])
def test_pyproject_extras_of_the_wrong_shape_are_refused(project, table, message):
    write_pyproject(project, table)
    with pytest.raises(ProjectError, match=message):
        resolve(project)


def test_setup_cfg_extras_lines_of_the_wrong_shape_are_refused(project):
    write_setup_cfg(project, "[build_images]\nextras =\n    food d\n")
    with pytest.raises(ProjectError, match=r"the extras line 'food d' is not 'script = "
                       r"extra, extra'"):
        resolve(project)


def test_extras_shape_the_build_key_but_not_where_they_were_given(project):
    from pbrx_images.cache.build_record import option_values

    on_command_line = option_values(resolve(project, extras=["food=d"]))
    write_pyproject(project, '[tool.build-images.extras]\nfood = ["d"]\n')
    in_settings = option_values(resolve(project))
    assert on_command_line["extras"] == in_settings["extras"] == [["food", ["d"]]]
    assert option_values(resolve(project, extras=["food=cli"]))["extras"] == [
        ["food", ["cli"]]]


# --------------------------------------------------------------------------
# build-args: for Dockerfile.{script} builds


def test_build_args_from_the_settings_and_the_command_line(project):
    write_setup_cfg(project, "[build_images]\nbuild-args =\n    A = from cfg\n    B = b\n")
    write_pyproject(project, '[tool.build-images.build-args]\nB = "from toml"\nC = ""\n')
    assert resolve(project).build_args == (("A", "from cfg"), ("B", "from toml"), ("C", ""))
    options = resolve(project, build_args=["C=given", "D=x=y"])
    assert options.build_args == (("A", "from cfg"), ("B", "from toml"), ("C", "given"),
                                  ("D", "x=y"))


@pytest.mark.parametrize("given, message", [
    ("VERSION", r"--build-arg 'VERSION' is not KEY=VALUE"),
    ("1X=2", r"--build-arg: '1X' is not a build argument's name"),
    ("BASE_IMAGE=debian", r"--build-arg: BASE_IMAGE is the base image's work tag"),
])
def test_build_args_that_cannot_be_are_refused(project, given, message):
    with pytest.raises(ProjectError, match=message):
        resolve(project, build_args=[given])


def test_build_args_settings_of_the_wrong_shape_are_refused(project):
    write_pyproject(project, '[tool.build-images.build-args]\nA = 1\n')
    with pytest.raises(ProjectError, match="'build-args' must be a table of KEY"):
        resolve(project)
    write_pyproject(project, "")
    write_setup_cfg(project, "[build_images]\nbuild-args =\n    A\n")
    with pytest.raises(ProjectError, match="the build-args line 'A' is not 'KEY = value'"):
        resolve(project)


def test_only_from_the_settings_and_the_command_line(project):
    write_setup_cfg(project, "[build_images]\nonly = a, b\n")
    assert resolve(project).only == ("a", "b")
    write_pyproject(project, '[tool.build-images]\nonly = ["c"]\n')
    assert resolve(project).only == ("c",)
    assert resolve(project, only=["d,e", "d"]).only == ("d", "e")  # replaces the setting
    with pytest.raises(ProjectError, match="--only was given an empty name"):
        resolve(project, only=["a,"])
    write_pyproject(project, '[tool.build-images]\nonly = [1]\n')
    with pytest.raises(ProjectError, match="'only' must be a list of console scripts"):
        resolve(project)


def test_labels_from_the_settings_and_the_command_line(project):
    write_setup_cfg(project, "[build_images]\nlabels =\n    org.example.team = infra\n")
    write_pyproject(project, '[tool.build-images.labels]\n"org.example.tier" = "2"\n')
    assert resolve(project).labels == (("org.example.team", "infra"), ("org.example.tier", "2"))
    options = resolve(project, labels=["org.example.team=web", "empty="])
    assert options.labels == (("empty", ""), ("org.example.team", "web"),
                              ("org.example.tier", "2"))
    with pytest.raises(ProjectError, match=r"--label 'team' is not KEY=VALUE"):
        resolve(project, labels=["team"])
    with pytest.raises(ProjectError, match=r"--label: 'a b' is not a label's key"):
        resolve(project, labels=["a b=c"])


def test_the_other_options_as_settings(project, tmp_path, monkeypatch):
    write_pyproject(project, """\
        [tool.build-images]
        network = "host"
        user = "app:10001"
        platform = "arm64"
        sbom-dir = "sboms"
        smoke-test = true
        """)
    options = resolve(project)
    assert (options.network, options.user, options.uid, options.platform) == (
        "host", "app", 10001, "linux/arm64")
    assert options.sbom_dir == project.resolve() / "sboms"  # (relative to the project)
    assert options.smoke_test is True
    monkeypatch.chdir(tmp_path)
    given = resolve(project, network="bridge", user="web", platform="linux/amd64",
                    sbom_dir="here")
    assert (given.network, given.user, given.uid, given.platform, given.sbom_dir) == (
        "bridge", "web", None, "linux/amd64", (tmp_path / "here").resolve())


@pytest.mark.parametrize("setting, message", [
    ('user = "root"', r"--user 'root' is not NAME\[:UID\]"),
    ('platform = "arm64/linux"', r"the OS comes first"),
    ('smoke-test = "maybe"', r"'smoke-test' must be true or false"),
])
def test_the_other_options_settings_are_checked_where_they_are(project, setting, message):
    write_pyproject(project, "[tool.build-images]\n%s\n" % setting)
    with pytest.raises(ProjectError, match=r"\[tool.build-images\] in .*pyproject.toml: .*"
                       + message):
        resolve(project)


def test_setup_cfg_spells_smoke_test_as_a_word(project):
    write_setup_cfg(project, "[build_images]\nsmoke-test = yes\n")
    assert resolve(project).smoke_test is True
    write_setup_cfg(project, "[build_images]\nsmoke_test = off\n")
    assert resolve(project).smoke_test is False
