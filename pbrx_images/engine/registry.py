"""What a push reported.

Pure code: the engine pushes (:meth:`pbrx_images.engine.Engine.push`); this
module turns the engine's push stream into a digest, layer counts, or one
sentence that says what went wrong and what to do.  Which registry a name
names is :func:`pbrx_images.plan.names.registry_of`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pbrx_images.errors import BuildError
from pbrx_images.plan.names import DOCKER_HUB, registry_of

#: Where the local images stay when a push fails; every push error ends with it.
STAY_TAGGED = "the images built stay tagged locally"


@dataclass
class PushStream:
    """What the engine's push stream (``/images/{name}/push``, decoded) reported.

    The engine sends one JSON object per event: ``status`` with a layer
    ``id`` (``Preparing``, ``Pushing``, ``Pushed``, ``Layer already
    exists``, ``Mounted from ...``), an ``aux`` object with the pushed
    manifest's ``Digest``, or ``error`` (with ``errorDetail``) when the push
    failed.
    """

    name: str  #: the image pushed, ``repository:tag``
    digest: str | None = None  #: the manifest digest the registry gave
    error: str | None = None  #: the engine's error message
    #: last status of each layer, by the short layer ID the engine gives
    layers: dict[str, str] = field(default_factory=dict)

    def feed(self, chunk: Mapping[str, Any]) -> str | None:
        """Take one event; return a line worth logging (progress bars are not)."""
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = (detail.get("message") if isinstance(detail, Mapping) else None) \
                or chunk.get("error") or "unknown error"
            self.error = str(message).strip()
            return "error: " + self.error
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
            return None  # the status line before it says the same
        status = chunk.get("status")
        if not status:
            return None
        layer = chunk.get("id")
        if layer:
            self.layers[str(layer)] = str(status)
            if status in ("Pushing", "Waiting", "Preparing"):
                return None
            return "%s: %s" % (layer, status)
        return str(status)

    @property
    def pushed(self) -> list[str]:
        """Layers whose content was uploaded by this push."""
        return [layer for layer, status in self.layers.items() if status == "Pushed"]

    @property
    def already_there(self) -> list[str]:
        """Layers the registry already had (in this repository or mounted from another)."""
        return [layer for layer, status in self.layers.items()
                if status == "Layer already exists" or status.startswith("Mounted from")]

    def summary(self) -> str:
        """E.g. ``2 layers uploaded, 5 already in the registry``."""
        return "%d layer%s uploaded, %d already in the registry" % (
            len(self.pushed), "" if len(self.pushed) == 1 else "s", len(self.already_there))


def push_failure(name: str, error: str) -> BuildError:
    """The engine's push error for image ``name``, as one sentence for people."""
    registry = registry_of(name) or DOCKER_HUB
    repository = name.rpartition(":")[0] if ":" in name.rpartition("/")[2] else name
    detail = error.strip().rstrip(".")
    lowered = detail.lower()
    start = "Pushing %s to %s failed (%s): " % (name, registry, detail)
    if "no basic auth credentials" in lowered or "unauthorized" in lowered \
            or "authentication required" in lowered:
        advice = ("%s wants credentials that let you push there: run 'docker login %s' "
                  "(build-images uses the Docker client's configuration, $DOCKER_CONFIG or "
                  "~/.docker/config.json), then push again" % (registry, registry))
    elif "denied" in lowered:
        advice = ("the user you logged in as may not push to %s: log in as one who may "
                  "('docker login %s') or change --prefix, then push again"
                  % (repository, registry))
    elif "gave http response to https client" in lowered:
        advice = ("%s speaks plain HTTP: serve it over HTTPS or list it in "
                  "\"insecure-registries\" of the engine's daemon.json, then push again"
                  % registry)
    elif "x509" in lowered or "certificate" in lowered:
        advice = ("the engine does not trust the certificate of %s: put its CA in "
                  "/etc/docker/certs.d/%s/ca.crt on the engine's host, then push again"
                  % (registry, registry))
    elif any(text in lowered for text in (
            "connection refused", "no such host", "i/o timeout", "dial tcp",
            "no route to host", "network is unreachable", "server misbehaving",
            "connection reset", "unexpected eof")):
        advice = ("the engine cannot reach the registry %s: check the registry in --prefix "
                  "and that the registry runs and is reachable from the engine, then push "
                  "again" % registry)
    elif "name unknown" in lowered or "name invalid" in lowered \
            or "repository name not known" in lowered:
        advice = ("%s does not accept the repository %s: create it in the registry, or fix "
                  "--prefix, then push again" % (registry, repository))
    else:
        advice = "fix what the registry says, then push again"
    return BuildError(start + advice + " (build-images --push, or docker push); "
                      + STAY_TAGGED + ".")
