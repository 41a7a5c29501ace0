"""Image content as bytes (pure code, no Docker): layers, configurations, archives.

* ``layer``: a virtualenv split into one layer per distribution, and the
  normalised, reproducible tar writer every layer goes through;
* ``changes_layer``: the layer of what commands changed in a container
  (runtime packages, ``--user``), from ``docker diff`` and ``docker export``;
* ``image_archive``: image configuration and history, and the archive
  written for ``docker load``;
* ``saved_image``: the layers of an image read back from ``docker save``.
"""
