"""``python -m edgerestore`` is the ``edgerestore`` command."""

import sys

from edgerestore.cli import main

sys.exit(main())
