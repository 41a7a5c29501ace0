"""Image content as bytes (pure code, no Docker): layers, configurations, archives.

* ``tar``: entries of exported trees, and the normalised, reproducible tar
  writer every layer goes through (xattrs, devices, FIFOs kept);
* ``layer``: a virtualenv split into one layer per distribution;
* ``changes_layer``: the layer of what commands changed in a container
  (runtime packages, ``--user``), from ``docker diff`` and ``docker export``;
* ``image_archive``: image configuration and history, and the archive
  written for ``docker load``;
* ``saved_image``: the layers of an image read back from ``docker save``.
"""
