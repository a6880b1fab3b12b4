"""ZooKeeper (kazoo) helpers: build/finalize clients, checked transactions.

Needs the optional ``kazoo`` package, imported only when a helper that needs
it is used (``make_client``, ``checked_commit``, ``KazooTransactionException``).
"""

from __future__ import annotations

from typing import Any

from taskflow import exceptions as exc
from taskflow import logging

LOG = logging.getLogger(__name__)

_TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')


def _bool_from(value: Any) -> bool:
    # Config values may be strings ('yes', 'false', '1'...).
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE_STRINGS


#: ``(conf key, converter, default)`` of the options copied to the client.
CONF_TRANSFERS = (
    ('read_only', _bool_from, False),
    ('randomize_hosts', _bool_from, False),
    ('keyfile', None, None),
    ('keyfile_password', None, None),
    ('certfile', None, None),
    ('use_ssl', _bool_from, False),
    ('verify_certs', _bool_from, True),
)


def _import_kazoo() -> Any:
    try:
        import kazoo.client
        import kazoo.exceptions
    except ImportError as e:
        raise ImportError("ZooKeeper support needs kazoo, which is not"
                          " installed: pip install kazoo") from e
    return kazoo


def _parse_hosts(hosts: Any) -> Any:
    if isinstance(hosts, str):
        return hosts.strip()
    if isinstance(hosts, dict):
        return ','.join('%s:%s' % (host, port) for host, port in hosts.items())
    if isinstance(hosts, (list, set, tuple)):
        return ','.join(str(host) for host in hosts)
    return hosts


def prettify_failures(failures: list[tuple[Any, BaseException]],
                      limit: int = -1) -> str:
    """Text for ``(request, exception)`` pairs, e.g. ``NoNodeError@Create(path='/a')``.

    At most ``limit`` pairs are shown when ``limit`` is positive.
    """
    shown = failures
    if limit > 0:
        shown = failures[:limit]
    parts = ['%s@%s(path=%r)' % (type(error).__name__, type(request).__name__,
                                  request.path)
             for request, error in shown]
    text = ', '.join(parts)
    if len(shown) < len(failures):
        text += ' and %s more...' % (len(failures) - len(shown))
    return text


def checked_commit(txn: Any) -> Any:
    """Commit a kazoo transaction, raising if any operation failed.

    :raises KazooTransactionException: with the failed ``(op, error)`` pairs.
    """
    kazoo = _import_kazoo()
    results = txn.commit()
    failures = [(op, result) for op, result in zip(txn.operations, results)
                if isinstance(result, kazoo.exceptions.KazooException)]
    if failures:
        raise _transaction_exception_class()(
            'Transaction with %s operations failed: %s'
            % (len(txn.operations), prettify_failures(failures, limit=1)),
            failures)
    return results


def finalize_client(client: Any) -> None:
    """Stop, then close, a kazoo client."""
    client.stop()
    client.close()


def check_compatible(client: Any, min_version: tuple | None = None,
                     max_version: tuple | None = None) -> None:
    """Check the server version of ``client`` is within the given bounds.

    :raises taskflow.exceptions.IncompatibleVersion: when it is not.
    """
    server_version = None
    if min_version:
        server_version = tuple(int(a) for a in client.server_version())
        min_version = tuple(int(a) for a in min_version)
        if server_version < min_version:
            raise exc.IncompatibleVersion(
                'Incompatible zookeeper version %s detected, zookeeper >= %s'
                ' required' % (_dotted(server_version), _dotted(min_version)))
    if max_version:
        if server_version is None:
            server_version = tuple(int(a) for a in client.server_version())
        max_version = tuple(int(a) for a in max_version)
        if server_version > max_version:
            raise exc.IncompatibleVersion(
                'Incompatible zookeeper version %s detected, zookeeper <= %s'
                ' required' % (_dotted(server_version), _dotted(max_version)))


def _dotted(version: tuple) -> str:
    return '.'.join(str(part) for part in version)


def make_client(conf: dict) -> Any:
    """Build a (not yet started) ``kazoo.client.KazooClient`` from ``conf``.

    Keys: ``hosts`` (str, list of ``host:port``, or ``{host: port}``; default
    ``'localhost:2181'``), ``timeout``, ``read_only``, ``randomize_hosts``,
    ``command_retry``, ``connection_retry``, ``handler``, ``keyfile``,
    ``keyfile_password``, ``certfile``, ``ca``, ``use_ssl``, ``verify_certs``.
    """
    kazoo = _import_kazoo()
    client_kwargs: dict[str, Any] = {'logger': LOG}
    for key, converter, default in CONF_TRANSFERS:
        value = conf.get(key, default)
        if converter is not None:
            value = converter(value)
        client_kwargs[key] = value
    # The reference ignores 'ca'; the spec lists it, so pass it when given.
    if conf.get('ca') is not None:
        client_kwargs['ca'] = conf['ca']
    hosts = _parse_hosts(conf.get('hosts', 'localhost:2181'))
    if not hosts or not isinstance(hosts, str):
        raise TypeError("Invalid hosts format, expected non-empty string/list,"
                        " not '%s' (%s)" % (hosts, type(hosts)))
    client_kwargs['hosts'] = hosts
    if 'timeout' in conf:
        client_kwargs['timeout'] = float(conf['timeout'])
    for key in ('command_retry', 'connection_retry', 'handler'):
        if key in conf:
            client_kwargs[key] = conf[key]
    return kazoo.client.KazooClient(**client_kwargs)


def _make_transaction_exception_class() -> type:
    kazoo = _import_kazoo()

    class KazooTransactionException(kazoo.exceptions.KazooException):
        """A kazoo transaction failed; ``failures`` holds ``(op, error)`` pairs."""

        def __init__(self, message: str, failures: Any) -> None:
            super().__init__(message)
            self._failures = tuple(failures)

        @property
        def failures(self) -> tuple:
            """The ``(operation, exception)`` pairs that failed."""
            return self._failures

    KazooTransactionException.__module__ = __name__
    KazooTransactionException.__qualname__ = 'KazooTransactionException'
    return KazooTransactionException


def _transaction_exception_class() -> type:
    cls = globals().get('KazooTransactionException')
    if cls is None:
        cls = _make_transaction_exception_class()
        globals()['KazooTransactionException'] = cls
    return cls


def __getattr__(name: str) -> Any:
    # PEP 562: build the kazoo-based exception class on first use only.
    if name == 'KazooTransactionException':
        return _transaction_exception_class()
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
