"""Trees for the oci tests, as the engine's archive API gives them."""
from __future__ import annotations

import io
import tarfile

from pbrx_images.oci.tar import Tree, read_tree


def export(files: dict[str, bytes | str], root: str = "/opt/venv", symlinks=None) -> Tree:
    """A tree as the archive API would give ``root``: members named from its last part."""
    buffer = io.BytesIO()
    prefix = root.strip("/").rpartition("/")[0] + "/"
    dirs = set()
    for path in files:
        parts = path.split("/")
        dirs.update("/".join(parts[:n]) for n in range(2, len(parts)))
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in sorted(dirs):
            info = tarfile.TarInfo(directory[len(prefix):])
            info.type, info.mode, info.mtime, info.uid = tarfile.DIRTYPE, 0o755, 123, 7
            archive.addfile(info)
        for path, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path[len(prefix):])
            info.size, info.mode, info.mtime, info.uname = len(data), 0o644, 999, "someone"
            archive.addfile(info, io.BytesIO(data))
        for path, target in (symlinks or {}).items():
            info = tarfile.TarInfo(path[len(prefix):])
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    buffer.seek(0)
    return read_tree(buffer, root)
