"""taskflow-ng: a fast, drop-in compatible reimplementation of OpenStack TaskFlow.

The public API lives at the same import paths as the original's
(``taskflow.task``, ``taskflow.patterns.linear_flow``, ``taskflow.engines``...);
implementation details live in modules whose names start with ``_``.

No handler is installed on the ``taskflow`` logger: as with the original, a
program that configures no logging still sees the warnings of the modules
that log through plain loggers (a notifier callback that raised, a lost job
claim) on stderr, through Python's last-resort handler.  See
:mod:`taskflow.logging` for the loggers that stay quiet.
"""
