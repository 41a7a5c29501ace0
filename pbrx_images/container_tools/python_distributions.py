"""Print the interpreter and the distributions of the Python that runs this.

Run by the SBOM probe (``pbrx_images.stages.sbom.PYTHON_QUERY``) with the
image's virtualenv Python, ``-I -B``: no environment, no user site, and no
byte code written into the image.  One line, the mark then JSON:
``{"interpreter": [implementation, version], "distributions": [[name, version]]}``.
"""
import json
import platform

#: Marks the line of the output that holds the JSON (stages.sbom reads it).
MARK = "pbrx-images-sbom:"


def installed():
    """(name, version) of each installed distribution, sorted, without empty ones."""
    try:
        from importlib import metadata
        found = [(d.metadata["Name"], d.version) for d in metadata.distributions()]
    except ImportError:  # Python < 3.8
        import pkg_resources
        found = [(d.project_name, d.version) for d in pkg_resources.working_set]
    return sorted(set((n, v) for n, v in found if n and v))


if __name__ == "__main__":
    print(MARK + json.dumps({
        "interpreter": [platform.python_implementation(), platform.python_version()],
        "distributions": installed()}))
