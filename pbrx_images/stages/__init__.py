"""The stages of a build, each run against the engine.

* ``builder``: the builder image (compile packages) and the wheels it
  builds into the wheel volume;
* ``runtime``: the runtime-packages image, then each image's install,
  split into per-distribution layers and loaded;
* ``sbom``: the SBOM of each image, from what its package database and
  virtualenv hold.
"""
