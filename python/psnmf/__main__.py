"""``python -m psnmf`` is the ``psnmf`` command."""

import sys

from .cli import main

sys.exit(main())
