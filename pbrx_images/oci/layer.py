"""Image layers: a virtualenv split into one layer per distribution.

Pure code.  :func:`split` decides from each distribution's
``*.dist-info/RECORD`` which changed file of a :class:`~pbrx_images.oci.tar.Tree`
belongs to which layer (byte code with its source; files no RECORD claims,
or two do, go to a leftovers layer), :func:`group` keeps an image within
:data:`MAX_LAYERS`, and :func:`layer_entries` gives a layer's entries with
their parents, for :func:`pbrx_images.oci.tar.write_layer`.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import posixpath
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from packaging.utils import canonicalize_name

from pbrx_images.oci.tar import Entry, Signature, Tree, parents
from pbrx_images.project.wheel_metadata import core_metadata

#: The layers of an image, its base's included, stay at or below this.
MAX_LAYERS = 100
#: mtime of every entry when SOURCE_DATE_EPOCH is not set.
DEFAULT_EPOCH = 0
#: Files pip writes that only record how and from where it installed: left out.
NOISE = ("direct_url.json", "REQUESTED")
_PYC = re.compile(r"^(?P<dir>.*?)/?__pycache__/(?P<stem>[^/.]+)\.[^/]*\.pyc$")


def parse_record(text: str) -> list[str]:
    """The paths a ``RECORD`` file lists (PEP 376 / the wheel spec: CSV rows)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def without_noise(tree: Tree) -> Tree:
    """``tree`` without install-time noise, RECORD files rewritten to match.

    ``direct_url.json`` names the wheel file pip installed from (a path that
    changes from run to run); ``REQUESTED`` depends on how pip was called (a
    distribution's layer must not); ``INSTALLER`` is constant and stays.
    """
    entries = dict(tree.entries)
    dropped = [path for path in entries if posixpath.basename(path) in NOISE
               and posixpath.dirname(path).endswith(".dist-info")]
    for path in dropped:
        del entries[path]
        record = posixpath.join(posixpath.dirname(path), "RECORD")
        old = entries.get(record)
        if old is None or old.kind != "file":
            continue
        text = tree.read(old).decode("utf-8")
        listed = posixpath.join(posixpath.basename(posixpath.dirname(path)),
                                posixpath.basename(path))
        lines = [line for line in text.splitlines(keepends=True)
                 if parse_record(line)[:1] != [listed]]
        data = "".join(lines).encode("utf-8")
        entries[record] = dataclasses.replace(
            old, size=len(data), offset=-1, digest=hashlib.sha256(data).hexdigest(), data=data)
    return Tree(tree.spool, entries)


def pyc_source(path: str) -> str | None:
    """``a/__pycache__/b.cpython-311.pyc`` -> ``a/b.py``; ``a/b.pyc`` -> ``a/b.py``."""
    match = _PYC.match(path)
    if match:
        return posixpath.join(match.group("dir"), match.group("stem") + ".py")
    if path.endswith(".pyc"):
        return path[:-1]
    return None


@dataclass
class LayerPlan:
    """The files of one layer, and what to call it."""

    description: str  #: e.g. "psycopg2 2.9.9"; "3 smaller distributions: a, b, c"
    paths: list[str]
    size: int = 0
    kind: str = "dependency"  #: "dependency", "group", "leftovers", "project", "user"
    whiteouts: list[str] = field(default_factory=list)  #: removed paths
    name: str = ""  #: the distribution's canonical name (one-distribution layers)


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    record: str  #: path of its RECORD file


#: The directories whose ``*.dist-info`` are installed distributions: the
#: virtualenv's ``lib/pythonX.Y/site-packages`` (Debian's Python: dist-packages).
SITE_DIRECTORIES = ("site-packages", "dist-packages")


def is_installed_record(path: str) -> bool:
    """True for the RECORD of an installed distribution: ``SITE/NAME.dist-info/RECORD``.

    A ``*.dist-info`` below a package is not one: setuptools keeps the
    metadata of the copies it vendors in ``setuptools/_vendor/``
    (``packaging``, ``jaraco.text``, ``zipp``, ``wheel``...), and its own
    RECORD lists those files, so they belong to setuptools' layer.
    """
    directory, base = posixpath.split(path)
    return (base == "RECORD" and directory.endswith(".dist-info")
            and posixpath.basename(posixpath.dirname(directory)) in SITE_DIRECTORIES)


def distributions(tree: Tree, paths: Iterable[str]) -> list[Distribution]:
    """The installed distributions (:func:`is_installed_record`) whose RECORD is among
    ``paths``."""
    found = []
    for path in sorted(paths):
        if not is_installed_record(path):
            continue
        directory = posixpath.dirname(path)
        stem = posixpath.basename(directory)[:-len(".dist-info")]
        name, _, version = stem.partition("-")
        metadata = tree.entries.get(posixpath.join(directory, "METADATA"))
        if metadata is not None and metadata.kind == "file":
            fields = core_metadata(tree.read(metadata))
            name, version = (fields.name or name).strip(), (fields.version or version).strip()
        found.append(Distribution(name, version, path))
    return found


def changes(tree: Tree, parent: Mapping[str, Signature]) -> tuple[
        list[str], list[str]]:
    """(paths new or changed since ``parent``, paths ``parent`` had that are gone)."""
    changed = [path for path, entry in tree.entries.items()
               if entry.kind != "dir" and parent.get(path) != entry.signature]
    current = tree.entries
    removed = [path for path in parent if path not in current]
    return sorted(changed), sorted(removed)


def split(tree: Tree, parent: Mapping[str, Signature],
          project: str) -> list[LayerPlan]:
    """One layer per distribution new since ``parent``, bottom first.

    Files each new distribution's RECORD claims go to its layer (RECORD
    paths are relative to the directory holding the ``.dist-info``), byte
    code with its source; files no RECORD claims, or that two claim, go to a
    leftovers layer, with the removals.  Dependencies come largest first
    (the most stable at the bottom), then the leftovers, then ``project``.
    """
    changed, removed = changes(tree, parent)
    changed_set = set(changed)
    owners: dict[str, set[int]] = {}
    dists = distributions(tree, changed)
    for number, dist in enumerate(dists):
        site = posixpath.dirname(posixpath.dirname(dist.record))
        for listed in parse_record(tree.read(tree.entries[dist.record]).decode("utf-8")):
            path = posixpath.normpath(posixpath.join(site, listed)).lstrip("/")
            if path in changed_set:
                owners.setdefault(path, set()).add(number)
    files: dict[int, list[str]] = {number: [] for number in range(len(dists))}
    leftovers: list[str] = []
    for path in changed:
        claim = owners.get(path)
        if claim is None:
            source = pyc_source(path)
            claim = owners.get(source) if source else None
        if claim is not None and len(claim) == 1:
            files[next(iter(claim))].append(path)
        else:
            leftovers.append(path)
    project_key = canonicalize_name(project)
    layers = []
    top = []
    for number, dist in enumerate(dists):
        paths = files[number]
        layer = LayerPlan("%s %s" % (dist.name, dist.version), paths,
                          sum(tree.entries[path].size for path in paths),
                          name=canonicalize_name(dist.name))
        if canonicalize_name(dist.name) == project_key:
            layer.kind = "project"
            top.append(layer)
        else:
            layers.append(layer)
    if leftovers or removed:
        layers.append(LayerPlan("files of no or of several distributions", leftovers,
                                sum(tree.entries[path].size for path in leftovers),
                                "leftovers", removed))
    return stacked(layers + top)


def ordered(layers: Iterable[LayerPlan]) -> list[LayerPlan]:
    """Dependencies from the most stable (largest) to the least."""
    return sorted(layers, key=lambda layer: (-layer.size, layer.description))


def stacked(layers: Iterable[LayerPlan]) -> list[LayerPlan]:
    """The order of an image's layers: dependencies (:func:`ordered`), the
    leftovers, the project's own on top."""
    layers = list(layers)
    return (ordered(layer for layer in layers if layer.kind not in ("leftovers", "project"))
            + [layer for layer in layers if layer.kind == "leftovers"]
            + [layer for layer in layers if layer.kind == "project"])


def group(layers: Sequence[LayerPlan], budget: int) -> tuple[list[LayerPlan], list[str]]:
    """At most ``budget`` (>= 1) layers: the smallest dependencies share one.

    Returns the layers and the descriptions of the distributions grouped.
    """
    if len(layers) <= budget:
        return list(layers), []
    dependencies = [layer for layer in layers if layer.kind == "dependency"]
    others = [layer for layer in layers if layer.kind != "dependency"]
    keep = max(budget - len(others) - 1, 0)
    by_size = ordered(dependencies)
    kept, grouped = by_size[:keep], by_size[keep:]
    merged = LayerPlan("%d smaller distributions: %s" % (
        len(grouped), ", ".join(layer.description for layer in grouped)),
        sorted(path for layer in grouped for path in layer.paths),
        sum(layer.size for layer in grouped), "group")
    result = kept + [merged] + others
    if len(result) > budget:  # more non-dependency layers than the budget: one for all
        everything = LayerPlan("all distributions", sorted(
            path for layer in result for path in layer.paths),
            sum(layer.size for layer in result), "group",
            sorted(path for layer in result for path in layer.whiteouts))
        return [everything], [layer.description for layer in layers]
    return result, [layer.description for layer in grouped]


#: A list of layers longer than this is said in short (:func:`layers_summary`).
LISTED_LAYERS = 8
#: How many of the largest dependency layers a summary names.
LARGEST_NAMED = 3


def human_size(size: int) -> str:
    """``1234567`` -> ``1.2 MB``; ``20500`` -> ``20.5 kB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return "%.1f %s" % (size / scale, unit)
    return "%d B" % size


def layers_summary(layers: Sequence[tuple[str, str, int]]) -> tuple[str, str | None]:
    """The line that says which layers an image got, and the whole list when it is long.

    ``layers``: (description, kind, size in bytes) of each, bottom first.  Up
    to :data:`LISTED_LAYERS` are named in one line, as ``N layers: a; b``;
    more are said in short (Zuul's images have 160 distributions: one line
    of 5,000 characters was unreadable in a job log): how many, the largest
    few dependencies with their sizes, how many share the layer of the
    smaller ones, the layers that are not dependencies by name.  The
    second item is then the whole list (for ``-v``, the log), else None.
    """
    named = [description for description, _, _ in layers]
    whole = "%d layers: %s" % (len(layers), "; ".join(named))
    if len(layers) <= LISTED_LAYERS:
        return whole, None
    dependencies = sorted((item for item in layers if item[1] == "dependency"),
                          key=lambda item: (-item[2], item[0]))
    parts = ["the largest " + ", ".join("%s (%s)" % (description, human_size(size))
                                        for description, _, size in
                                        dependencies[:LARGEST_NAMED])] if dependencies else []
    rest = len(dependencies) - LARGEST_NAMED
    if rest > 0:
        parts.append("%d more distribution%s" % (rest, "" if rest == 1 else "s"))
    for description, kind, _ in layers:
        if kind == "group":
            parts.append("%s in one layer" % description.partition(":")[0])
        elif kind != "dependency":
            parts.append(description)
    return "%d layers: %s (-v lists them all)" % (len(layers), "; ".join(parts)), whole


def layer_entries(tree: Tree, layer: LayerPlan) -> list[Entry]:
    """The layer's entries with their parent directories, in tar order."""
    selected: dict[str, Entry] = {}
    for path in list(layer.paths) + list(layer.whiteouts):
        for directory in parents(path):
            if directory not in selected:
                known = tree.entries.get(directory)
                selected[directory] = known if known is not None and known.kind == "dir" \
                    else Entry(directory, "dir", 0o755)
    for path in layer.paths:
        entry = tree.entries[path]
        target = tree.entries.get(entry.linkname) if entry.kind == "link" else None
        if target is not None and entry.linkname not in layer.paths:
            # a hard link to a file of another layer: a copy of the file instead
            entry = dataclasses.replace(target, path=path)
        selected[path] = entry
    for path in layer.whiteouts:
        head, tail = posixpath.split(path)
        whiteout = posixpath.join(head, ".wh." + tail)
        selected[whiteout] = Entry(whiteout, "file", 0o644, data=b"",
                                   digest=hashlib.sha256(b"").hexdigest())
    return [selected[path] for path in sorted(selected)]
