"""``python -m aeclust`` (and ``torchrun -m aeclust``) is the ``aeclust`` command."""

import sys

from .cli import main

sys.exit(main())
