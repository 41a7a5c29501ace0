#!/usr/bin/python3
"""A stand-in for Zuul's ``zuul_return``, for running the jobs' playbooks in tests.

On a Zuul executor ``zuul_return`` is built in: it records data the job
returns to Zuul (given to child jobs, shown in the build page, artifacts).
Outside Zuul the module does not exist, so the tests put this directory on
``ANSIBLE_LIBRARY``: the roles call ``zuul_return`` exactly as under Zuul,
and this module stores what they returned in a JSON file the tests read,
``$ZUUL_JOBDIR/work/results.json`` (or ``path``) like Zuul, as
``{"data": {...}, "secret_data": {...}}``, merging later calls into earlier
ones key by key.
"""
from __future__ import annotations

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def merge(old, new):
    """``new`` merged into ``old``: mappings key by key, anything else replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = merge(old.get(key), value)
        return merged
    return new


def main():
    module = AnsibleModule(argument_spec=dict(
        data=dict(type="dict"),
        secret_data=dict(type="dict", no_log=True),
        path=dict(type="str"),
    ))
    path = module.params["path"] or os.path.join(
        os.environ.get("ZUUL_JOBDIR") or module.fail_json(msg="ZUUL_JOBDIR is not set"),
        "work", "results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as handle:
            results = json.load(handle)
    for key in ("data", "secret_data"):
        if module.params[key]:
            results[key] = merge(results.get(key, {}), module.params[key])
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(handle, "w") as stream:
        json.dump(results, stream, indent=2)
    os.replace(temporary, path)
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
