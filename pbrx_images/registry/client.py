"""A client of the OCI distribution API: manifests and blobs of one repository.

The shared build cache (:mod:`pbrx_images.cache.shared`) keeps its entries
as OCI artifacts in a registry repository.  The Docker engine can push and
pull images, not a blob or a manifest of our own, so the cache talks to the
registry itself, over ``requests`` (already needed by the Docker SDK; it
drops credentials on a redirect to another host, as a blob store's signed
URLs need).  Only what the cache needs is here: a manifest by tag, a blob by
digest (checked while it is read), a blob upload (monolithic, after a HEAD
says it is missing), a manifest put; with the two ways registries ask for
credentials (``Basic``, and ``Bearer`` tokens from the realm they name).

Loopback registries (``localhost``, ``127.0.0.0/8``, ``::1``) are spoken to
over plain HTTP, as the Docker engine does by default; every other over
HTTPS with the system's CA bundle (``REQUESTS_CA_BUNDLE`` is honoured).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator, Mapping
from urllib.parse import urlencode, urljoin

import requests

from pbrx_images.oci.image_archive import is_digest

#: What a manifest GET accepts: the cache writes OCI image manifests only.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: Seconds to wait for the registry to answer one request.
TIMEOUT = 30
#: Bytes read at a time from a blob.
CHUNK = 1 << 20
#: Seconds before each retry of a read the registry answered with a server error.
RETRY_AFTER = (0.2, 0.5)

#: (username, password) for a registry host, or None for anonymous access.
Credentials = Callable[[str], "tuple[str, str] | None"]


class RegistryError(Exception):
    """The registry answered, but not as asked: the message says what it said."""


class Unreachable(RegistryError):
    """The registry could not be reached at all (refused, timed out, no such host)."""


class Refused(RegistryError):
    """The registry refused the credentials (or their absence) for what was asked."""


class Unverifiable(RegistryError):
    """What the registry sent is not what its digest says."""


@dataclass(frozen=True)
class Descriptor:
    """A blob as a manifest names it."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                                "size": self.size}
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Descriptor:
        """A descriptor from a manifest's JSON; Unverifiable if it is not one."""
        try:
            digest, size, media_type = data["digest"], data["size"], data["mediaType"]
            annotations = data.get("annotations") or {}
        except (TypeError, KeyError, AttributeError):
            raise Unverifiable("a descriptor without digest, size and media type") from None
        if not (is_digest(digest) and isinstance(size, int) and size >= 0
                and isinstance(media_type, str) and isinstance(annotations, dict)):
            raise Unverifiable("a descriptor whose digest or size is not one")
        return cls(media_type, digest, size, {str(k): str(v) for k, v in annotations.items()})


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Repository:
    """One repository (``registry.example.com/team/cache``) of a registry."""

    def __init__(self, host: str, name: str, credentials: Credentials | None = None,
                 session: requests.Session | None = None) -> None:
        self.host = host
        self.name = name
        self.base = "%s://%s" % ("http" if is_loopback(host) else "https", host)
        self._credentials = credentials
        self._session = session or requests.Session()
        self._authorization: dict[str, str] = {}  # scope ("pull", "pull,push") -> header

    def __str__(self) -> str:
        return "%s/%s" % (self.host, self.name)

    # ------------------------------------------------------------------
    # Manifests

    def manifest(self, reference: str) -> bytes | None:
        """The manifest ``reference`` (a tag) names, as the registry stored it; None if none."""
        response = self._request("GET", "/manifests/%s" % reference, "pull",
                                 headers={"Accept": OCI_MANIFEST}, missing_ok=True)
        if response is None:
            return None
        data = response.content
        said = response.headers.get("Docker-Content-Digest")
        if said and said.startswith("sha256:") and said != sha256_digest(data):
            raise Unverifiable("manifest %s is not the %s the registry says it is"
                               % (reference, said))
        return data

    def put_manifest(self, reference: str, data: bytes) -> str:
        """Store ``data`` (an OCI image manifest) under the tag ``reference``; its digest."""
        self._request("PUT", "/manifests/%s" % reference, "pull,push", data=data,
                      headers={"Content-Type": OCI_MANIFEST})
        return sha256_digest(data)

    # ------------------------------------------------------------------
    # Blobs

    def has_blob(self, digest: str) -> bool:
        return self._request("HEAD", "/blobs/%s" % digest, "pull", missing_ok=True) is not None

    def blob_chunks(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes, a chunk at a time; Unverifiable at the end if they are not it.

        A caller writes the chunks aside and keeps them only when the
        iteration ends without an error (:func:`pbrx_images.cache.files.write_whole`).
        """
        response = self._request("GET", "/blobs/%s" % descriptor.digest, "pull", stream=True)
        digest = hashlib.sha256()
        size = 0
        with response:
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > descriptor.size:
                        raise Unverifiable("blob %s is longer than its %d bytes"
                                           % (descriptor.digest, descriptor.size))
                    digest.update(chunk)
                    yield chunk
            except requests.RequestException as error:
                raise Unreachable("reading blob %s from %s failed (%s)"
                                  % (descriptor.digest, self, _reason(error))) from None
        if size != descriptor.size or "sha256:" + digest.hexdigest() != descriptor.digest:
            raise Unverifiable("blob %s has other content than its digest says"
                               % descriptor.digest)

    def blob(self, descriptor: Descriptor) -> bytes:
        """A small blob's verified bytes."""
        return b"".join(self.blob_chunks(descriptor))

    def put_blob(self, digest: str, size: int, content: Callable[[], IO[bytes] | bytes]) -> bool:
        """Upload a blob unless the repository has it; True if it was sent.

        ``content`` opens the bytes (called only when they are sent).  The
        registry checks them against ``digest`` and refuses others.
        """
        if self.has_blob(digest):
            return False
        response = self._request("POST", "/blobs/uploads/", "pull,push",
                                 headers={"Content-Length": "0"})
        location = response.headers.get("Location")
        if not location:
            raise RegistryError("%s gave no upload location" % self)
        url = urljoin(self.base + "/v2/%s/blobs/uploads/" % self.name, location)
        url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
        body = content()
        try:
            self._request("PUT", url, "pull,push", data=body, absolute=True,
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Length": str(size)})
        finally:
            if not isinstance(body, bytes):
                body.close()
        return True

    # ------------------------------------------------------------------
    # Requests and credentials

    def _request(self, method: str, path: str, scope: str, missing_ok: bool = False,
                 absolute: bool = False, headers: Mapping[str, str] | None = None,
                 **arguments: Any) -> Any:
        url = path if absolute else "%s/v2/%s%s" % (self.base, self.name, path)
        authorized = retried = 0
        while True:
            sent = dict(headers or {})
            if scope in self._authorization:
                sent["Authorization"] = self._authorization[scope]
            try:
                response = self._session.request(method, url, headers=sent, timeout=TIMEOUT,
                                                 allow_redirects=True, **arguments)
            except requests.RequestException as error:
                raise Unreachable("%s cannot be reached (%s)" % (self.host, _reason(error))
                                  ) from None
            if response.status_code == 401 and not authorized and \
                    self._authorize(response, scope):
                authorized += 1
                response.close()
                if hasattr(arguments.get("data"), "seek"):
                    arguments["data"].seek(0)
                continue
            if response.status_code >= 500 and method in ("GET", "HEAD") and \
                    retried < len(RETRY_AFTER):
                # (docker-registry answers 500 while another writer commits the same blob)
                response.close()
                time.sleep(RETRY_AFTER[retried])
                retried += 1
                continue
            break
        if missing_ok and response.status_code == 404:
            response.close()
            return None
        if response.status_code in (401, 403):
            response.close()
            writing = "push" in scope
            raise Refused("%s refused %s of %s (%d): run 'docker login %s' as a user who may "
                          "%s it" % (self.host, "writes" if writing else "reads", self,
                                     response.status_code, self.host,
                                     "write to" if writing else "read"))
        if response.status_code >= 400:
            detail = _error_detail(response)
            response.close()
            if response.status_code >= 500:
                raise Unreachable("%s answered %s %s with %d%s" % (
                    self.host, method, path if not absolute else "an upload",
                    response.status_code, detail))
            raise RegistryError("%s answered %s %s with %d%s" % (
                self.host, method, path if not absolute else "an upload",
                response.status_code, detail))
        return response

    def _authorize(self, response: requests.Response, scope: str) -> bool:
        """Learn how to answer the registry's 401; False if there is no way."""
        challenge = response.headers.get("WWW-Authenticate", "")
        kind, _, parameters = challenge.partition(" ")
        credentials = self._credentials(self.host) if self._credentials else None
        if kind.lower() == "basic":
            if credentials is None:
                return False
            self._authorization[scope] = _basic(*credentials)
            return True
        if kind.lower() != "bearer":
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', parameters))
        realm = fields.pop("realm", None)
        if not realm:
            return False
        query = {"service": fields.get("service", ""),
                 "scope": "repository:%s:%s" % (self.name, scope)}
        try:
            token = self._session.get(realm, params=query, timeout=TIMEOUT, headers={
                "Authorization": _basic(*credentials)} if credentials else {})
        except requests.RequestException as error:
            raise Unreachable("the token service of %s cannot be reached (%s)"
                              % (self.host, _reason(error))) from None
        if token.status_code != 200:
            return False
        try:
            data = token.json()
            value = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            return False
        if not isinstance(value, str) or not value:
            return False
        self._authorization[scope] = "Bearer " + value
        return True


def _basic(username: str, password: str) -> str:
    import base64
    return "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode()


def _error_detail(response: requests.Response) -> str:
    """``: MANIFEST_UNKNOWN manifest unknown`` from the registry's error body, if it has one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return ": %s %s" % (first.get("code", ""), first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def _reason(error: Exception) -> str:
    """What went wrong, in a few words: ``Connection refused``, ``timed out``."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip().rstrip(".")
    if isinstance(error, requests.Timeout) or "timed out" in text:
        return "timed out"
    if isinstance(error, requests.exceptions.SSLError):
        return "its TLS certificate is not trusted"
    return type(error).__name__
