"""Atomic updates of the shared wheel cache, safe with concurrent builds.

start CACHE AGE UNUSED PROJECT: prune CACHE (remove run directories and
temporary files older than AGE s, and wheels, lock records, project wheels,
build environments and unpacked pips not used for UNUSED s); print the name
of the wheel in PROJECT, if any (and mark it used).
project DIR RUN_DIR [DEST RUN]: copy the wheel in DIR into RUN_DIR and print
its name; with DEST, first make directory DEST a copy of DIR unless it exists.
publish RUN_DIR CACHE RUN SKIP: copy RUN_DIR's wheels (and tools/) that CACHE
lacks into it, except SKIP; each appears at once, complete, or not at all.
remember SRC DEST: put the file SRC at DEST, atomically.
settle SRC DEST RUN [REPLACE]: rename directory SRC to DEST unless DEST exists
(then SRC is removed); with REPLACE, an existing DEST is replaced.
reuse RECORD CACHE RUN_DIR: when CACHE has every wheel the lock record RECORD
names, copy them into RUN_DIR (pip's into tools/), write the lock as
RUN_DIR/lock.txt, unpack pip's wheel (see unpack) and print the record.
unpack WHEEL DEST RUN: make directory DEST pip's wheel WHEEL unpacked and
byte-compiled, without its .dist-info, unless DEST exists.

Every use of a cached thing sets its mtime: that is what UNUSED counts from.
"""
import compileall
import glob
import json
import os
import shutil
import sys
import time


def store(source, destination, run):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    temporary = "%s.tmp-%s" % (destination, run)
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary)
    try:
        os.rename(temporary, destination)
    except OSError:  # another build stored the same source first
        shutil.rmtree(temporary, ignore_errors=True)


def used(path):
    try:
        os.utime(path)
    except OSError:
        pass


def unpack(wheel, destination, run):
    if os.path.isdir(destination):
        used(destination)
        return
    import zipfile
    temporary = "%s.tmp-%s" % (destination, run)
    shutil.rmtree(temporary, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(temporary, [name for name in archive.namelist()
                                       if ".dist-info/" not in name])
    compileall.compile_dir(temporary, quiet=2, ddir=destination)
    try:
        os.rename(temporary, destination)
    except OSError:  # another build unpacked it first
        shutil.rmtree(temporary, ignore_errors=True)


def settle(source, destination, run, replace=""):
    old = None
    if replace and os.path.isdir(destination):
        old = "%s.old-%s" % (destination, run)
        os.rename(destination, old)
    try:
        os.rename(source, destination)
    except OSError:  # another build settled one first
        shutil.rmtree(source, ignore_errors=True)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def wheel_in(directory):
    found = sorted(glob.glob(os.path.join(directory, "*.whl")))
    return os.path.basename(found[0]) if found else ""


def start(cache, max_age, unused_for, project):
    prune(cache, max_age)
    prune_unused(cache, unused_for)
    name = wheel_in(project)
    if name:
        used(project)
    print(name)


def project(directory, run_dir, destination=None, run=None):
    if destination:
        store(directory, destination, run)
    name = wheel_in(directory)
    shutil.copyfile(os.path.join(directory, name), os.path.join(run_dir, name))
    print(name)


def publish(run_dir, cache, run, skip):
    incoming = os.path.join(cache, ".incoming")
    os.makedirs(incoming, exist_ok=True)
    wheels = glob.glob(os.path.join(run_dir, "*.whl"))
    wheels += glob.glob(os.path.join(run_dir, "tools", "*.whl"))
    for path in wheels:
        name = os.path.basename(path)
        target = os.path.join(cache, name)
        if name == skip:
            continue
        if os.path.exists(target):  # pip took it from the cache
            used(target)
            continue
        temporary = os.path.join(incoming, "%s-%s" % (run, name))
        shutil.copyfile(path, temporary)
        os.replace(temporary, target)


def prune(cache, max_age):
    """Remove what builds killed without clean-up left behind (older than max_age s)."""
    leftovers = glob.glob(os.path.join(cache, "runs", "*"))
    leftovers += glob.glob(os.path.join(cache, ".incoming", "*"))
    for kind in ("projects", "build-envs", "pip"):
        leftovers += glob.glob(os.path.join(cache, kind, "*.tmp-*"))
        leftovers += glob.glob(os.path.join(cache, kind, "*.old-*"))
    remove_older(leftovers, max_age)


def prune_unused(cache, max_age):
    """Remove what no build used for max_age s; a directory goes whole or not at all."""
    kept = glob.glob(os.path.join(cache, "*.whl"))
    kept += glob.glob(os.path.join(cache, "locks", "*.json"))
    for kind in ("projects", "build-envs", "pip"):
        kept += [path for path in glob.glob(os.path.join(cache, kind, "*"))
                 if ".tmp-" not in path and ".old-" not in path]
    remove_older(kept, max_age, whole=True)


def remove_older(paths, max_age, whole=False):
    """Remove each of paths modified more than max_age s ago; what cannot be, stays.

    whole: a directory is renamed first, so that no build sees it half removed.
    """
    now = time.time()
    for path in paths:
        try:
            if now - os.lstat(path).st_mtime <= float(max_age):
                continue
            if os.path.isdir(path):
                if whole:
                    old = "%s.old-unused" % path
                    os.rename(path, old)
                    path = old
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            pass


def remember(source, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    temporary = "%s.tmp-%d" % (destination, os.getpid())
    shutil.copyfile(source, temporary)
    os.replace(temporary, destination)


def reuse(record, cache, run_dir):
    try:
        with open(record) as handle:
            data = json.load(handle)
        wanted = [(name, run_dir) for name in data["wheels"]]
        wanted.append((data["pip"], os.path.join(run_dir, "tools")))
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not all(os.path.isfile(os.path.join(cache, name)) for name, _ in wanted):
        return
    try:
        for name, directory in wanted:
            os.makedirs(directory, exist_ok=True)
            shutil.copyfile(os.path.join(cache, name), os.path.join(directory, name))
            used(os.path.join(cache, name))
    except OSError:  # pruned meanwhile: resolve again
        return
    with open(os.path.join(run_dir, "lock.txt"), "w") as handle:
        handle.write("".join(line + "\n" for line in data["lock"]))
    try:
        unpack(os.path.join(cache, data["pip"]),
               os.path.join(cache, "pip", data["pip"][:-4]), os.path.basename(run_dir))
    except Exception:  # a broken pip wheel: resolve again, which fetches it again
        return
    os.utime(record)
    print("pbrx-images-lock:" + json.dumps(data))


if __name__ == "__main__":
    # (the commands take different arguments; no typing import: any python3 runs this)
    {"start": start, "project": project, "publish": publish, "remember": remember,
     "reuse": reuse, "unpack": unpack, "settle": settle}[sys.argv[1]](  # type: ignore[operator]
        *sys.argv[2:])
