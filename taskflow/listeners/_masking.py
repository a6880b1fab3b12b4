"""What the observability tools (CLI, web view, OTel listener) never show.

Values are masked by *key*, with the walk every listener uses
(:func:`taskflow.secrets.redact`: mappings, lists, tuples and sets at any
depth, plus the project-wide masked keys and remembered values).  The
difference is which keys count: :class:`SecretKeys` matches any key whose
lower-cased text *contains* one of its fragments, so ``'db_password'`` and
``'X-Api-Key'`` are caught by ``'password'`` and ``'api-key'``.

:data:`DEFAULT_SECRET_KEYS` are always masked; users add their own
(``taskflow web --mask card_number``, ``OpenTelemetryListener(mask_keys=...)``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Container, Iterable
from typing import Any

from taskflow import secrets

#: Shown instead of a secret value (the failure formatter's mask).
MASK = '***'

#: Key fragments that are always masked (case-insensitive, anywhere in the key).
DEFAULT_SECRET_KEYS = ('password', 'passwd', 'secret', 'token', 'api_key', 'api-key',
                       'apikey', 'credential', 'private_key', 'authorization', 'cookie')


class SecretKeys(Container):
    """A container for ``key in keys`` tests that matches key fragments.

    ``'PASSWORD'``, ``'db_password'`` and ``'password2'`` are all in
    ``SecretKeys(['password'])``; keys that are not strings never are.
    """

    def __init__(self, extra: Iterable[str] = (), defaults: bool = True) -> None:
        fragments = list(DEFAULT_SECRET_KEYS) if defaults else []
        fragments.extend(str(key) for key in extra)
        self.fragments = tuple(sorted({f.lower() for f in fragments if f}))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lowered = key.lower()
        return any(fragment in lowered for fragment in self.fragments)

    def __repr__(self) -> str:
        return 'SecretKeys(%r)' % (self.fragments,)


def mask(value: Any, keys: Container[Any]) -> Any:
    """A copy of ``value`` with every value under a secret key shown as ``'***'``."""
    return secrets.redact(value, keys)


def mask_named(name: str, value: Any, keys: Container[Any]) -> Any:
    """``value`` as published under ``name``: all of it masked when the name is secret."""
    if name in keys:
        return MASK
    return mask(value, keys)


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``'***'``."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition('@')
    user = userinfo.split(':', 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc='%s:%s@%s' % (user, MASK, hostinfo)))
