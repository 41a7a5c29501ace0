"""What the project is (pure code, no Docker): its metadata, settings, source.

* ``pyproject``: pyproject.toml, parsed once for all its readers, and what
  pip builds the project with (``[build-system]``);
* ``metadata``: name, version, scripts and extras, from setup.cfg and
  pyproject.toml; ``wheel_metadata``: the same from a built wheel, and the
  one reader of METADATA;
* ``settings``: the options of a build, command line over the project's
  ``[tool.build-images]`` / ``[build_images]`` over defaults;
* ``source``: the source tree as the archive sent into the builder, and its
  digest;
* ``bindep_file``: bindep.txt evaluated for the target image's platform;
* ``pip_config``: the host's pip configuration and CA forwarded to builds;
* ``labels``: the OCI labels, SOURCE_DATE_EPOCH.
"""
