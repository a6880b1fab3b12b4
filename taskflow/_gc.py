"""Pausing the cyclic garbage collector around bulk construction.

Building the structures of a large flow (a graph flow's ``add``, compiling,
preparing and validating) allocates many long-lived objects and no garbage
cycles.  Every full collection meanwhile rescans the whole heap, which makes
big flows cost more per atom than small ones.  These operations run no user
code (besides atom properties) and restore the previous setting, so the
pause is short and invisible.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (if it was enabled)."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
