"""What the client keeps between builds, under ``$XDG_CACHE_HOME/pbrx-images``.

* ``files``: where each cache lives, and the rules their files follow
  (written whole, marked used when read, pruned when unused);
* ``layers``: each distribution's layer tar, by its inputs' key;
* ``image_facts``: what is known of images by ID, and pip's answers;
* ``cached_images``: the cached builder and runtime images made from each
  base image name, so that a moved name's can be removed;
* ``build_record``: the inputs of each project's last build, for the no-op
  check.
"""
