"""``python -m pbrx_images``: the ``build-images`` command, where no script is on PATH."""
import sys

from pbrx_images.cli import main

sys.exit(main())
