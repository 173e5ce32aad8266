"""``python -m hwgen``: the same command line as the ``hwgen`` script."""

import sys

from .cli import main

sys.exit(main())
