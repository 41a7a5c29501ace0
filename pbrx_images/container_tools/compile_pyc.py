"""Byte code of changed modules, as pip's install writes it (the fast path of #17).

compile_pyc.py LIST: LIST is a JSON file of [[source, installed path], ...];
each source file is compiled as if it were at its installed path (the path
the byte code names) and a line ``pbrx-images-pyc: {installed path}
{base64 of the .pyc}`` is printed for each; a file that does not compile
fails the run (pip would leave its byte code out).

pip compiles each installed module with ``compileall.compile_file(path,
force=True)``; with SOURCE_DATE_EPOCH set, py_compile's default
invalidation mode is CHECKED_HASH, so the file holds the source's hash and
no time.  This does the same, through the same py_compile, with the image's
own interpreter: run it with SOURCE_DATE_EPOCH set, as the installs are.
"""
import base64
import json
import os
import py_compile
import sys
import tempfile


def compile_one(source, installed):
    """The .pyc bytes pip would write for ``source`` installed at ``installed``."""
    handle, out = tempfile.mkstemp(suffix=".pyc")
    os.close(handle)
    try:
        py_compile.compile(source, cfile=out, dfile=installed, doraise=True)
        with open(out, "rb") as compiled:
            return compiled.read()
    finally:
        os.unlink(out)


def main(argv):
    with open(argv[1]) as handle:
        pairs = json.load(handle)
    for source, installed in pairs:
        data = compile_one(source, installed)
        print("pbrx-images-pyc: %s %s" % (installed, base64.b64encode(data).decode()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
