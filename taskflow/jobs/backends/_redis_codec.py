"""The wire format of the Redis jobboard: msgpack, as the original writes it.

Postings, trash entries and ``last_modified`` values are msgpack. Datetimes
travel as msgpack extension type 1 whose payload is a msgpack map
``{day, month, year, hour, minute, second, microsecond[, tz]}`` (``tz`` is a
zone name, ``'UTC'`` for UTC), which is what the original TaskFlow reads and
writes, so both sides understand each other's postings.
"""

from __future__ import annotations

import datetime
from typing import Any

try:
    import msgpack
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("The redis jobboard needs the msgpack package, which"
                      " is not installed: pip install 'taskflow-ng[redis]'"
                      ) from e

DATETIME_EXT = 1
_FIELDS = ('day', 'month', 'year', 'hour', 'minute', 'second', 'microsecond')


def _tz_name(tz: datetime.tzinfo) -> str:
    key = getattr(tz, 'key', None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    return 'UTC'


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and not hasattr(value.tzinfo, 'key') \
                and value.utcoffset() != datetime.timedelta(0):
            # A fixed-offset zone has no name the other side could load.
            value = value.astimezone(datetime.timezone.utc)
        fields = {name: getattr(value, name) for name in _FIELDS}
        if value.tzinfo is not None:
            fields['tz'] = _tz_name(value.tzinfo)
        return msgpack.ExtType(DATETIME_EXT, dumps(fields))
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError('Can not encode %r (%s) for the redis jobboard'
                    % (value, type(value).__name__))


def _zone(name: str) -> datetime.tzinfo:
    if name.upper() == 'UTC':
        return datetime.timezone.utc
    try:
        import zoneinfo
        return zoneinfo.ZoneInfo(name)
    except Exception:  # unknown zone name: keep the wall time as UTC
        return datetime.timezone.utc


def _ext_hook(code: int, data: bytes) -> Any:
    if code != DATETIME_EXT:
        return msgpack.ExtType(code, data)
    fields = loads(data)
    tz = fields.pop('tz', None)
    value = datetime.datetime(**{k: fields[k] for k in _FIELDS})
    if tz:
        value = value.replace(tzinfo=_zone(tz))
    return value


def dumps(value: Any) -> bytes:
    """``value`` as msgpack (datetimes as the original's extension)."""
    return msgpack.packb(value, default=_default, use_bin_type=True)


def loads(data: bytes) -> Any:
    """The value msgpack ``data`` holds."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False,
                           strict_map_key=False)


def dumps_map_missing_one(mapping: dict) -> bytes:
    """``mapping`` packed as a map of ``len(mapping) + 1`` entries whose last
    entry is missing: the posting script appends ``sequence`` (known only
    inside Redis) so a post takes one round trip."""
    packer = msgpack.Packer(default=_default, use_bin_type=True)
    parts = [packer.pack_map_header(len(mapping) + 1)]
    for key, value in mapping.items():
        parts.append(packer.pack(key))
        parts.append(packer.pack(value))
    return b''.join(parts)
