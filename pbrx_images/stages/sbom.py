"""The SBOM of an image: its distro packages and Python distributions.

Each image gets a CycloneDX 1.5 JSON document: the operating system (from
os-release), every package its package database lists (as a ``pkg:deb``,
``pkg:apk`` or ``pkg:rpm`` package URL), the virtualenv's interpreter and
every Python distribution the virtualenv sees (``pkg:pypi``).  The document
is reproducible: the same image contents give the same bytes (components
sorted, keys sorted, no timestamp unless ``SOURCE_DATE_EPOCH`` is set, a
serial number derived from the content rather than random).  The sha256 of
those bytes goes into the image's :data:`LABEL_DIGEST` label.

:func:`collect` runs the read-only queries in a build container, and a
:class:`Collection` keeps the documents of one build.  For the images
build-images installs, the queries run once per build, in a container of the
runtime-packages image (the operating system, its packages, the virtualenv's
interpreter): the Python distributions come from pip's resolutions, which
say what went into each image.  An image built from a Dockerfile, which may
change anything, is queried itself.  The rest is pure:
:func:`parse_packages` and :func:`parse_python` read the queries' output,
:func:`document` builds the document, :func:`serialize` its bytes.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote

from pbrx_images import container_tools
from pbrx_images.cache.files import write_whole
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.container_tools import python_distributions
from pbrx_images.engine import CommandFailed, Container, Engine
from pbrx_images.errors import BuildError
from pbrx_images.oci.image_archive import canonical_json
from pbrx_images.plan import VENV
from pbrx_images.plan.os_release import parse_os_release
from pbrx_images.plan.package_manager import DETECT_SCRIPT, PackageManager, from_detect_output
from pbrx_images.project import labels as labels_module

#: The image label holding ``sha256:HEX`` of the image's SBOM file.  Not under
#: ``org.pbrx-images.``: that prefix marks build-time objects (volumes), never images.
LABEL_DIGEST = "io.pbrx-images.sbom.digest"
SPEC_VERSION = "1.5"
FORMAT = "CycloneDX %s JSON" % SPEC_VERSION
SUFFIX = ".cdx.json"
#: Namespace of the serial numbers: uuid5(this, canonical document).
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pbrx-images:sbom")
#: Marks the line of the Python query's output that holds its JSON.
_PYTHON_MARK = python_distributions.MARK
#: ``container_tools/python_distributions.py``, run with the image's virtualenv
#: Python (``-I -B``: no environment, no user site, and no bytecode written into
#: the image), its text given with ``-c`` so that nothing is copied into the image.
PYTHON_QUERY = "if [ -x %s/bin/python ]; then %s/bin/python -I -B -c %s; fi" % (
    VENV, VENV, shlex.quote(container_tools.source("python_distributions.py").decode()))
OS_RELEASE_QUERY = "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true"


@dataclass(frozen=True, order=True)
class DistroPackage:
    """One installed package, as the package database lists it."""

    name: str
    version: str
    arch: str | None = None
    epoch: str | None = None  #: rpm only; dpkg keeps the epoch in the version


@dataclass(frozen=True, order=True)
class PythonDistribution:
    name: str
    version: str


@dataclass(frozen=True)
class Contents:
    """What one image holds, as its package database and virtualenv say."""

    os_release: Mapping[str, str]
    purl_type: str | None  #: deb, apk or rpm; None when no package database was found
    packages: tuple[DistroPackage, ...]
    interpreter: tuple[str, str] | None  #: (implementation, version) of the venv's python
    python: tuple[PythonDistribution, ...]


def parse_packages(purl_type: str, output: str) -> tuple[DistroPackage, ...]:
    """The installed packages in the output of ``PackageManager.query_command()``.

    Lines of another shape (warnings a tool prints) are skipped; the result
    is sorted and has no duplicates.
    """
    found: set[DistroPackage] = set()
    if purl_type == "apk":
        record: dict[str, str] = {}
        for line in output.splitlines() + [""]:
            if not line.strip():
                if record.get("P") and record.get("V"):
                    found.add(DistroPackage(record["P"], record["V"], record.get("A")))
                record = {}
            elif len(line) > 2 and line[1] == ":" and line[0] in "PVA":
                record[line[0]] = line[2:].strip()
        return tuple(sorted(found))
    for line in output.splitlines():
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 4 or not all(field.strip() for field in fields[1:]):
            continue
        if purl_type == "deb":
            status, name, version, arch = (field.strip() for field in fields)
            if len(status) >= 2 and status[1] == "i":  # "ii", "hi": installed
                found.add(DistroPackage(name, version, arch))
        else:
            name, epoch, version, arch = (field.strip() for field in fields)
            if name == "gpg-pubkey":  # a signing key rpm keeps as a package, not software
                continue
            found.add(DistroPackage(name, version, None if arch == "(none)" else arch,
                                    None if epoch in ("(none)", "") else epoch))
    return tuple(sorted(found))


def parse_python(output: str) -> tuple[tuple[str, str] | None,
                                       tuple[PythonDistribution, ...]]:
    """(interpreter, distributions) from the output of :data:`PYTHON_QUERY`."""
    for line in reversed(output.splitlines()):
        if line.startswith(_PYTHON_MARK):
            data = json.loads(line[len(_PYTHON_MARK):])
            implementation, version = data["interpreter"]
            distributions = {PythonDistribution(str(name), str(version_))
                             for name, version_ in data["distributions"]}
            return (str(implementation), str(version)), tuple(sorted(distributions))
    return None, ()


def contents_to_json(contents: Contents) -> dict[str, Any]:
    """``contents`` as JSON-serialisable data (:func:`contents_from_json` reads it)."""
    return {"os_release": dict(contents.os_release), "purl_type": contents.purl_type,
            "packages": [[package.name, package.version, package.arch, package.epoch]
                         for package in contents.packages],
            "interpreter": list(contents.interpreter) if contents.interpreter else None,
            "python": [[item.name, item.version] for item in contents.python]}


def contents_from_json(data: Mapping[str, Any]) -> Contents:
    """The :class:`Contents` that :func:`contents_to_json` wrote."""
    interpreter = data["interpreter"]
    return Contents(
        {str(key): str(value) for key, value in data["os_release"].items()},
        None if data["purl_type"] is None else str(data["purl_type"]),
        tuple(DistroPackage(str(package[0]), str(package[1]),
                            *(None if field is None else str(field) for field in package[2:]))
              for package in data["packages"]),
        None if interpreter is None else (str(interpreter[0]), str(interpreter[1])),
        tuple(PythonDistribution(str(name), str(version)) for name, version in data["python"]))


def collect(container: Container, manager: PackageManager | None, image: str) -> Contents:
    """Query the packages and Python distributions in ``container`` (read-only).

    ``manager`` None means the image's package manager is unknown; it is
    then detected.  ``image`` names the image in error messages.
    """
    def run(what: str, command: str) -> str:
        try:
            return container.run(command)
        except CommandFailed as failure:
            lines = [line.strip() for line in failure.output.splitlines() if line.strip()]
            raise BuildError(
                "Listing %s of %s for its SBOM failed (exit status %d: %s): check that the "
                "image's package database and %s are intact; the log has the full output."
                % (what, image, failure.exit_code, lines[-1] if lines else "no output", VENV)
            ) from failure

    os_release = parse_os_release(run("the operating system", OS_RELEASE_QUERY))
    if manager is None:
        manager = from_detect_output(run("the package manager", DETECT_SCRIPT))
    packages: tuple[DistroPackage, ...] = ()
    if manager is not None:
        packages = parse_packages(manager.purl_type,
                                  run("the distro packages", manager.query_command()))
    interpreter, python = parse_python(run("the Python distributions", PYTHON_QUERY))
    return Contents(os_release, manager.purl_type if manager else None, packages,
                    interpreter, python)


class Collection:
    """The SBOM of each image of one build, made before the image is committed.

    ``container_name`` gives the name of a new build container for a role.
    """

    def __init__(self, engine: Engine, container_name: Callable[[str], str],
                 manager: PackageManager, created: str | None,
                 facts: ImageFacts | None = None) -> None:
        self.engine = engine
        self.facts = facts
        self.container_name = container_name
        self.manager = manager
        self.created = created
        self.tool_version = tool_version()
        self.contents: dict[str, Contents] = {}  #: image name -> contents
        self.documents: dict[str, bytes] = {}  #: image name -> SBOM file bytes
        #: the runtime-packages image's contents, shared by the images installed on it
        self.runtime: Contents | None = None

    def read_runtime(self, runtime_image: str, engine: Engine | None = None) -> None:
        """Query the runtime-packages image, whose packages every installed image has.

        Once per image ID: what the query found is kept in ``facts``.
        ``engine``: the one to use instead of the collection's (another thread's).
        """
        engine = engine if engine is not None else self.engine
        found = engine.image(runtime_image)
        image_id = found.id if found is not None else runtime_image
        known = self.facts.get("sbom", image_id) if self.facts is not None else None
        if known is not None:
            try:
                self.runtime = contents_from_json(known)
                return
            except (KeyError, TypeError, ValueError):
                pass  # written by another version: query again
        with engine.container(image_id, self.container_name("sbom")) as container:
            self.runtime = collect(container, self.manager, runtime_image)
        if self.facts is not None:
            self.facts.put("sbom", image_id, contents_to_json(self.runtime))

    def label(self, name: str, contents: Contents) -> dict[str, str]:
        """Make the SBOM of the image ``name``; the label with its digest."""
        self.contents[name] = contents
        data = serialize(document(contents, name, self.tool_version, self.created))
        self.documents[name] = data
        return {LABEL_DIGEST: digest(data)}

    def collector(self, name: str
                  ) -> Callable[[Sequence[tuple[str, str]]], dict[str, str]]:
        """What Runtime.install calls with the Python distributions of the image ``name``.

        The image is the runtime-packages image (:meth:`read_runtime`) plus
        those distributions.
        """
        def label(python: Sequence[tuple[str, str]]) -> dict[str, str]:
            if self.runtime is None:
                raise AssertionError("read_runtime() comes before the images' SBOMs")
            return self.label(name, replace(self.runtime, python=tuple(sorted(
                {PythonDistribution(name_, version) for name_, version in python}))))
        return label

    def labelled(self, name: str, unlabelled: str, work_tag: str) -> str:
        """An image built from a Dockerfile, queried, then given its SBOM label.

        Its package manager is detected: the Dockerfile may change anything.
        The label is added by a build of ``FROM unlabelled`` that changes
        only the configuration; the new image's ID is returned.
        """
        with self.engine.container(unlabelled, self.container_name("sbom")) as container:
            labels = self.label(name, collect(container, None, name))
        return self.engine.build_from_text("FROM %s\n" % unlabelled, work_tag, labels)


def timestamp(environ: Mapping[str, str]) -> str | None:
    """The SBOM's timestamp: only from ``SOURCE_DATE_EPOCH`` (none keeps it reproducible)."""
    if environ.get("SOURCE_DATE_EPOCH") is None:
        return None
    return labels_module.created(environ)


def _encode(text: str) -> str:
    """Percent-encoding of a package URL segment (``:`` may stay, as in ``1:2.0``)."""
    return quote(text, safe="").replace("%3A", ":")


def purl(purl_type: str, namespace: str | None, name: str, version: str,
         qualifiers: Mapping[str, str | None] | None = None) -> str:
    """A package URL, qualifiers sorted by key and empty ones left out."""
    result = "pkg:%s/" % purl_type
    if namespace:
        result += _encode(namespace) + "/"
    result += "%s@%s" % (_encode(name), _encode(version))
    pairs = sorted((key, value) for key, value in (qualifiers or {}).items() if value)
    if pairs:
        result += "?" + "&".join("%s=%s" % (key, quote(value, safe=":/"))
                                 for key, value in pairs)
    return result


def pypi_name(name: str) -> str:
    """The name as a ``pkg:pypi`` URL has it: lower case, ``_`` as ``-``."""
    return name.lower().replace("_", "-")


def _distro(os_release: Mapping[str, str]) -> str | None:
    """``debian-12``: the os-release ID and VERSION_ID (or codename)."""
    os_id = os_release.get("ID", "").lower()
    version = os_release.get("VERSION_ID") or os_release.get("VERSION_CODENAME")
    return "%s-%s" % (os_id, version) if os_id and version else None


def _package_component(contents: Contents, package: DistroPackage) -> dict[str, Any]:
    purl_type = contents.purl_type or ""
    vendor = contents.os_release.get("ID", "").lower() or None
    name = package.name.lower() if purl_type in ("deb", "apk") else package.name
    version = package.version
    qualifiers = {"arch": package.arch, "distro": _distro(contents.os_release),
                  "epoch": package.epoch}
    component = {"type": "library", "name": package.name,
                 "version": ("%s:%s" % (package.epoch, version)) if package.epoch else version,
                 "purl": purl(purl_type, vendor, name, version, qualifiers)}
    component["bom-ref"] = component["purl"]
    return component


def _python_component(distribution: PythonDistribution) -> dict[str, Any]:
    reference = purl("pypi", None, pypi_name(distribution.name), distribution.version)
    return {"type": "library", "name": distribution.name, "version": distribution.version,
            "purl": reference, "bom-ref": reference}


def document(contents: Contents, image: str, tool_version: str,
             created: str | None = None) -> dict[str, Any]:
    """The CycloneDX document of the image named ``image`` (``repository:tag``).

    The document names the image by its last path component only: with
    the registry, prefix or tag in it, the same contents under another
    name would get another SBOM digest label, so another image ID.
    """
    repository = image.rpartition(":")[0] or image
    short_name = repository.rsplit("/", 1)[-1]
    components: list[dict[str, Any]] = []
    release = contents.os_release
    if release.get("ID"):
        os_component = {"type": "operating-system", "name": release["ID"].lower(),
                        "bom-ref": "os:%s" % (_distro(release) or release["ID"].lower())}
        if release.get("VERSION_ID"):
            os_component["version"] = release["VERSION_ID"]
        if release.get("PRETTY_NAME"):
            os_component["description"] = release["PRETTY_NAME"]
        components.append(os_component)
    if contents.purl_type:
        components.extend(_package_component(contents, package)
                          for package in contents.packages)
    if contents.interpreter:
        implementation, version = contents.interpreter
        reference = purl("generic", None, implementation.lower(), version)
        components.append({"type": "application", "name": implementation.lower(),
                           "version": version, "purl": reference, "bom-ref": reference,
                           "properties": [{"name": "pbrx-images:virtualenv",
                                           "value": VENV}]})
    components.extend(_python_component(distribution) for distribution in contents.python)
    unique = {component["bom-ref"]: component for component in components}
    image_ref = "image:%s" % short_name
    metadata: dict[str, Any] = {
        "tools": {"components": [{"type": "application", "name": "pbrx-images",
                                  "version": tool_version}]},
        "component": {"type": "container", "bom-ref": image_ref, "name": short_name},
    }
    if created:
        metadata["timestamp"] = created
    result: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": metadata,
        "components": sorted(unique.values(), key=_component_order),
    }
    canonical = canonical_json(result).decode()
    result["serialNumber"] = "urn:uuid:%s" % uuid.uuid5(_SERIAL_NAMESPACE, canonical)
    return result


_TYPE_ORDER = {"operating-system": 0, "library": 1, "application": 1}


def _component_order(component: Mapping[str, Any]) -> tuple[int, str, str]:
    return (_TYPE_ORDER.get(component["type"], 2), component["purl"].split("/")[0]
            if "purl" in component else "", component["bom-ref"])


def serialize(data: Mapping[str, Any]) -> bytes:
    """The document's bytes: sorted keys, two-space indent, UTF-8, final newline."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tool_version() -> str:
    """This build-images' version, as the SBOM names its tool."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("pbrx-images")
        except PackageNotFoundError:
            return "unknown"
    except ImportError:  # pragma: no cover
        return "unknown"


def file_name(image: str) -> str:
    """``registry_5000_team_app_latest.cdx.json`` for ``registry:5000/team/app:latest``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", image) + SUFFIX


def write(directory: Path, documents: Mapping[str, bytes]) -> dict[str, Path]:
    """Write each image's SBOM into ``directory``; return {image: path}."""
    paths = {}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for image, data in sorted(documents.items()):
            path = directory / file_name(image)
            write_whole(path, data)
            paths[image] = path.resolve()
    except OSError as error:
        raise BuildError("Cannot write the SBOMs into %s (%s): give a writable directory "
                         "with --sbom-dir." % (directory, error.strerror or error)) from None
    return paths
