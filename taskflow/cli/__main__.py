"""``python -m taskflow.cli``: the same as the ``taskflow`` command."""

import sys

from taskflow.cli import main

sys.exit(main())
