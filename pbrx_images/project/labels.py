"""The OCI annotations every image gets as labels.

``org.opencontainers.image.*`` (see the OCI image spec's annotations):
title, version, revision and source of the project, when the image was
created (``SOURCE_DATE_EPOCH`` when set, for reproducible builds), and the
base image's name and digest.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

from pbrx_images.errors import BuildError
from pbrx_images.project.urls import redact

PREFIX = "org.opencontainers.image."


def source_date_epoch(environ: Mapping[str, str], default: int | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` as a number of seconds, else ``default``."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return default
    try:
        value = int(epoch)
        datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise BuildError("SOURCE_DATE_EPOCH=%r is not a number of seconds since 1970: set "
                         "it to one (e.g. git log -1 --format=%%ct) or unset it." % epoch
                         ) from None
    return value


def created(environ: Mapping[str, str]) -> str:
    """RFC 3339 time of the build: ``SOURCE_DATE_EPOCH`` when set, else now."""
    epoch = source_date_epoch(environ)
    if epoch is not None:
        moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    else:
        moment = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def git_origin(project_dir: Path) -> tuple[str | None, str | None]:
    """(commit, remote URL) when the project is a git checkout and git is installed."""
    git = shutil.which("git")
    if git is None or not (project_dir / ".git").exists():
        return None, None

    def ask(*args: str) -> str | None:
        try:
            completed = subprocess.run(
                [git, "-C", str(project_dir), *args], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30,
                env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"))  # never write the index
        except (OSError, subprocess.TimeoutExpired):
            return None
        value = completed.stdout.decode("utf-8", "replace").strip()
        return value if completed.returncode == 0 and value else None

    remote = ask("config", "--get", "remote.origin.url")
    return ask("rev-parse", "HEAD"), redact(remote) if remote else None


def oci_labels(title: str, version: str | None, revision: str | None, source: str | None,
               created_at: str, base_name: str, base_digest: str) -> dict[str, str]:
    """The labels of one image; unknown values are left out rather than empty."""
    values = {"title": title, "version": version, "revision": revision, "source": source,
              "created": created_at, "base.name": base_name, "base.digest": base_digest}
    return {PREFIX + key: value for key, value in values.items() if value}
