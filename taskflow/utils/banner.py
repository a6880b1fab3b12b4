"""The text banner a worker prints when it starts."""

from __future__ import annotations

import os
from typing import Any

from taskflow import version

BANNER_HEADER = os.linesep.join([
    '___    __',
    ' |    |_',
    ' |ask |low v%s',
]) % version.version_string()


def make_banner(what: str, chapters: dict[str, Any]) -> str:
    """The banner header, ``*what*``, then each chapter (sorted by title).

    A chapter is a dict (``key => value`` lines, sorted by key) or a list,
    tuple or set (numbered lines; sets sorted).
    """
    lines = [BANNER_HEADER, '*%s*' % (what,)]
    for title in sorted(chapters):
        lines.append('%s:' % (title,))
        contents = chapters[title]
        if isinstance(contents, dict):
            for key in sorted(contents):
                lines.append('  %s => %s' % (key, contents[key]))
        elif isinstance(contents, (list, tuple, set)):
            if isinstance(contents, set):
                contents = sorted(contents)
            for i, item in enumerate(contents, 1):
                lines.append('  %s. %s' % (i, item))
        else:
            raise TypeError('Unsupported chapter contents type: one of dict,'
                            ' list, tuple, set expected and not %s'
                            % type(contents).__name__)
    return os.linesep.join(lines)
