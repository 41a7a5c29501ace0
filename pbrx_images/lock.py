"""The resolved set of distributions a build installs.

The builder resolves the project with every extra any image needs once
(``pip install --dry-run --report``); the result, pinned, is the lock every
later pip step is constrained by, so all images get the same versions.
"""
from __future__ import annotations

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
        raise BuildError("pip's installation report is not in the expected format: "
                         "update pip in the builder (run again with --no-cache).")
    project_key = canonicalize_name(project)
    lines = {}
    for item in install:
        metadata = item.get("metadata") if isinstance(item, Mapping) else None
        if not isinstance(metadata, Mapping):
            metadata = {}
        name, version = metadata.get("name"), metadata.get("version")
        if not name or not version:
            raise BuildError("pip's installation report lists a distribution without a name "
                             "or version: update pip in the builder (run again with --no-cache).")
        key = canonicalize_name(name)
        if key == project_key:
            continue
        download = item.get("download_info") or {}
        if item.get("is_direct") and download.get("url"):
            url = download["url"]
            vcs = download.get("vcs_info")
            if vcs:
                url = "%s+%s@%s" % (vcs["vcs"], url, vcs.get("commit_id", ""))
            if download.get("subdirectory"):
                url += "#subdirectory=" + download["subdirectory"]
            lines[key] = "%s @ %s" % (key, url)
        else:
            lines[key] = "%s==%s" % (key, version)
    return Lock(tuple(lines[key] for key in sorted(lines)))
