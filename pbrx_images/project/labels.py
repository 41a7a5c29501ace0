"""The OCI annotations every image gets as labels.

``org.opencontainers.image.*`` (see the OCI image spec's annotations):
title, version, revision and source of the project, when the image was
created (``SOURCE_DATE_EPOCH`` when set, for reproducible builds), and the
base image's name and digest.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

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


def _git(project_dir: Path) -> Callable[..., str | None] | None:
    """A function that asks git about the checkout ``project_dir``; None when it is none."""
    git = shutil.which("git")
    if git is None or not (project_dir / ".git").exists():
        return None

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
    return ask


def git_origin(project_dir: Path) -> tuple[str | None, str | None]:
    """(commit, remote URL) when the project is a git checkout and git is installed."""
    ask = _git(project_dir)
    if ask is None:
        return None, None
    remote = ask("config", "--get", "remote.origin.url")
    return ask("rev-parse", "HEAD"), redact(remote) if remote else None


def git_state(project_dir: Path, today: datetime.date | None = None) -> str:
    """What a version taken from git may depend on, as one line.

    pbr and setuptools-scm make the version from ``git describe`` (the
    last tag, the commits since, HEAD) and whether tracked files have
    uncommitted changes; setuptools-scm adds the date to the version of such
    a tree, so a dirty tree's state has the date too.  The tracked files'
    names count as well (pbr and setuptools-scm list the package's files
    from git).  "no git" when the project is no checkout or git is missing.
    """
    ask = _git(project_dir)
    if ask is None:
        return "no git"
    described = ask("describe", "--tags", "--long", "--dirty", "--always") or "no commit"
    tracked = hashlib.sha256((ask("ls-files", "-z") or "").encode()).hexdigest()
    state = "%s; HEAD %s; tracked files %s" % (described, ask("rev-parse", "HEAD"), tracked)
    if described.endswith("-dirty"):
        today = today or datetime.date.today()
        state += "; dirty on %s (UTC %s)" % (
            today.isoformat(), datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    return state


def with_given(labels: Mapping[str, str], given: Sequence[tuple[str, str]]
               ) -> dict[str, str]:
    """``labels`` with the user's (``--label``, settings' ``labels``) after and over them."""
    return {**labels, **dict(given)}


def overridden(labels: Mapping[str, str], given: Sequence[tuple[str, str]]
               ) -> dict[str, tuple[str, str]]:
    """Key -> (build-images' value, the given one) for each given label that replaces one."""
    return {key: (labels[key], value) for key, value in given
            if key in labels and labels[key] != value}


def oci_labels(title: str, version: str | None, revision: str | None, source: str | None,
               created_at: str, base_name: str, base_digest: str) -> dict[str, str]:
    """The labels of one image; unknown values are left out rather than empty."""
    values = {"title": title, "version": version, "revision": revision, "source": source,
              "created": created_at, "base.name": base_name, "base.digest": base_digest}
    return {PREFIX + key: value for key, value in values.items() if value}
