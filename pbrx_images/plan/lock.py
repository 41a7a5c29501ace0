"""The resolved set of distributions a build installs.

The builder resolves the project with every extra any image needs once
(``pip install --dry-run --report``); the result, pinned, is the lock every
later pip step is constrained by, so all images get the same versions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from packaging.utils import canonicalize_name

from pbrx_images.errors import BuildError


@dataclass(frozen=True)
class Lock:
    """Pinned requirements, one per distribution, sorted by name."""

    requirements: tuple[str, ...]

    def text(self) -> str:
        return "".join(line + "\n" for line in self.requirements)


def lock_from_report(report: Mapping[str, Any], project: str) -> Lock:
    """Pin everything in a pip installation report except ``project`` itself.

    Distributions pip got from an index or a wheel file are pinned by
    version; ones from a VCS or a direct URL keep that URL.
    """
    install = report.get("install") if isinstance(report, Mapping) else None
    if not isinstance(install, list):
        raise BuildError(_NOT_A_REPORT)
    project_key = canonicalize_name(project)
    lines = {}
    for item in install:
        item = item if isinstance(item, Mapping) else {}
        metadata = _mapping(item.get("metadata"))
        name, version = metadata.get("name"), metadata.get("version")
        if not (isinstance(name, str) and _NAME.fullmatch(name) and _is_word(version)):
            raise BuildError("pip's installation report lists a distribution without a name "
                             "or version: update pip in the builder (run again with --no-cache).")
        key = canonicalize_name(name)
        if key == project_key:
            continue
        download = _mapping(item.get("download_info"))
        if item.get("is_direct") and download.get("url"):
            lines[key] = "%s @ %s" % (key, _direct_url(download))
        else:
            lines[key] = "%s==%s" % (key, version)
    return Lock(tuple(lines[key] for key in sorted(lines)))


_NOT_A_REPORT = ("pip's installation report is not in the expected format: "
                 "update pip in the builder (run again with --no-cache).")

# A distribution name (PEP 508).
_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _direct_url(download: Mapping[str, Any]) -> str:
    """The URL of a direct distribution, as a requirement line gives it."""
    url = download["url"]
    vcs = download.get("vcs_info")
    subdirectory = download.get("subdirectory")
    if not (_is_word(url) and (not vcs or isinstance(vcs, Mapping))
            and (not subdirectory or _is_word(subdirectory))):
        raise BuildError(_NOT_A_REPORT)
    if vcs:
        tool, commit = vcs.get("vcs"), vcs.get("commit_id", "")
        if not (_is_word(tool) and (commit == "" or _is_word(commit))):
            raise BuildError(_NOT_A_REPORT)
        url = "%s+%s@%s" % (tool, url, commit)
    if subdirectory:
        url += "#subdirectory=" + subdirectory
    return url


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_word(value: Any) -> bool:
    """True for a non-empty string without whitespace: one word of a requirement line."""
    return isinstance(value, str) and bool(value) and not re.search(r"\s", value)
