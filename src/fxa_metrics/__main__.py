"""``python -m fxa_metrics`` is the ``fxa-metrics`` command."""

import sys

from .cli import main

sys.exit(main())
