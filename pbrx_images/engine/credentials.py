"""The Docker client's credentials for a registry, for requests made without the engine.

``--push`` sends what the Docker client's configuration holds for the
registry (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``,
credential helpers and ``credsStore`` included) through the SDK; the shared
build cache (:mod:`pbrx_images.cache.shared`) talks to the registry itself
and takes the same credentials from the SDK's reader of that configuration,
so ``docker login`` is all either needs.
"""
from __future__ import annotations

import docker.auth
import docker.errors


def registry_credentials(host: str) -> tuple[str, str] | None:
    """(username, password) the Docker configuration holds for ``host``; None if none.

    A configuration or credential helper that cannot be read gives None:
    the registry is then asked anonymously, and says if that is not enough.
    """
    try:
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), host)
    except (docker.errors.DockerException, OSError, ValueError):
        return None
    if not found:
        return None
    username = found.get("username") or found.get("Username")
    password = found.get("password") or found.get("Password") or found.get("Secret")
    if not username or not password:
        return None
    return str(username), str(password)
