"""Persistence in a directory tree (the ``dir`` / ``file`` backends).

On-disk layout (the original's, so either implementation reads the other's)::

    <path>/books/<book uuid>/metadata          JSON of LogBook.to_dict(marshal_time=True)
    <path>/books/<book uuid>/<fd uuid>         symlink -> <path>/flow_details/<fd uuid>
    <path>/flow_details/<fd uuid>/metadata     JSON of FlowDetail.to_dict()
    <path>/flow_details/<fd uuid>/<ad uuid>    symlink -> <path>/atom_details/<ad uuid>
    <path>/atom_details/<ad uuid>/metadata     JSON {"atom": AtomDetail.to_dict(), "type": ...}
    <path>/*/<uuid>/lock                       per-object inter-process lock file

Crash safety: every ``metadata`` file is replaced atomically (written to a
hidden temporary file in the same directory, fsynced, renamed over the old
file, then the directory is fsynced), so a reader, or a process that was
killed mid-write, always sees either the old or the new complete JSON.
Leftover temporary files are ignored (the original ignores them too).

Concurrency: a backend-wide lock (a thread lock plus ``flock`` on
``<path>/.lock``; shared for reads, exclusive for writes) makes each
``Connection`` call atomic with respect to other threads and processes
using taskflow-ng; each object's ``lock`` file is also held (``lockf``, as
the original does) while that object is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import threading
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow.persistence import _file_cache
from taskflow.persistence import _decode
from taskflow.persistence import _serialize
from taskflow.persistence import models
from taskflow.persistence import path_based

__all__ = ['DirBackend']

_METADATA = 'metadata'
_LOCK = 'lock'
_TRASH = '.trash'
_KINDS = {'books': 'logbook', 'flow_details': 'flow detail',
          'atom_details': 'atom detail'}


class DirBackend(path_based.PathBasedBackend):
    """Persistence to a directory (``conf['path']``, required).

    Options: ``encoding`` (default ``'utf-8'``), ``max_cache_size`` (how
    many files ``file_cache`` keeps, at least one; unbounded by default),
    ``max_value_size`` and ``max_value_depth`` (limits on each stored
    field, see ``taskflow.persistence._serialize``).
    """

    def __init__(self, conf: dict | None) -> None:
        # Checked first, as the original does.
        file_cache = _file_cache.make((conf or {}).get('max_cache_size'))
        super().__init__(conf)
        self._path = os.path.abspath(self._path)
        self.encoding: str = self._conf.get('encoding', 'utf-8')
        #: Contents of the metadata files read, by path (see ``_file_cache``).
        self.file_cache = file_cache
        self.lock = _BackendLock(os.path.join(self._path, '.lock'))
        self.encoder = _serialize.encoder_from_conf(self._conf)

    def get_connection(self) -> Connection:
        return Connection(self)

    def close(self) -> None:
        pass


class _BackendLock:
    """Re-entrant thread lock + ``flock`` on a file shared by processes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._acquire(exclusive)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self, exclusive: bool) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # The directory does not exist yet (before upgrade()): there is
            # nothing to protect, reads will raise NotFound.
            self._fd = None
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _internal_error(cause: BaseException) -> exc.StorageFailure:
    return exc.StorageFailure(path_based.INTERNAL_ERROR, cause)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Connection(path_based.PathBasedConnection):
    """A connection to a :class:`DirBackend`."""

    backend: DirBackend
    _backend: DirBackend

    @staticmethod
    def _join_path(*parts: str) -> str:
        return os.path.join(*parts)

    # -- serialisation ------------------------------------------------------
    # Each field is encoded on its own (held to the backend's limits and
    # named when refused), then joined into the json.dumps() text of the
    # whole dict: the same bytes the original writes.

    def _dump_atom(self, ad: models.AtomDetail) -> str:
        atom = _serialize.dump_record('atom detail', ad, ad.to_dict(),
                                      self._backend.encoder)
        return '{"atom": %s, "type": %s}' % (
            atom, json.dumps(models.atom_detail_type(ad)))

    def _dump_flow(self, fd: models.FlowDetail) -> str:
        return _serialize.dump_record('flow detail', fd, fd.to_dict(),
                                      self._backend.encoder)

    def _dump_book(self, book: models.LogBook) -> str:
        return _serialize.dump_record('logbook', book,
                                      book.to_dict(marshal_time=True),
                                      self._backend.encoder)

    def _dump_plain(self, data: dict[str, Any]) -> str:
        return json.dumps(data)

    # -- primitives ---------------------------------------------------------

    def _get_item(self, path: str) -> Any:
        filename = os.path.join(path, _METADATA)
        try:
            text = self._read_text(filename)
        except FileNotFoundError as e:
            raise exc.NotFound('Item not found: %s' % filename, e) from e
        except OSError as e:
            raise _internal_error(e) from e
        try:
            if text is None:
                raise ValueError('its bytes are not %s text' % self._backend.encoding)
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            kind = _KINDS.get(os.path.basename(os.path.dirname(path)),
                              'object')
            record = _decode.Record(kind, None, os.path.basename(path),
                                    'at ' + filename)
            raise record.corrupt(_METADATA,
                                 'is not valid JSON (%s)' % (e,)) from e

    def _read_text(self, filename: str) -> str | None:
        """The file's text, from ``file_cache`` while the file is unchanged
        (``None`` if its bytes do not decode)."""
        cache = self._backend.file_cache
        with open(filename, 'rb') as fh:
            stat = os.fstat(fh.fileno())
            cached = cache.get(filename)
            if cached is not None and getattr(cached, 'identity', None) == \
                    _file_cache.identity(stat):
                return cached['data']
            raw = fh.read()
        try:
            text = raw.decode(self._backend.encoding)
        except ValueError:
            return None
        cache[filename] = _file_cache.CachedFile(text, stat)
        return text

    def _set_item(self, path: str, value: str, transaction: Any) -> None:
        try:
            os.makedirs(path, exist_ok=True)
            filename = os.path.join(path, _METADATA)
            self._backend.file_cache.pop(filename, None)
            with self._object_lock(path):
                self._atomic_write(filename, value.encode(self._backend.encoding))
        except OSError as e:
            raise _internal_error(e) from e

    @staticmethod
    @contextlib.contextmanager
    def _object_lock(path: str) -> Iterator[None]:
        fd = os.open(os.path.join(path, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lockf lock

    @staticmethod
    def _atomic_write(filename: str, data: bytes) -> None:
        directory, name = os.path.split(filename)
        tmp = os.path.join(directory,
                           '.%s.%s.tmp' % (name, uuidlib.uuid4().hex))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        try:
            os.replace(tmp, filename)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)

    def _del_tree(self, path: str, transaction: Any) -> None:
        # Move the tree out of the layout in one atomic rename first, so a
        # crash midway never leaves a half-deleted object behind.
        trash = os.path.join(self._backend.path, _TRASH)
        try:
            os.makedirs(trash, exist_ok=True)
            target = os.path.join(trash, uuidlib.uuid4().hex)
            os.rename(path, target)
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(trash)  # only if no other deletion is under way
        except FileNotFoundError as e:
            raise exc.NotFound('Item not found: %s' % path, e) from e
        except OSError as e:
            raise _internal_error(e) from e

    def _get_children(self, path: str) -> list[str]:
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError as e:
            raise exc.NotFound('Item not found: %s' % path, e) from e
        except OSError as e:
            raise _internal_error(e) from e
        if os.path.dirname(path) == self._backend.path:
            # A top directory (books/...): objects are directories.
            return [e.name for e in entries
                    if not e.name.startswith('.') and e.is_dir()]
        # An object directory: children are the links.
        return [e.name for e in entries if e.is_symlink()]

    def _ensure_path(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise _internal_error(e) from e

    def _create_link(self, src_path: str, dest_path: str,
                     transaction: Any) -> None:
        try:
            os.symlink(src_path, dest_path)
        except FileExistsError:
            pass
        except OSError as e:
            raise _internal_error(e) from e

    def _exists(self, path: str) -> bool:
        return os.path.exists(os.path.join(path, _METADATA))

    @contextlib.contextmanager
    def _transaction(self, exclusive: bool = True) -> Iterator[None]:
        with self._backend.lock.hold(exclusive):
            yield None

    # Reads only need a shared lock.
    def _reading(self) -> contextlib.AbstractContextManager:
        return self._transaction(exclusive=False)

    def get_logbook(self, book_uuid: str, lazy: bool = False
                    ) -> models.LogBook:
        with self._reading():
            return self._read_book(book_uuid, lazy)

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        with self._reading():
            return super().get_logbooks(lazy)

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False
                           ) -> Iterator[models.FlowDetail]:
        with self._reading():
            return super().get_flows_for_book(book_uuid, lazy)

    def get_flow_details(self, fd_uuid: str, lazy: bool = False
                         ) -> models.FlowDetail:
        with self._reading():
            return self._read_flow(fd_uuid, lazy)

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        with self._reading():
            return self._read_atom(ad_uuid)

    def get_atoms_for_flow(self, fd_uuid: str
                           ) -> Iterator[models.AtomDetail]:
        with self._reading():
            return super().get_atoms_for_flow(fd_uuid)

    def upgrade(self) -> None:
        with self._transaction():
            super().upgrade()
            trash = os.path.join(self._backend.path, _TRASH)
            if os.path.isdir(trash):
                shutil.rmtree(trash, ignore_errors=True)

    def validate(self) -> None:
        # In the original's order (and with its cause text).
        for path in (self.flow_path, self.atom_path, self.book_path):
            if not os.path.isdir(path):
                raise _internal_error(RuntimeError(
                    'Missing required directory: %s' % path))
            if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
                raise _internal_error(OSError(
                    errno.EACCES, os.strerror(errno.EACCES), path))
