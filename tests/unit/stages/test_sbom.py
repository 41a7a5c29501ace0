"""The SBOM documents: parsing the package queries, package URLs, the document."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from pbrx_images.errors import BuildError
from pbrx_images.plan.package_manager import MANAGERS, PackageManager
from pbrx_images.stages import sbom
from pbrx_images.stages.sbom import Contents, DistroPackage, PythonDistribution

DPKG_OUTPUT = (
    "ii \tlibc6\t2.36-9+deb12u4\tamd64\n"
    "ii \tlibpq5\t15.5-0+deb12u1\tamd64\n"
    "rc \told-removed\t1.0-1\tamd64\n"  # removed, only its configuration files left
    "dpkg-query: warning: parsing file '/var/lib/dpkg/status' near line 5\n"
    "hi \tlibssl3\t3.0.11-1~deb12u2\tamd64\n"  # held, installed
    "ii \ttzdata\t2024a-0+deb12u1\tall\n"
    "ii \tlibgcc-s1\t1:12.2.0-14\tamd64\n"
)
APK_OUTPUT = """\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
T:the musl c library (libc) implementation

P:py3-foo-2
V:1.0_rc1-r0
A:noarch
"""
RPM_OUTPUT = (
    "bash\t(none)\t5.2.15-5.fc39\tx86_64\n"
    "openssl-libs\t1\t3.1.1-4.fc39\tx86_64\n"
    "gpg-pubkey\t(none)\t18b8e74c-62f2920f\t(none)\n"
    "Error: ignore me\n"
    "libpq\t(none)\t16.1-1.fc39\tx86_64\n"
)
DEBIAN = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm",
          "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


def _contents(**changes):
    values = dict(
        os_release=DEBIAN, purl_type="deb",
        packages=(DistroPackage("libpq5", "15.5-0+deb12u1", "amd64"),
                  DistroPackage("libc6", "2.36-9+deb12u4", "amd64"),
                  DistroPackage("libgcc-s1", "1:12.2.0-14", "amd64")),
        interpreter=("CPython", "3.11.2"),
        python=(PythonDistribution("psycopg2", "2.9.9"),
                PythonDistribution("pgtool", "1.0.0"),
                PythonDistribution("Zope_Interface", "6.1+local")))
    values.update(changes)
    return Contents(**values)


def _validate(document):
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(document))
    assert error is None, getattr(error, "data", error).message


def test_dpkg_output_lists_installed_packages_only():
    assert sbom.parse_packages("deb", DPKG_OUTPUT) == (
        DistroPackage("libc6", "2.36-9+deb12u4", "amd64"),
        DistroPackage("libgcc-s1", "1:12.2.0-14", "amd64"),
        DistroPackage("libpq5", "15.5-0+deb12u1", "amd64"),
        DistroPackage("libssl3", "3.0.11-1~deb12u2", "amd64"),
        DistroPackage("tzdata", "2024a-0+deb12u1", "all"))


def test_apk_database_gives_name_version_and_arch():
    assert sbom.parse_packages("apk", APK_OUTPUT) == (
        DistroPackage("musl", "1.2.4-r2", "x86_64"),
        DistroPackage("py3-foo-2", "1.0_rc1-r0", "noarch"))


def test_rpm_output_keeps_epoch_and_drops_signing_keys():
    assert sbom.parse_packages("rpm", RPM_OUTPUT) == (
        DistroPackage("bash", "5.2.15-5.fc39", "x86_64"),
        DistroPackage("libpq", "16.1-1.fc39", "x86_64"),
        DistroPackage("openssl-libs", "3.1.1-4.fc39", "x86_64", "1"))


def test_every_manager_has_a_query_and_purl_type():
    types = {name: PackageManager(name).purl_type for name in MANAGERS}
    assert types == {"apt": "deb", "apk": "apk", "dnf": "rpm", "microdnf": "rpm",
                     "yum": "rpm"}
    assert PackageManager("apt").query_command().startswith("dpkg-query -W ")
    assert PackageManager("apk").query_command() == "cat /lib/apk/db/installed"
    assert PackageManager("dnf").query_command().startswith("rpm -qa --qf ")


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs a dpkg system")
def test_dpkg_query_command_runs_and_parses_here():
    output = subprocess.run(["sh", "-c", PackageManager("apt").query_command()],
                            stdout=subprocess.PIPE, check=True).stdout.decode()
    names = {package.name for package in sbom.parse_packages("deb", output)}
    assert "dpkg" in names and "libc6" in names


def test_python_query_runs_with_a_real_interpreter(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    command = sbom.PYTHON_QUERY.replace(sbom.VENV, str(venv))
    output = subprocess.run(["sh", "-c", command], stdout=subprocess.PIPE,
                            check=True).stdout.decode()
    interpreter, distributions = sbom.parse_python("noise\n" + output)
    assert interpreter == ("CPython", "%d.%d.%d" % sys.version_info[:3])
    assert isinstance(distributions, tuple)
    assert list(distributions) == sorted(set(distributions))


def test_python_query_prints_nothing_without_the_virtualenv(tmp_path):
    command = sbom.PYTHON_QUERY.replace(sbom.VENV, str(tmp_path / "none"))
    output = subprocess.run(["sh", "-c", command], stdout=subprocess.PIPE,
                            check=True).stdout.decode()
    assert sbom.parse_python(output) == (None, ())


def test_parse_python_reads_the_marked_line():
    line = 'pbrx-images-sbom:{"interpreter": ["CPython", "3.11.2"], ' \
           '"distributions": [["pgtool", "1.0.0"], ["psycopg2", "2.9.9"]]}'
    assert sbom.parse_python("warning\n" + line + "\n") == (
        ("CPython", "3.11.2"),
        (PythonDistribution("pgtool", "1.0.0"), PythonDistribution("psycopg2", "2.9.9")))


@pytest.mark.parametrize("arguments", [
    ("deb", "debian", "libc6", "2.36-9+deb12u4", {"arch": "amd64", "distro": "debian-12"}),
    ("deb", "debian", "libgcc-s1", "1:12.2.0-14", {"arch": "amd64", "distro": "debian-12"}),
    ("apk", "alpine", "musl", "1.2.4-r2", {"arch": "x86_64", "distro": "alpine-3.19.1"}),
    ("rpm", "fedora", "openssl-libs", "3.1.1-4.fc39",
     {"arch": "x86_64", "distro": "fedora-39", "epoch": "1"}),
    ("pypi", None, "zope-interface", "6.1+local", {}),
    ("generic", None, "cpython", "3.11.2", {}),
])
def test_purls_are_what_the_reference_library_makes(arguments):
    purl_type, namespace, name, version, qualifiers = arguments
    assert sbom.purl(purl_type, namespace, name, version, qualifiers) == PackageURL(
        purl_type, namespace, name, version, qualifiers or None).to_string()


def test_purl_forms():
    data = sbom.document(_contents(), "reg:5000/team/pgtool-base:v1", "1.0")
    purls = [component.get("purl") for component in data["components"]]
    assert "pkg:deb/debian/libpq5@15.5-0%2Bdeb12u1?arch=amd64&distro=debian-12" in purls
    assert "pkg:deb/debian/libgcc-s1@1:12.2.0-14?arch=amd64&distro=debian-12" in purls
    assert "pkg:pypi/psycopg2@2.9.9" in purls
    assert "pkg:pypi/zope-interface@6.1%2Blocal" in purls  # lower case, "_" as "-"
    assert "pkg:generic/cpython@3.11.2" in purls
    alpine = _contents(os_release={"ID": "alpine", "VERSION_ID": "3.19.1"}, purl_type="apk",
                       packages=(DistroPackage("musl", "1.2.4-r2", "x86_64"),))
    assert "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1" in [
        c.get("purl") for c in sbom.document(alpine, "a:b", "1")["components"]]
    fedora = _contents(os_release={"ID": "fedora", "VERSION_ID": "39"}, purl_type="rpm",
                       packages=(DistroPackage("openssl-libs", "3.1.1-4.fc39", "x86_64", "1"),))
    component = next(c for c in sbom.document(fedora, "a:b", "1")["components"]
                     if c["name"] == "openssl-libs")
    assert component["purl"] == ("pkg:rpm/fedora/openssl-libs@3.1.1-4.fc39?arch=x86_64"
                                 "&distro=fedora-39&epoch=1")
    assert component["version"] == "1:3.1.1-4.fc39"


@pytest.mark.parametrize("contents", [
    _contents(),
    _contents(os_release={"ID": "alpine", "VERSION_ID": "3.19.1"}, purl_type="apk",
              packages=(DistroPackage("musl", "1.2.4-r2", "x86_64"),)),
    _contents(os_release={}, purl_type=None, packages=(), interpreter=None, python=()),
])
def test_documents_are_valid_cyclonedx_1_5(contents):
    data = sbom.document(contents, "pbrx-test/pgtool-base:t1", "1.2.3",
                         "2023-11-14T22:13:20Z")
    _validate(data)
    assert json.loads(sbom.serialize(data)) == data


def test_document_has_the_required_fields_and_names_the_image():
    data = sbom.document(_contents(), "reg:5000/team/pgtool-base:v1", "1.2.3")
    assert data["bomFormat"] == "CycloneDX"
    assert data["specVersion"] == "1.5"
    assert data["version"] == 1
    assert data["serialNumber"].startswith("urn:uuid:")
    assert data["metadata"]["component"] == {
        "type": "container", "bom-ref": "image:pgtool-base", "name": "pgtool-base"}
    assert data["metadata"]["tools"]["components"][0]["name"] == "pbrx-images"
    os_component = data["components"][0]
    assert os_component == {"type": "operating-system", "name": "debian", "version": "12",
                            "description": "Debian GNU/Linux 12 (bookworm)",
                            "bom-ref": "os:debian-12"}
    references = [component["bom-ref"] for component in data["components"]]
    assert len(references) == len(set(references))


def test_document_is_deterministic():
    first = sbom.serialize(sbom.document(_contents(), "pgtool-base:t1", "1.0"))
    reordered = _contents(packages=tuple(reversed(_contents().packages)),
                          python=tuple(reversed(_contents().python)))
    assert sbom.serialize(sbom.document(reordered, "pgtool-base:t1", "1.0")) == first
    assert sbom.serialize(sbom.document(_contents(), "pgtool-base:t1", "1.0")) == first
    assert b"timestamp" not in first
    assert first.endswith(b"}\n")


def test_serial_number_follows_the_content():
    serial = sbom.document(_contents(), "pgtool-base:t1", "1.0")["serialNumber"]
    assert sbom.document(_contents(), "pgtool-base:t1", "1.0")["serialNumber"] == serial
    assert sbom.document(_contents(), "pgtool-version:t1", "1.0")["serialNumber"] != serial
    assert sbom.document(_contents(python=()), "pgtool-base:t1", "1.0"
                         )["serialNumber"] != serial


def test_timestamp_only_from_source_date_epoch():
    assert sbom.timestamp({}) is None
    assert sbom.timestamp({"SOURCE_DATE_EPOCH": "1700000000"}) == "2023-11-14T22:13:20Z"
    with pytest.raises(BuildError):
        sbom.timestamp({"SOURCE_DATE_EPOCH": "soon"})
    data = sbom.document(_contents(), "a:b", "1", "2023-11-14T22:13:20Z")
    assert data["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"


def test_components_sorted_os_then_packages_then_python():
    data = sbom.document(_contents(), "a:b", "1")
    kinds = [component.get("purl", "os").split("/")[0] for component in data["components"]]
    assert kinds == ["os", "pkg:deb", "pkg:deb", "pkg:deb", "pkg:generic", "pkg:pypi",
                     "pkg:pypi", "pkg:pypi"]
    debs = [c["name"] for c in data["components"] if c.get("purl", "").startswith("pkg:deb")]
    assert debs == sorted(debs)


def test_digest_is_sha256_of_the_bytes():
    assert sbom.digest(b"") == ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495"
                                "991b7852b855")


def test_write_names_files_after_the_images(tmp_path):
    paths = sbom.write(tmp_path / "new", {"reg:5000/team/app:v1": b"{}\n", "app:latest": b"x"})
    assert paths == {"reg:5000/team/app:v1": tmp_path / "new" / "reg_5000_team_app_v1.cdx.json",
                     "app:latest": tmp_path / "new" / "app_latest.cdx.json"}
    assert paths["app:latest"].read_bytes() == b"x"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "app_latest.cdx.json", "reg_5000_team_app_v1.cdx.json"]


def test_write_into_a_file_fails_clearly(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(BuildError, match="--sbom-dir"):
        sbom.write(tmp_path / "file", {"app:latest": b"x"})


class _Container:
    """Answers the queries with canned output (the engine test runs real ones)."""

    def __init__(self, answers):
        self.answers = answers
        self.commands = []

    def run(self, command):
        self.commands.append(command)
        for start, answer in self.answers.items():
            if command.startswith(start):
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError(command)


def test_collect_detects_the_manager_when_not_given():
    from pbrx_images.plan.package_manager import DETECT_SCRIPT
    container = _Container({"cat /etc/os-release": 'ID=alpine\nVERSION_ID=3.19.1\n',
                            DETECT_SCRIPT: "apk\n", "cat /lib/apk/db/installed": APK_OUTPUT,
                            "if [ -x": ""})
    contents = sbom.collect(container, None, "app:latest")
    assert contents.purl_type == "apk"
    assert contents.os_release["ID"] == "alpine"
    assert [package.name for package in contents.packages] == ["musl", "py3-foo-2"]
    assert contents.interpreter is None and contents.python == ()


def test_collect_failure_says_what_and_which_image():
    from pbrx_images.engine import CommandFailed
    container = _Container({"cat /etc/os-release": "ID=debian\n",
                            "dpkg-query": CommandFailed("dpkg-query", 2, "dpkg-query: error: "
                                                        "status database area is locked\n")})
    with pytest.raises(BuildError, match="Listing the distro packages of app:latest for its "
                                         "SBOM failed \\(exit status 2: dpkg-query: error: "
                                         "status database area is locked\\)"):
        sbom.collect(container, PackageManager("apt"), "app:latest")


def test_the_same_contents_under_another_name_or_tag_give_the_same_sbom():
    """The digest is an image label: a tag must not change the image's ID."""
    first = sbom.serialize(sbom.document(_contents(), "reg:5000/team/pgtool-base:v1", "1.2.3"))
    second = sbom.serialize(sbom.document(_contents(), "pgtool-base:latest", "1.2.3"))
    assert first == second


def test_collector_adds_the_python_distributions_to_the_runtime_contents():
    """Installed images: the runtime-packages image's contents plus pip's distributions."""
    collection = sbom.Collection(None, lambda role: role, PackageManager("apt"), None)
    collection.runtime = _contents(python=())
    labels = collection.collector("app-base:latest")(
        [("psycopg2", "2.9.9"), ("pgtool", "1.0.0"), ("psycopg2", "2.9.9")])
    assert collection.contents["app-base:latest"] == _contents(python=(
        PythonDistribution("pgtool", "1.0.0"), PythonDistribution("psycopg2", "2.9.9")))
    data = collection.documents["app-base:latest"]
    assert labels == {sbom.LABEL_DIGEST: sbom.digest(data)}
    assert data == sbom.serialize(sbom.document(collection.contents["app-base:latest"],
                                                "app-base:latest", collection.tool_version))


@pytest.mark.parametrize("contents", [
    _contents(),
    _contents(purl_type=None, packages=(), interpreter=None, python=()),
    _contents(purl_type="rpm", packages=(DistroPackage("openssl-libs", "3.1.1-4.fc39",
                                                       "x86_64", "1"),)),
])
def test_contents_survive_the_facts_file(contents):
    data = json.loads(json.dumps(sbom.contents_to_json(contents)))
    assert sbom.contents_from_json(data) == contents
