"""Tests for pbrx_images.plan."""

from __future__ import annotations

import pytest

from pbrx_images.errors import BuildError
from pbrx_images.plan import (BUILDER_EXTRA_PACKAGES, ExtrasFor, ImagePlan, Plan, check_extras,
                              check_prefix, check_tag, describe_plan, full_name, make_plan)
from pbrx_images.project.bindep_file import DistroPackages
from pbrx_images.project.metadata import ProjectMetadata

BASE = "python:3.11-slim-bookworm"
PACKAGES = DistroPackages(platform=("platform:dpkg", "platform:debian"),
                          runtime=("libpq5",), compile=("libpq-dev", "gcc"))


def metadata(name="foo", scripts=("foo-api", "foo-worker"), extras=(), version="1.0"):
    return ProjectMetadata(name=name, version=version, console_scripts=scripts,
                           extras=extras, source="setup.cfg")


def plan_for(meta=None, packages=PACKAGES, **kwargs) -> Plan:
    return make_plan(meta if meta is not None else metadata(), packages, BASE, **kwargs)


# --------------------------------------------------------------------------
# Image names


def test_base_image_is_named_after_the_project():
    plan = plan_for()
    assert plan.base.name == "foo-base:latest"
    assert plan.base.script is None
    assert plan.base.cmd is None
    assert plan.images[0] is plan.base


def test_base_image_name_is_normalised_from_the_project_name():
    plan = plan_for(metadata(name="My_Project.Tools", scripts=()))
    assert plan.base.name == "my-project-tools-base:latest"


def test_prefix_and_tag_are_used_for_every_image():
    plan = plan_for(prefix="registry.example.com:5000/team", tag="v1.2")
    assert [image.name for image in plan.images] == [
        "registry.example.com:5000/team/foo-base:v1.2",
        "registry.example.com:5000/team/foo-api:v1.2",
        "registry.example.com:5000/team/foo-worker:v1.2",
    ]


def test_trailing_slash_of_the_prefix_is_dropped():
    plan = plan_for(prefix="ghcr.io/org/")
    assert plan.base.name == "ghcr.io/org/foo-base:latest"


@pytest.mark.parametrize("prefix", [None, ""])
def test_no_prefix(prefix):
    assert plan_for(prefix=prefix).base.name == "foo-base:latest"


def test_one_image_per_console_script_in_declared_order():
    meta = metadata(scripts=("zeta", "alpha", "Mid_Tool"))
    plan = plan_for(meta)
    assert [image.script for image in plan.scripts] == ["zeta", "alpha", "Mid_Tool"]
    assert [image.name for image in plan.scripts] == [
        "zeta:latest", "alpha:latest", "mid-tool:latest"]
    assert [image.cmd for image in plan.scripts] == [("zeta",), ("alpha",), ("Mid_Tool",)]
    assert len(plan.images) == 4


def test_plan_carries_project_version_base_image_and_packages():
    plan = plan_for()
    assert plan.project == "foo"
    assert plan.version == "1.0"
    assert plan.base_image == BASE
    assert plan.packages is PACKAGES
    assert plan.notes == ()


def test_full_name():
    assert full_name(None, "foo", "latest") == "foo:latest"
    assert full_name("reg/team", "foo", "1") == "reg/team/foo:1"


# --------------------------------------------------------------------------
# Extras


def test_base_extra_found_by_pep685_spelling():
    plan = plan_for(metadata(extras=("foo-base", "foo_api")))
    assert plan.base.extra == "foo-base"


@pytest.mark.parametrize("spelling", ["foo_base", "foo-base", "Foo.Base", "FOO__BASE",
                                      "foo-_-base"])
def test_base_extra_spelling_variants(spelling):
    plan = plan_for(metadata(extras=("other", spelling)))
    assert plan.base.extra == spelling


def test_base_extra_for_a_project_name_with_separators():
    plan = plan_for(metadata(name="My.Project", scripts=(), extras=("my_project-base",)))
    assert plan.base.extra == "my_project-base"


def test_script_extra_found_by_pep685_spelling():
    plan = plan_for(metadata(extras=("foo-base", "foo_api")))
    api, worker = plan.scripts
    assert api.extra == "foo_api"  # as spelled by the project
    assert worker.extra is None


@pytest.mark.parametrize("spelling", ["foo-api", "foo_api", "foo.api", "FOO-API", "Foo_Api",
                                      "foo__api"])
def test_script_extra_spelling_variants(spelling):
    plan = plan_for(metadata(scripts=("foo-api",), extras=("unrelated", spelling)))
    assert plan.scripts[0].extra == spelling


def test_script_extra_matched_from_script_spelling_variants():
    plan = plan_for(metadata(scripts=("Foo.Api",), extras=("foo-api",)))
    assert plan.scripts[0].extra == "foo-api"


def test_no_extra_when_none_is_defined():
    plan = plan_for(metadata(extras=()))
    assert all(image.extra is None for image in plan.images)
    assert plan.extras == ()


def test_unknown_extras_are_treated_as_none():
    plan = plan_for(ProjectMetadata("foo", None, ("foo-api",), None, "setup.py"))
    assert all(image.extra is None for image in plan.images)


def test_similar_but_different_extras_do_not_match():
    plan = plan_for(metadata(extras=("foo-api2", "foobase", "api")))
    assert all(image.extra is None for image in plan.images)


def test_extras_lists_every_extra_once_in_image_order():
    plan = plan_for(metadata(scripts=("foo-api", "foo-worker"),
                             extras=("foo_worker", "foo-api", "foo-base", "docs")))
    assert plan.extras == ("foo-base", "foo-api", "foo_worker")


def test_extras_deduplicates_an_extra_shared_by_images():
    plan = Plan(project="foo", version=None, base_image=BASE, packages=PACKAGES,
                images=(ImagePlan("foo-base:latest", None, "all"),
                        ImagePlan("a:latest", "a", "all"),
                        ImagePlan("b:latest", "b", None),
                        ImagePlan("c:latest", "c", "c")))
    assert plan.extras == ("all", "c")


# --------------------------------------------------------------------------
# Dockerfiles


def test_dockerfile_picked_only_when_listed():
    plan = plan_for(dockerfiles=("Dockerfile.foo-api", "Dockerfile.other"))
    api, worker = plan.scripts
    assert api.dockerfile == "Dockerfile.foo-api"
    assert worker.dockerfile is None
    assert plan.base.dockerfile is None


def test_dockerfile_must_match_the_script_name_exactly():
    plan = plan_for(dockerfiles=("Dockerfile.foo_api", "Dockerfile", "foo-api"))
    assert all(image.dockerfile is None for image in plan.images)


def test_no_dockerfiles_by_default():
    assert all(image.dockerfile is None for image in plan_for().images)


# --------------------------------------------------------------------------
# Packages


def test_builder_packages_are_bindep_builder_packages_plus_git():
    plan = plan_for()
    assert PACKAGES.builder == ("libpq5", "libpq-dev", "gcc")
    assert plan.builder_packages == ("libpq5", "libpq-dev", "gcc", "git")
    assert set(BUILDER_EXTRA_PACKAGES) <= set(plan.builder_packages)


def test_builder_packages_without_duplicates():
    packages = DistroPackages(platform=("platform:dpkg",), runtime=("git", "libpq5"),
                              compile=("gcc", "libpq5"))
    plan = plan_for(packages=packages)
    assert plan.builder_packages == ("git", "libpq5", "gcc")


def test_builder_packages_without_bindep_file():
    plan = plan_for(packages=DistroPackages(platform=("platform:dpkg",)))
    assert plan.builder_packages == ("git",)


def test_a_project_that_is_not_a_git_checkout_gets_no_git():
    plan = make_plan(ProjectMetadata("pgtool", "1.0", ("pgtool",), (), "setup.cfg"),
                     PACKAGES, "debian:bookworm", git=False)
    assert plan.builder_packages == ("libpq5", "libpq-dev", "gcc")
    described = "\n".join(describe_plan(plan, "Debian", ("dumb-init",), None))
    assert "Also installed: dumb-init in runtime images" in described
    assert "git" not in described
    bindep_git = DistroPackages(platform=("platform:dpkg",), compile=("git",))
    assert make_plan(ProjectMetadata("pgtool", "1.0", (), (), "setup.cfg"), bindep_git,
                     "debian:bookworm", git=False).builder_packages == ("git",)


def test_runtime_packages_include_dumb_init():
    plan = plan_for()
    assert plan.runtime_packages == ("libpq5", "dumb-init")
    assert "gcc" not in plan.runtime_packages


def test_runtime_packages_do_not_repeat_dumb_init():
    packages = DistroPackages(platform=("platform:dpkg",), runtime=("dumb-init", "libpq5"))
    assert plan_for(packages=packages).runtime_packages == ("dumb-init", "libpq5")


def test_runtime_packages_without_bindep_file():
    plan = plan_for(packages=DistroPackages(platform=("platform:dpkg",)))
    assert plan.runtime_packages == ("dumb-init",)


# --------------------------------------------------------------------------
# Projects without scripts


@pytest.mark.parametrize("scripts", [(), None])
def test_project_without_scripts_gets_a_note_and_only_a_base_image(scripts):
    plan = plan_for(metadata(scripts=scripts, extras=("foo-base",)))
    assert len(plan.images) == 1
    assert plan.scripts == ()
    assert plan.base.name == "foo-base:latest"
    assert plan.base.extra == "foo-base"
    assert len(plan.notes) == 1
    assert "no console scripts" in plan.notes[0]


def test_project_without_name_is_rejected():
    with pytest.raises(BuildError, match="no name"):
        plan_for(ProjectMetadata(None, None, ("a",), (), "setup.py"))


# --------------------------------------------------------------------------
# Tags and prefixes


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "1.0-rc1", "_private", "A_b.C-d",
                                 "x" * 128])
def test_valid_tags(tag):
    assert check_tag(tag) == tag
    assert plan_for(tag=tag).base.name == "foo-base:" + tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-dash", "x" * 129, "has space", "a:b",
                                 "a/b", "caf\u00e9", "a@b"])
def test_invalid_tags_rejected(tag):
    with pytest.raises(BuildError, match="not a valid image tag"):
        check_tag(tag)
    with pytest.raises(BuildError):
        plan_for(tag=tag)


@pytest.mark.parametrize("check, value", [(check_tag, "latest\n"), (check_prefix, "team\n")])
def test_trailing_newline_rejected(check, value):
    with pytest.raises(BuildError):
        check(value)


@pytest.mark.parametrize("prefix", ["team", "my_org", "my-org/sub.team", "ghcr.io/org/sub",
                                    "localhost:5000", "registry.example.com:5000/team",
                                    "a__b/c"])
def test_valid_prefixes(prefix):
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix, expected", [(None, None), ("", None),
                                              ("team/", "team"), ("a/b//", "a/b")])
def test_prefix_normalisation(prefix, expected):
    assert check_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["Team", "reg/Team", "-team", "team-", "team/-x", "a b",
                                    "host:port/x", "reg:5000:6000/x", "team/x:1", "/",
                                    "a//b", "caf\u00e9", "team@sha"])
def test_invalid_prefixes_rejected(prefix):
    with pytest.raises(BuildError, match="not a valid image name prefix"):
        check_prefix(prefix)
    with pytest.raises(BuildError):
        plan_for(prefix=prefix)


# --------------------------------------------------------------------------
# Name clashes


@pytest.mark.parametrize("scripts", [("foo-api", "foo_api"), ("foo-api", "Foo.Api"),
                                     ("tool", "TOOL")])
def test_two_scripts_with_the_same_image_name_rejected(scripts):
    with pytest.raises(BuildError, match="would both be the image") as info:
        plan_for(metadata(scripts=scripts))
    assert repr(scripts[0]) in str(info.value)
    assert repr(scripts[1]) in str(info.value)


def test_script_with_the_base_image_name_rejected():
    with pytest.raises(BuildError, match="base image"):
        plan_for(metadata(scripts=("foo-api", "foo_base")))


def test_distinct_script_names_accepted():
    plan = plan_for(metadata(scripts=("foo-api", "foo-api2", "foo-base2")))
    assert len({image.name for image in plan.images}) == 4


def test_describe_plan_lists_packages_with_selectors_images_and_layers():
    from pbrx_images.plan import describe_plan

    packages = DistroPackages(platform=("platform:debian", "platform:dpkg"),
                              runtime=("libpq5",), compile=("gcc", "libpq-dev"),
                              selected_by={"libpq5": "[platform:dpkg]", "gcc": "[compile]",
                                           "libpq-dev": "[compile platform:dpkg]"})
    metadata = ProjectMetadata("foo", "1.0", ("foo-api", "foo-manage"),
                               ("foo_base", "foo-manage"), "setup.cfg")
    plan = make_plan(metadata, packages, "debian:bookworm", "reg/team", "v1",
                     {"Dockerfile.foo-api"})
    text = "\n".join(describe_plan(plan, "Debian 12, apt", ("/usr/bin/dumb-init", "--"),
                                   ("/bin/bash",)))
    assert "Plan for foo 1.0" in text
    assert "debian:bookworm (Debian 12, apt)" in text
    compile_part = text[text.index("Compile packages"):text.index("Runtime packages")]
    assert "gcc" in compile_part and "[compile platform:dpkg]" in compile_part
    assert "libpq5" not in compile_part
    runtime_part = text[text.index("Runtime packages"):text.index("Images:")]
    assert "libpq5" in runtime_part and "[platform:dpkg]" in runtime_part
    assert "  reg/team/foo-base:v1\n    extras: foo_base (its name)" in text
    assert "built from Dockerfile.foo-api with BASE_IMAGE=reg/team/foo-base:v1" in text
    assert ('  reg/team/foo-manage:v1\n    extras: foo-manage (its name)\n'
            '    ENTRYPOINT ["/usr/bin/dumb-init", "--"]  CMD ["foo-manage"]') in text
    assert 'CMD ["/bin/bash"]' in text  # the base image keeps its base's CMD
    assert "may add images" not in text


def test_describe_plan_says_when_scripts_are_not_known_yet():
    from pbrx_images.plan import describe_plan

    metadata = ProjectMetadata("foo", None, (), (), "setup.py")
    plan = make_plan(metadata, DistroPackages(platform=()), "img")
    text = "\n".join(describe_plan(plan, "x", ("init",), None, complete=False))
    assert "(none)" in text and "may add images" in text
    assert "only the base image is built" in text


# --------------------------------------------------------------------------
# Extras of other names (--extra SCRIPT=EXTRA, settings' extras)


def given(script, *extras, where=None):
    return ExtrasFor(script, extras, where or "--extra %s=%s" % (script, ",".join(extras)))


def test_without_a_mapping_an_image_gets_the_extra_of_its_name():
    plan = plan_for(metadata(extras=("foo-api", "d")))
    assert [(image.extra, image.extra_from) for image in plan.images] == [
        (None, ""), ("foo-api", "its name"), (None, "")]


def test_a_mapping_gives_a_script_extras_of_other_names_as_the_project_spells_them():
    plan = plan_for(metadata(extras=("D", "cli", "foo-api")),
                    extras_for=[given("foo-worker", "d", "cli"), given("base", "cli")])
    base, api, worker = plan.images
    assert (base.extra, base.extra_from) == ("cli", "--extra base=cli")
    assert (api.extra, api.extra_from) == ("foo-api", "its name")  # the default still holds
    assert (worker.extra, worker.extra_from) == ("D,cli", "--extra foo-worker=d,cli")
    assert plan.extras == ("cli", "foo-api", "D")  # wheels for each, once


def test_the_last_mapping_of_an_image_wins():
    plan = plan_for(metadata(extras=("a", "b")),
                    extras_for=[given("foo-api", "a"), given("foo-api", "b")])
    assert plan.images[1].extra == "b"


def test_an_extra_the_project_lacks_is_an_error_that_lists_its_extras():
    with pytest.raises(BuildError) as error:
        plan_for(metadata(extras=("d", "tests")), extras_for=[given("foo-api", "server")])
    assert str(error.value) == (
        "--extra foo-api=server gives the script 'foo-api' the extra 'server', which the "
        "project does not define (its extras: d, tests): fix the mapping.")
    with pytest.raises(BuildError, match=r"the base image the extra 'x', .*\(its extras: "
                       r"none\)"):
        plan_for(metadata(), extras_for=[given("base", "x", where="extras.base in x")])


def test_a_mapping_for_a_script_the_project_lacks_is_an_error():
    with pytest.raises(BuildError) as error:
        plan_for(metadata(extras=("d",)), extras_for=[given("food", "d")])
    assert str(error.value) == (
        "--extra food=d names 'food', which is not a console script of foo (its scripts: "
        "foo-api, foo-worker; 'base' is the base image): fix the name.")


def test_what_the_metadata_does_not_know_yet_is_not_checked():
    # (the dry run of a project whose backend decides its scripts and extras)
    unknown = ProjectMetadata(name="foo", version=None, console_scripts=None, extras=None,
                              source="setup.py")
    assert check_extras(unknown, [given("food", "d")]) == {"food": given("food", "d")}
    scripts_only = ProjectMetadata(name="foo", version=None, console_scripts=("food",),
                                   extras=None, source="setup.py")
    plan = plan_for(scripts_only, extras_for=[given("food", "d")])
    assert plan.images[1].extra == "d"


def test_the_dry_run_says_where_each_images_extras_came_from():
    plan = plan_for(metadata(extras=("d", "foo-api")), extras_for=[given("foo-worker", "d")])
    text = "\n".join(describe_plan(plan, "Debian 12, apt", ["dumb-init"], None))
    assert "  foo-base:latest\n    extras: none\n" in text
    assert "  foo-api:latest\n    extras: foo-api (its name)\n" in text
    assert "  foo-worker:latest\n    extras: d (--extra foo-worker=d)\n" in text


# --------------------------------------------------------------------------
# --only: the base image and the named scripts' images


def test_only_builds_the_base_image_and_the_named_scripts():
    plan = plan_for(metadata(scripts=("a", "b", "c")), only=("c", "a"))
    assert [image.script for image in plan.images] == [None, "a", "c"]
    assert "Only a, c of the console scripts (--only): b is not built." in plan.notes


def test_only_a_script_the_project_lacks_is_an_error():
    with pytest.raises(BuildError) as error:
        plan_for(metadata(scripts=("a", "b")), only=("a", "x", "y"))
    assert str(error.value) == ("--only names 'x', 'y', which are not a console script of "
                                "foo (its scripts: a, b): fix the name.")
