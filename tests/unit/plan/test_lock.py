"""Tests for pbrx_images.plan.lock."""

from __future__ import annotations

import copy
import json

import pytest

from pbrx_images.errors import BuildError
from pbrx_images.plan.lock import Lock, lock_from_report

COMMIT = "27f2a3a47bb8ef5e69d93bf6b3e0bd2ea0bbcbb9"


def index_item(name, version, requested=False):
    """An install entry for a distribution pip got from an index."""
    filename = "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version)
    return {
        "download_info": {
            "url": "https://files.pythonhosted.org/packages/ab/cd/" + filename,
            "archive_info": {
                "hash": "sha256=" + "0" * 64,
                "hashes": {"sha256": "0" * 64},
            },
        },
        "is_direct": False,
        "is_yanked": False,
        "requested": requested,
        "metadata": {
            "metadata_version": "2.1",
            "name": name,
            "version": version,
            "summary": "A distribution",
            "requires_python": ">=3.8",
        },
    }


def project_item(name="My_Project", version="1.0.0"):
    """The project's own wheel, given to pip as a file."""
    return {
        "download_info": {
            "url": "file:///run/pbrx-images/wheels/runs/r1/%s-%s-py3-none-any.whl"
                   % (name, version),
            "archive_info": {"hash": "sha256=" + "1" * 64, "hashes": {"sha256": "1" * 64}},
        },
        "is_direct": True,
        "is_yanked": False,
        "requested": True,
        "requested_extras": ["api"],
        "metadata": {"metadata_version": "2.1", "name": name, "version": version},
    }


def vcs_item(name="sampleproject", version="4.0.0", subdirectory=None):
    item = {
        "download_info": {
            "url": "https://github.com/pypa/sampleproject",
            "vcs_info": {"vcs": "git", "requested_revision": "main", "commit_id": COMMIT},
        },
        "is_direct": True,
        "is_yanked": False,
        "requested": False,
        "metadata": {"metadata_version": "2.1", "name": name, "version": version},
    }
    if subdirectory:
        item["download_info"]["subdirectory"] = subdirectory
    return item


def report(*items):
    """A pip installation report (format version 1) as pip writes it, parsed."""
    return json.loads(json.dumps({
        "version": "1",
        "pip_version": "23.2.1",
        "install": list(items),
        "environment": {"implementation_name": "cpython", "python_version": "3.11"},
    }))


def test_index_distributions_pinned_by_version():
    lock = lock_from_report(report(project_item(), index_item("requests", "2.31.0"),
                                   index_item("idna", "3.4")), "my-project")
    assert lock.requirements == ("idna==3.4", "requests==2.31.0")


@pytest.mark.parametrize("project", ["my-project", "My_Project", "my.project", "MY-PROJECT"])
def test_project_itself_excluded_by_canonical_name(project):
    lock = lock_from_report(report(project_item("My_Project"), index_item("six", "1.16.0")),
                            project)
    assert lock.requirements == ("six==1.16.0",)


def test_other_project_not_excluded():
    lock = lock_from_report(report(project_item("My_Project"), index_item("six", "1.16.0")),
                            "my-project-extra")
    assert lock.requirements == (
        "my-project @ file:///run/pbrx-images/wheels/runs/r1/My_Project-1.0.0-py3-none-any.whl",
        "six==1.16.0")


def test_names_canonicalised_and_sorted():
    lock = lock_from_report(report(
        index_item("zope.interface", "6.0"),
        index_item("Django", "4.2.5"),
        index_item("PyYAML", "6.0.1"),
        index_item("typing_extensions", "4.8.0"),
        index_item("A_B.c", "1"),
    ), "foo")
    assert lock.requirements == ("a-b-c==1", "django==4.2.5", "pyyaml==6.0.1",
                                 "typing-extensions==4.8.0", "zope-interface==6.0")


def test_vcs_direct_url_kept_with_commit():
    lock = lock_from_report(report(vcs_item("SampleProject"), index_item("peppercorn", "0.6")),
                            "foo")
    assert lock.requirements == (
        "peppercorn==0.6",
        "sampleproject @ git+https://github.com/pypa/sampleproject@" + COMMIT,
    )


def test_direct_archive_url_kept():
    item = index_item("pkg", "1.0")
    item["is_direct"] = True
    item["download_info"]["url"] = "https://example.com/dist/pkg-1.0.tar.gz"
    lock = lock_from_report(report(item), "foo")
    assert lock.requirements == ("pkg @ https://example.com/dist/pkg-1.0.tar.gz",)


def test_non_direct_distribution_pinned_even_with_a_url():
    # Everything from an index has a download URL; only is_direct keeps it.
    lock = lock_from_report(report(index_item("six", "1.16.0", requested=True)), "foo")
    assert lock.requirements == ("six==1.16.0",)


def test_vcs_subdirectory_kept():
    lock = lock_from_report(report(vcs_item("pkg", subdirectory="python/pkg")), "foo")
    assert lock.requirements == (
        "pkg @ git+https://github.com/pypa/sampleproject@%s#subdirectory=python/pkg" % COMMIT,)


def test_only_the_project_gives_an_empty_lock():
    lock = lock_from_report(report(project_item()), "my-project")
    assert lock.requirements == ()
    assert lock.text() == ""


def test_lock_text_has_one_line_per_requirement():
    assert Lock(("a==1", "b @ git+https://x@y")).text() == "a==1\nb @ git+https://x@y\n"


def test_report_is_not_modified():
    data = report(project_item(), vcs_item(), index_item("six", "1.16.0"))
    before = copy.deepcopy(data)
    lock_from_report(data, "my-project")
    assert data == before


@pytest.mark.parametrize("data", [
    None,
    [],
    "not a report",
    {},
    {"version": "1"},
    {"version": "1", "install": [{"download_info": {"url": "https://x"}}]},
    {"version": "1", "install": [{"metadata": {"name": "six"}}]},
    {"version": "1", "install": [{"metadata": {"version": "1.0"}}]},
    {"version": "1", "install": [{"metadata": {"name": "", "version": "1.0"}}]},
])
def test_malformed_report_raises_build_error(data):
    with pytest.raises(BuildError, match="installation report"):
        lock_from_report(data, "foo")


@pytest.mark.parametrize("data", [
    {"version": "1", "install": None},
    {"version": "1", "install": ["six==1.16.0"]},
    {"version": "1", "install": [{"metadata": None}]},
])
def test_malformed_report_entries_raise_build_error(data):
    with pytest.raises(BuildError):
        lock_from_report(data, "foo")
