"""An example project for build-images."""
