"""build_wheel.py BACKEND OUTDIR HAVE [BACKEND_PATH...]: build the wheel of the project
in the current directory into OUTDIR with BACKEND ("module:object"), in this
interpreter: what pip does with --no-build-isolation, without pip's start-up and
its metadata step.  Prints the wheel's name.

HAVE is the JSON list of the requirements this environment was made with.
When the backend's get_requires_for_build_wheel (asked in a forked child: pip
asks it in a process of its own) names one HAVE lacks, nothing is built: the
line "pbrx-images-build-requires: JSON list" is printed and the exit status is 3.
"""
import importlib
import json
import os
import sys

#: How a build requirement the environment lacks is said (builder.BUILD_REQUIRES_MARK).
BUILD_REQUIRES_MARK = "pbrx-images-build-requires: "


def load_hooks(backend, paths):
    """The backend's hooks object: ``module:object.attribute`` imported from ``paths``
    first, then the rest of ``sys.path`` without this script's own directory."""
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this script's directory
    sys.path[:0] = [os.path.abspath(path) for path in paths]
    module, _, attribute = backend.partition(":")
    hooks = importlib.import_module(module)
    for name in filter(None, attribute.split(".")):
        hooks = getattr(hooks, name)
    return hooks


def build_requires(hooks):
    """What ``get_requires_for_build_wheel`` asks for, asked in a forked child."""
    if not hasattr(hooks, "get_requires_for_build_wheel"):
        return []
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        code = 0
        try:
            answer = json.dumps(list(hooks.get_requires_for_build_wheel())).encode()
            with os.fdopen(write, "wb") as pipe:
                pipe.write(answer)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(child, 0)
    if status != 0:
        sys.exit("get_requires_for_build_wheel failed")
    return json.loads(answer)


def main(argv):
    backend, outdir = argv[1], os.path.abspath(argv[2])
    have, paths = set(json.loads(argv[3])), argv[4:]
    hooks = load_hooks(backend, paths)
    wanted = build_requires(hooks)
    if not set(wanted) <= have:
        print(BUILD_REQUIRES_MARK + json.dumps(wanted))
        return 3
    os.makedirs(outdir, exist_ok=True)
    print(hooks.build_wheel(outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
