"""pip settings and proxies reach the build, but no image, layer or log."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.engine.helpers import image_bytes_contain

pytestmark = pytest.mark.engine

TOKEN_IN_PIP_CONF = "T0KEN-in-pip-conf-5f2a"
TOKEN_IN_ENV = "T0KEN-in-environment-9c1e"
PROXY_PASSWORD = "pr0xy-passw0rd-77d3"


def test_tokens_and_proxies_never_reach_an_image(example_project, tmp_path, docker_client,
                                                 base_image):
    pip_conf = tmp_path / "pip.conf"
    # The token-bearing index is on the build container's own loopback: pip
    # tries it (so the setting did reach pip) and gets refused at once.
    pip_conf.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
                        "extra-index-url = https://builder:%s@127.0.0.1:9/simple\n"
                        % TOKEN_IN_PIP_CONF)
    env = dict(os.environ, PIP_CONFIG_FILE=str(pip_conf), PIP_RETRIES="0",
               PIP_FIND_LINKS="https://links:%s@127.0.0.1:9/links/" % TOKEN_IN_ENV,
               # Set for the build, unused: apt's sources are http, pip bypasses it.
               https_proxy="http://proxyuser:%s@127.0.0.1:3128" % PROXY_PASSWORD,
               no_proxy="*")
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"',
                                                       'name = "pgtool-secrets"'))
    completed = subprocess.run(
        [sys.executable, "-m", "pbrx_images.cli", str(example_project), "--base-image",
         base_image, "--no-cache", "--debug"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=1800)
    output = completed.stdout.decode()
    print(output)
    assert completed.returncode == 0
    assert "127.0.0.1:9/simple" in output  # pip used the index from pip.conf (redacted)
    secrets = [TOKEN_IN_PIP_CONF, TOKEN_IN_ENV, PROXY_PASSWORD]
    assert [s for s in secrets if s in output] == []
    table = output[output.index("\nIMAGE "):].splitlines()[2:]
    images = [line.split()[0] for line in table if line.strip()]
    assert "pgtool-secrets-base:latest" in images and len(images) == 3
    cache_images = {tag for image in docker_client.images.list("pbrx-images-cache/builder")
                    + docker_client.images.list("pbrx-images-cache/runtime")
                    for tag in image.tags}
    for image in images + sorted(cache_images):
        assert image_bytes_contain(docker_client, image, secrets) == [], image
