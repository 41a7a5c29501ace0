"""The ``build-images`` command: a thin layer over :func:`pbrx_images.pipeline.build`."""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from pbrx_images import interrupts
from pbrx_images.engine import CommandFailed
from pbrx_images.errors import BuildError
from pbrx_images.project import settings as options_module
from pbrx_images.ui.output import Reporter


def _version() -> str:
    try:
        from pbr.version import VersionInfo
        return VersionInfo("pbrx-images").version_string()
    except Exception:  # not installed (running from a bare checkout)
        return "unknown"


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="build-images",
        description="Build container images of a Python project: a builder container "
                    "makes wheels with bindep's compile packages, clean runtime images "
                    "install them. Produces [PREFIX/]{project}-base:TAG and one "
                    "[PREFIX/]{script}:TAG per console script.")
    result.add_argument("project_dir", nargs="?", default=".", metavar="PROJECT_DIR",
                        help="the Python project (default: the current directory)")
    result.add_argument("--base-image", metavar="IMAGE",
                        help="image to start from; it must have python3 with venv "
                             "(default: %s)" % options_module.DEFAULT_BASE_IMAGE)
    result.add_argument("--prefix", metavar="PREFIX",
                        help="registry and/or namespace put before every image name, "
                             "e.g. registry.example.com/team")
    result.add_argument("-t", "--tag", metavar="TAG", action="append",
                        help="tag of every image (default: %s); repeatable: every image "
                             "gets every tag, and --push pushes them all"
                             % options_module.DEFAULT_TAG)
    result.add_argument("--extra", metavar="SCRIPT=EXTRA[,EXTRA...]", action="append",
                        default=[], dest="extras",
                        help="install these extras in SCRIPT's image instead of the extra "
                             "named as the script (repeatable; base=EXTRA for the base "
                             "image); also [tool.build-images.extras] in pyproject.toml")
    result.add_argument("--build-arg", metavar="KEY=VALUE", action="append", default=[],
                        dest="build_args",
                        help="build argument of every Dockerfile.{script} build, beside "
                             "BASE_IMAGE (repeatable)")
    result.add_argument("--only", metavar="SCRIPT", action="append", default=[],
                        help="build the base image and only this console script's image "
                             "(repeatable)")
    result.add_argument("--label", metavar="KEY=VALUE", action="append", default=[],
                        dest="labels",
                        help="a label of every image, after the OCI labels build-images "
                             "sets (repeatable)")
    result.add_argument("--constraints", metavar="FILE",
                        help="pip constraints file applied to every pip step")
    result.add_argument("--no-cache", action="store_true",
                        help="rebuild the builder and runtime package images and every wheel")
    result.add_argument("--refresh", action="store_true",
                        help="build even when nothing changed since the last build (which "
                             "would only say the images are up to date), and resolve the "
                             "dependencies again rather than reuse the lock of the same "
                             "requirements, so new releases of unpinned ones are picked "
                             "up; the wheel and layer caches stay in use")
    result.add_argument("--network", metavar="NETWORK",
                        help="network of the build containers, e.g. host (default: the "
                             "engine's default bridge)")
    result.add_argument("--smoke-test", action="store_true",
                        help="run each script image's script with --help in a throwaway "
                             "container before tagging; a failure fails the build")
    result.add_argument("--user", metavar="NAME[:UID]",
                        help="create this user in the base image and run every image as it "
                             "(the virtualenv stays read-only to it); default: root")
    result.add_argument("--push", action="store_true",
                        help="once every image is built and tagged, push each to the "
                             "registry its name starts with (from --prefix), with the "
                             "credentials of 'docker login'; a name without a registry "
                             "host is refused (spell out docker.io/ for Docker Hub)")
    result.add_argument("--cache-from", metavar="REPOSITORY",
                        help="read earlier work (wheels, locks, the distributions' "
                             "layers) from this registry repository, e.g. "
                             "registry.example.com/team/app-cache, with the credentials of "
                             "'docker login'; every entry is checked by digest, and an "
                             "unusable entry or registry is a note, never a failure")
    result.add_argument("--cache-to", metavar="REPOSITORY",
                        help="after the images are tagged, write this build's work to this "
                             "registry repository for --cache-from of later builds (often "
                             "the same repository); a failed write is a warning")
    result.add_argument("--sbom-dir", metavar="DIR",
                        help="write each image's SBOM (CycloneDX 1.5 JSON, "
                             "NAME_TAG.cdx.json) into DIR; its sha256 is the image's "
                             "io.pbrx-images.sbom.digest label (default: "
                             "$XDG_CACHE_HOME/pbrx-images/sbom, i.e. ~/.cache/pbrx-images/sbom)")
    result.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="platform of every container and image, e.g. linux/arm64; "
                             "the base image must be of that platform, and the engine must "
                             "run it (natively or with qemu emulation); default: the "
                             "engine's own")
    result.add_argument("--dry-run", action="store_true",
                        help="print the plan (images, distro packages and the bindep "
                             "profiles that selected them, extras, CMD/ENTRYPOINT, layers) "
                             "and build nothing; the engine only reads the base image")
    result.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: print the final report (images with id, size and "
                             "layers, packages, step timings) as JSON on standard output, "
                             "with --dry-run the plan; the output for people stays on "
                             "standard error")
    shown = result.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true",
                       help="print only notes, errors and the final table of images")
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="also print every command run in a container and its output as "
                            "it comes (the default: one line per step, redrawn in place on a "
                            "terminal; the full output is always in the log file)")
    result.add_argument("--debug", action="store_true",
                        help="like --verbose, plus tracebacks")
    result.add_argument("--version", action="version", version="%(prog)s " + _version())
    return result


def _human_size(size: int) -> str:
    return "%.1f MB" % (size / 1e6)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    reporter = Reporter(debug=args.debug, verbose=args.verbose, quiet=args.quiet)
    with interrupts.watched():  # SIGINT and SIGTERM raise, so that clean-up runs
        return _run(args, reporter)


def _run(args: argparse.Namespace, reporter: Reporter) -> int:
    """The command, its errors and interruptions turned into an exit status."""
    import pbrx_images
    import pbrx_images.pipeline  # noqa: F401 (imported here, it counts as start-up)
    reporter.timings.append(("(start-up: importing build-images)",
                             time.monotonic() - pbrx_images.IMPORTED_AT))
    try:
        options = pbrx_images.resolve_options(
            Path(args.project_dir), base_image=args.base_image, prefix=args.prefix,
            tag=args.tag, constraints=args.constraints, no_cache=args.no_cache,
            debug=args.debug, network=args.network, smoke_test=args.smoke_test,
            dry_run=args.dry_run, user=args.user, push=args.push, sbom_dir=args.sbom_dir,
            platform=args.platform, refresh=args.refresh, cache_from=args.cache_from,
            cache_to=args.cache_to, extras=args.extras, build_args=args.build_args,
            only=args.only, labels=args.labels)
        if options.dry_run:
            planned = pbrx_images.pipeline.planned(options, reporter)
            if args.format == "json":
                import json

                from pbrx_images.ui.report import plan_report
                print(json.dumps(plan_report(planned.plan, planned.complete,
                                             planned.push_target, options.build_args),
                                 indent=2), flush=True)
            else:
                print("\n".join(planned.lines))
            return 0
        result = pbrx_images.build(options, reporter)
        if args.format == "json":
            from pbrx_images.ui.report import to_json
            print(to_json(result, reporter.timings), flush=True)
        reporter.say("")
        reporter.table([(image.name, _human_size(image.size), image.id.split(":")[-1][:12])
                        for image in result.images], ("IMAGE", "SIZE", "ID"))
        if result.plan.more_tags:
            reporter.say("Every image is also tagged %s." % ", ".join(result.plan.more_tags))
        pushed = [image for image in result.images if image.digest]
        if pushed:
            reporter.say("")
            reporter.say("Pushed; pull by digest:")
            for image in pushed:
                reporter.say("  %s@%s" % (image.name.rpartition(":")[0], image.digest))
        return 0
    except (BuildError, CommandFailed) as error:
        if args.debug:
            traceback.print_exc()
        _report_failure(reporter, error)
        return 1
    except (KeyboardInterrupt, interrupts.Interrupted) as interruption:
        reporter.error("build-images: interrupted; the containers and work images of this "
                       "run were removed.")
        return 130 if isinstance(interruption, KeyboardInterrupt) else 143


def _report_failure(reporter: Reporter, error: BaseException) -> None:
    failure = error if isinstance(error, CommandFailed) else error.__cause__
    if isinstance(failure, CommandFailed) and not reporter.verbose:  # (else shown already)
        lines = reporter.tail()
        if lines:
            reporter.error("---- last lines of output ----")
            for line in lines:
                reporter.error("    " + line)
            reporter.error("------------------------------")
    if isinstance(error, CommandFailed):
        message = ("A build command failed with exit status %d (%s): the last lines of its "
                   "output are above." % (error.exit_code, _shorten(error.command)))
    else:
        message = str(error)
    log_path = getattr(error, "log_path", None) or reporter.log_path
    reporter.error("build-images: error: " + message)
    if log_path:
        reporter.error("build-images: full log: %s" % log_path)


def _shorten(command: str, limit: int = 100) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[:limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
