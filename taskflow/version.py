"""The version of this library (that of the installed ``taskflow-ng``)."""

from __future__ import annotations

import functools
from importlib import metadata

TASK_VENDOR = 'OpenStack Foundation'
TASK_PRODUCT = 'OpenStack TaskFlow'
TASK_PACKAGE = None  # OS distro package version suffix

_DISTRIBUTION = 'taskflow-ng'
# The reference version this library is compatible with; used when the
# distribution metadata is not available (e.g. running from a source tree).
_FALLBACK_VERSION = '6.5.0'


@functools.lru_cache(maxsize=None)
def version_string() -> str:
    """The installed ``taskflow-ng`` version (``'6.5.0'`` if unknown)."""
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def version_string_with_package() -> str:
    """The version, with the distro package suffix when there is one."""
    if TASK_PACKAGE is None:
        return version_string()
    return '%s-%s' % (version_string(), TASK_PACKAGE)
