"""Opening a persistence backend from a URL and finding flows in it.

Every tool (CLI, web view, the Python API) names a backend the same way:

* a URL that :func:`taskflow.persistence.backends.fetch` understands
  (``sqlite:///path.db``, ``postgresql://user:pw@host/db``,
  ``mysql+pymysql://...``, ``memory://``);
* ``dir:///abs/path`` or ``file:///abs/path`` for the directory backend
  (whose URL alone does not carry its path);
* a plain path: an existing directory is a ``dir`` backend, anything else an
  SQLite file.

Without one, ``$TASKFLOW_BACKEND`` is used, else the SQLite file the main
job (``scripts/main``) writes: :func:`main_job_database`.

A flow is found by its uuid, a unique uuid prefix or a unique name.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import urllib.parse
from collections.abc import Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc
from taskflow.listeners import _masking
from taskflow.operate import _errors
from taskflow.persistence import backends as p_backends
from taskflow.persistence import models

#: Environment variable naming the default backend URL.
BACKEND_ENV = 'TASKFLOW_BACKEND'
_PREFIX_MIN = 4   # shortest uuid prefix accepted as a reference


def main_job_database() -> str:
    """The SQLite file the main job writes and the tools read by default.

    ``$XDG_STATE_HOME/taskflow-ng/main-job.db`` (``~/.local/state/...``
    when ``XDG_STATE_HOME`` is not set).
    """
    state_home = os.environ.get('XDG_STATE_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'state')
    return os.path.join(state_home, 'taskflow-ng', 'main-job.db')


def default_backend_url() -> str:
    """``$TASKFLOW_BACKEND``, else the main job's SQLite file as a URL."""
    return os.environ.get(BACKEND_ENV) or 'sqlite:///' + main_job_database()


def mask_url(url: str) -> str:
    """``url`` without its password (safe to print or show)."""
    return _masking.mask_url(url)


def backend_conf(url: str) -> dict[str, Any]:
    """The ``fetch()`` configuration for a backend URL or path (see module doc)."""
    if not url:
        raise _errors.OperatorError('empty backend URL')
    scheme = urllib.parse.urlsplit(url).scheme if '://' in url else ''
    if scheme in ('dir', 'file'):
        path = urllib.parse.urlsplit(url).path or url.split('://', 1)[1]
        return {'connection': 'dir', 'path': path}
    if scheme:
        return {'connection': url}
    if os.path.isdir(url):
        return {'connection': 'dir', 'path': os.path.abspath(url)}
    return {'connection': 'sqlite:///' + os.path.abspath(url)}


def _sqlite_file(conf: dict[str, Any]) -> str | None:
    connection = conf.get('connection', '')
    if not connection.startswith('sqlite:///'):
        return None
    path = connection[len('sqlite:///'):].split('?', 1)[0]
    return path or None


def open_backend(url: str | None = None, create: bool = False) -> Any:
    """Build the backend named by ``url`` (default: :func:`default_backend_url`).

    The schema is created/upgraded (idempotent).  With ``create=False`` a
    missing SQLite file or directory is an error instead of being created:
    looking at a flow must not leave an empty database behind a typo.
    """
    url = url or default_backend_url()
    conf = backend_conf(url)
    sqlite_file = _sqlite_file(conf)
    if not create:
        missing = (sqlite_file if sqlite_file and not os.path.exists(sqlite_file)
                   else conf['path'] if conf.get('connection') == 'dir'
                   and not os.path.isdir(conf['path']) else None)
        if missing:
            raise _errors.OperatorError('no taskflow database at %s (run a flow first, or'
                                        ' pass --backend URL)' % missing)
    elif sqlite_file:
        pathlib.Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        backend = p_backends.fetch(conf)
    except ImportError as error:
        raise _errors.OperatorError(str(error)) from error
    except (exc.NotFound, ValueError, TypeError) as error:
        raise _errors.OperatorError('unusable backend %s: %s'
                                    % (mask_url(url), _one_line(error))) from error
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
    except Exception as error:
        backend.close()
        raise _errors.OperatorError('cannot open backend %s: %s'
                                    % (mask_url(url), _one_line(error))) from error
    return backend


def _one_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, exc.TaskFlowException) else str(error)
    cause = getattr(error, 'cause', None) or error.__cause__
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    if cause is not None and str(cause).strip():
        first += ': ' + str(cause).strip().splitlines()[0]
    return first


class FlowRef(NamedTuple):
    """A flow detail and the logbook it belongs to."""

    book: models.LogBook
    flow: models.FlowDetail


def iter_flows(backend: Any) -> Iterator[FlowRef]:
    """Every flow detail (with its atom details) of every logbook."""
    with contextlib.closing(backend.get_connection()) as conn:
        books = list(conn.get_logbooks(lazy=False))
    for book in books:
        for flow_detail in book:
            yield FlowRef(book, flow_detail)


def list_books(backend: Any) -> list[models.LogBook]:
    """Every logbook with its flow details."""
    with contextlib.closing(backend.get_connection()) as conn:
        return list(conn.get_logbooks(lazy=False))


def find_flow(backend: Any, reference: str) -> FlowRef:
    """The flow whose uuid, uuid prefix (4+ characters) or name is ``reference``.

    Raises :class:`FlowNotFound` when nothing or more than one flow matches.
    """
    reference = (reference or '').strip()
    if not reference:
        raise _errors.FlowNotFound('no flow given (a flow uuid, uuid prefix or name)')
    refs = list(iter_flows(backend))
    for ref in refs:
        if ref.flow.uuid == reference:
            return ref
    matches = [ref for ref in refs if ref.flow.name == reference]
    if not matches and len(reference) >= _PREFIX_MIN:
        matches = [ref for ref in refs if ref.flow.uuid.startswith(reference)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise _errors.FlowNotFound('no flow %r in this backend (try `taskflow flows`)'
                                   % reference)
    shown = ', '.join('%s (%s)' % (ref.flow.uuid, ref.flow.state) for ref in matches[:5])
    raise _errors.FlowNotFound('%d flows match %r: %s%s; use a uuid'
                               % (len(matches), reference, shown,
                                  ', ...' if len(matches) > 5 else ''))


def load_flow_detail(backend: Any, flow_uuid: str) -> models.FlowDetail:
    """A fresh copy of one flow detail (with its atom details) from the backend."""
    with contextlib.closing(backend.get_connection()) as conn:
        try:
            return conn.get_flow_details(flow_uuid)
        except exc.NotFound as error:
            raise _errors.FlowNotFound('flow %s no longer exists' % flow_uuid) from error
