"""Registries spoken to directly, without the engine: the OCI distribution API.

* ``client``: manifests and blobs of one repository, with the registry's
  credentials; what the shared build cache (:mod:`pbrx_images.cache.shared`)
  is written through.
"""
