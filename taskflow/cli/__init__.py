"""The ``taskflow`` command: look at and steer persisted flows.

``main()`` is the console script's entry point.  It only imports click and
rich (the ``cli`` extra) when run, so a missing extra is one clear line, not
an ImportError traceback.  See ``taskflow --help`` and ``docs/operate.md``.
"""

from __future__ import annotations

import sys

__all__ = ['main']


def main(argv: list[str] | None = None) -> int:
    """Run the ``taskflow`` command line; returns the exit status."""
    try:
        from taskflow.cli import _app
    except ImportError as error:
        print("taskflow: the command line needs its extra: pip install 'taskflow-ng[cli]'"
              ' (%s)' % error, file=sys.stderr)
        return 1
    return _app.main(argv)
