"""Exceptions raised by taskflow.

Hierarchy::

    Exception
    ├── TaskFlowException(message, cause=None)
    │   ├── StorageFailure            a persistence backend cannot read/write
    │   │   ├── UnstorableValue       a value can never be stored (taskflow-ng)
    │   │   ├── CorruptRecord         (also a ValueError) stored data is corrupt (taskflow-ng)
    │   │   └── OwnershipLost         a write with a stale lease token (taskflow-ng)
    │   ├── FlowLeased                another owner runs the flow (taskflow-ng)
    │   ├── ConductorFailure          conductor problems
    │   ├── JobFailure                a jobboard operation failed
    │   │   └── UnclaimableJob        the job is already claimed
    │   ├── ExecutionFailure          engine problems (e.g. locked by another thread)
    │   │   ├── RequestTimeout        a worker request was not accepted in time
    │   │   │   └── WorkerLost        the worker running a request died (taskflow-ng)
    │   │   ├── InvalidState          invalid transition / wrong engine phase
    │   │   └── AtomTimeout           (also a TimeoutError) taskflow-ng extension
    │   ├── DependencyFailure         graph cycle
    │   │   ├── AmbiguousDependency   several providers for one symbol
    │   │   └── MissingDependencies(who, requirements, cause=None, method=None)
    │   ├── CompilationFailure
    │   ├── IncompatibleVersion
    │   ├── Duplicate                 duplicate atom names or details
    │   ├── NotFound                  unknown name/result/atom/engine/backend/job
    │   ├── Empty
    │   ├── MultipleChoices           e.g. several flow details and no flow_uuid
    │   ├── InvalidFormat             bad serialised data
    │   └── DisallowedAccess(message, cause=None, state=None)
    ├── WrappedFailure(causes)        several failures at once; NOT a TaskFlowException
    └── builtins.NotImplementedError
        └── NotImplementedError       taskflow.exceptions.NotImplementedError

A :class:`TaskFlowException` keeps the exception it was raised because of in
``cause``: only what is passed explicitly (``raise X from y`` alone does not
set it).  :func:`raise_with_cause` passes the exception being handled as
``cause`` *and* chains it with ``raise ... from`` so both views agree.
"""

from __future__ import annotations

import builtins
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn


def _rebuild(cls: type, args: tuple, state: dict) -> BaseException:
    # Pickle support that does not call __init__ (whose signature differs
    # from ``args`` for e.g. MissingDependencies and WrappedFailure).
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class TaskFlowException(Exception):
    """Base class for most exceptions emitted from this library.

    :param message: the exception message (``args == (message,)``).
    :param cause: the exception that caused this one (shown by ``str()``).
    """

    def __init__(self, message: Any, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self._cause = cause

    @property
    def cause(self) -> BaseException | None:
        """The exception this one was caused by (or ``None``)."""
        return self._cause

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.args, self.__dict__))

    def __str__(self) -> str:
        return self.pformat()

    def _get_message(self) -> str:
        return str(self.args[0])

    def pformat(self, indent: int = 2, indent_text: str = ' ',
                show_root_class: bool = False) -> str:
        """Format this exception and its chain of causes.

        Each link of the ``cause`` chain goes on its own line, indented by
        ``indent`` more ``indent_text`` per level.  Taskflow causes show as
        ``ClassName: message`` and the walk continues with their cause; any
        other exception is formatted like the last line of a traceback and
        ends the walk.
        """
        if indent < 0:
            raise ValueError("Provided 'indent' must be greater than or equal"
                             " to zero instead of %s" % indent)
        parts = []
        if show_root_class:
            parts.append('%s: ' % type(self).__name__)
        parts.append(self._get_message())
        seen: list[BaseException] = [self]
        next_up = self._cause
        depth = indent
        while next_up is not None and not any(next_up is s for s in seen):
            seen.append(next_up)
            prefix = indent_text * depth
            if isinstance(next_up, TaskFlowException):
                parts.append(os.linesep)
                parts.append(prefix)
                parts.append('%s: %s' % (type(next_up).__name__,
                                         next_up._get_message()))
                next_up = next_up._cause
            else:
                for line in traceback.format_exception_only(type(next_up),
                                                            next_up):
                    parts.append(os.linesep)
                    parts.append(prefix)
                    parts.append(line.rstrip())
                next_up = None
            depth += indent
        return ''.join(parts)


# Errors related to storage or persistence backend operations.
class StorageFailure(TaskFlowException):
    """Raised when storage or a persistence backend can not read or write."""


class UnstorableValue(StorageFailure):
    """A value can never be stored by the backend (a taskflow-ng extension).

    Raised before anything is written, for values that are not serialisable
    (cyclic, too deeply nested, bytes that are not UTF-8, iterators, files...)
    or larger than the backend accepts. Unlike other storage failures it is
    not transient: the engine fails the atom that produced the value.
    """


class CorruptRecord(StorageFailure, ValueError):
    """A stored record is not something taskflow could have written (taskflow-ng).

    Raised when reading: a failure column that is not a failure, invalid
    JSON, an unknown state... A ``StorageFailure`` and a ``ValueError``
    (what the original raises for most corrupt records). The message names
    the object (its kind, name and uuid), the field and the problem; nothing
    is reinterpreted or handed to a task.
    """


class OwnershipLost(StorageFailure):
    """A write was refused: the flow now has a newer owner (a taskflow-ng extension).

    Every write an engine makes carries the token of its lease on the flow;
    the backend refuses a token older than the flow's current one, so an
    owner that lost its lease (paused, partitioned) cannot overwrite the new
    owner's state. The engine stops at once; nothing is reverted.
    """


class FlowLeased(TaskFlowException):
    """Another owner holds a live lease on the flow (a taskflow-ng extension).

    Raised when an engine (or an operator tool) tries to take a flow that is
    being run elsewhere. The flow can be taken once the lease expires.
    """


class ConductorFailure(TaskFlowException):
    """Errors related to conducting activities."""


class JobFailure(TaskFlowException):
    """Errors related to job or jobboard operations."""


class UnclaimableJob(JobFailure):
    """Raised when a job can not be claimed (it is already claimed)."""


class ExecutionFailure(TaskFlowException):
    """Errors related to engine execution."""


class RequestTimeout(ExecutionFailure):
    """Raised when a worker request was not accepted or finished in time."""


class InvalidState(ExecutionFailure):
    """Raised on an invalid state transition or a call in the wrong phase."""


class DependencyFailure(TaskFlowException):
    """Raised when some type of dependency problem occurs (e.g. a cycle)."""


class AmbiguousDependency(DependencyFailure):
    """Raised when some type of ambiguous dependency problem occurs."""


class MissingDependencies(DependencyFailure):
    """Raised when an entity has requirements that nothing provides.

    :param who: the atom or flow (formatted with ``%s``) that has the needs.
    :param requirements: the missing symbols (formatted with ``%s``).
    :param method: the atom method the requirements are for, if any.
    """

    MESSAGE_TPL = ("'%(who)s' requires %(requirements)s but no other entity"
                   " produces said requirements")
    METHOD_TPL = "'%(method)s' method on "

    def __init__(self, who: Any, requirements: Any,
                 cause: BaseException | None = None,
                 method: str | None = None) -> None:
        message = self.MESSAGE_TPL % {'who': who,
                                      'requirements': requirements}
        if method:
            message = (self.METHOD_TPL % {'method': method}) + message
        super().__init__(message, cause=cause)
        self.missing_requirements = requirements


class CompilationFailure(TaskFlowException):
    """Raised when some type of compilation issue is found."""


class IncompatibleVersion(TaskFlowException):
    """Raised when some type of version incompatibility is found."""


class Duplicate(TaskFlowException):
    """Raised when a duplicate entry is found."""


class NotFound(TaskFlowException):
    """Raised when some entry in some object doesn't exist."""


class Empty(TaskFlowException):
    """Raised when some object is empty when it shouldn't be."""


class MultipleChoices(TaskFlowException):
    """Raised when some decision can't be made due to many possible choices."""


class InvalidFormat(TaskFlowException):
    """Raised when some object/entity is not in the expected format."""


class DisallowedAccess(TaskFlowException):
    """Raised when storage access is not allowed in the current ``state``."""

    def __init__(self, message: Any, cause: BaseException | None = None,
                 state: str | None = None) -> None:
        super().__init__(message, cause=cause)
        self.state = state


class NotImplementedError(builtins.NotImplementedError):
    """Taskflow's own flavour of the builtin ``NotImplementedError``."""


class WrappedFailure(Exception):
    """Wraps one or several failures (``Failure`` objects).

    Raised when several atoms failed at once, or when a single failure can not
    be re-raised as its original exception (it came from another process).
    A cause that is itself a failure of a ``WrappedFailure`` carrying an
    exception is flattened into that exception's failures.
    """

    def __init__(self, causes: Iterable[Any]) -> None:
        super().__init__()
        flat: list[Any] = []
        for cause in causes:
            if cause.check(WrappedFailure) and cause.exception:
                flat.extend(cause.exception)
            else:
                flat.append(cause)
        self._causes = flat

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.args, self.__dict__))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._causes)

    def __len__(self) -> int:
        return len(self._causes)

    def check(self, *exc_classes: type | str) -> type | str | None:
        """First of ``exc_classes`` matched by any wrapped failure, or ``None``."""
        if not exc_classes:
            return None
        for cause in self._causes:
            result = cause.check(*exc_classes)
            if result is not None:
                return result
        return None

    def __str__(self) -> str:
        return 'WrappedFailure: [%s]' % ', '.join(str(c) for c in self._causes)

    def __bytes__(self) -> bytes:
        return str(self).encode('utf-8')


def raise_with_cause(exc_cls: type[TaskFlowException], message: Any,
                     *args: Any, **kwargs: Any) -> NoReturn:
    """Raise ``exc_cls(message, *args, **kwargs)`` caused by the active exception.

    Unless ``cause`` is given, the exception currently being handled (if any)
    becomes the new exception's ``cause``; it is also chained as
    ``__cause__`` (``raise ... from``).

    :raises ValueError: if ``exc_cls`` is not a :class:`TaskFlowException`.
    """
    if not (isinstance(exc_cls, type) and issubclass(exc_cls, TaskFlowException)):
        raise ValueError('Subclass of taskflow exception is required')
    if 'cause' not in kwargs:
        kwargs['cause'] = sys.exc_info()[1]
    cause = kwargs['cause']
    if cause is None:
        raise exc_cls(message, *args, **kwargs)
    raise exc_cls(message, *args, **kwargs) from cause


class AtomTimeout(ExecutionFailure, TimeoutError):
    """A task ran longer than its ``timeout`` (a taskflow-ng extension).

    The engine fails the task with this error and carries on (revert, retry);
    the thread that ran it cannot be stopped and is abandoned.
    """


class WorkerLost(RequestTimeout):
    """The worker running a task stopped answering (a taskflow-ng extension).

    The worker-based engine raises it for a task whose worker stopped sending
    heartbeats (or left) mid-task when its ``on_worker_lost`` policy is
    ``'fail'`` or the task was re-dispatched too often.  A subclass of
    :class:`RequestTimeout`, so code written for the original still catches it.
    """
