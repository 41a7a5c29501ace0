"""Build container images of a Python project with the builder-image pattern."""
