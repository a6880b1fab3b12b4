"""taskflow-ng: a fast, drop-in compatible reimplementation of OpenStack TaskFlow.

The public API lives at the same import paths as the original's
(``taskflow.task``, ``taskflow.patterns.linear_flow``, ``taskflow.engines``...);
implementation details live in modules whose names start with ``_``.
"""

import logging as _logging

# A library never prints log records unless the application configures
# logging: one NullHandler here covers every ``taskflow.*`` logger.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
