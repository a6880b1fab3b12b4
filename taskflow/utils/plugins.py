"""Finding a plugin class by name: a built-in table first, then entry points.

Persistence backends, jobboards and conductors are all looked up this way,
so third-party plugins register under the original's entry point groups.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata


def find_class(name: str, namespace: str, builtin: Mapping[str, str],
               builtin_namespace: str) -> type | None:
    """The class ``name`` stands for, or ``None``.

    ``builtin`` maps names to ``'module:Class'`` (imported lazily: plugins
    need optional libraries); it is used only when ``namespace`` is
    ``builtin_namespace``. Other names are looked up in the ``namespace``
    entry point group.
    """
    if namespace == builtin_namespace and name in builtin:
        module_name, _, attr = builtin[name].partition(':')
        return getattr(importlib.import_module(module_name), attr)
    for entry_point in metadata.entry_points(group=namespace):
        if entry_point.name == name:
            return entry_point.load()
    return None
