"""The jobboard API: jobs, their priorities, boards and their notifications.

A *job* is a named unit of work (a details dict and an optional logbook
reference) posted on a *jobboard*. A consumer *claims* it (exclusive
ownership, lost when the owner dies or its claim expires), works on it, then
*consumes* it (done), *abandons* it (back to unclaimed) or *trashes* it
(broken; moved aside).

Beyond the original (see ``docs/jobboards.md``):

* every claim expires unless renewed (``claim(job, who, expiry=...)``,
  ``renew_claim``), on every board, so the job of a dead claimer comes back;
* every claim carries a *claim token* that increases with each claim of the
  job (``claim_token``); engines run under it so the persistence backend
  refuses writes from a claimer whose claim moved on (fencing);
* every claim and how it ended is kept as the job's ``history``; a trashed
  job keeps it and is listed by ``iter_trashed`` (the dead-letter).
"""

from __future__ import annotations

import abc
import datetime
import enum
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from taskflow import exceptions as exc
from taskflow.types import notifier

__all__ = ['POSTED', 'REMOVAL', 'Attempt', 'Job', 'JobBoard', 'JobPriority',
           'NotifyingJobBoard', 'check_who']

#: Notification sent when a job is posted (or first seen).
POSTED = 'POSTED'
#: Notification sent when a job goes away (consumed or trashed).
REMOVAL = 'REMOVAL'

#: Seconds a claim lasts when the claimer gives no expiry (renewed by the
#: conductors while they run the job).
DEFAULT_CLAIM_EXPIRY = 30.0


class JobPriority(enum.Enum):
    """The priority of a job (higher ones are listed and claimed first)."""

    VERY_HIGH = 'VERY_HIGH'
    HIGH = 'HIGH'
    NORMAL = 'NORMAL'
    LOW = 'LOW'
    VERY_LOW = 'VERY_LOW'

    @classmethod
    def convert(cls, value: JobPriority | str) -> JobPriority:
        """The member ``value`` names (a member or a case-insensitive name)."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value.upper())  # type: ignore[union-attr]
        except (ValueError, AttributeError):
            valid = [p.value for p in _ORDER]
            raise ValueError("'%s' is not a valid priority, valid priorities"
                             " are %s" % (value, valid)) from None

    @classmethod
    def reorder(cls, *values: tuple[JobPriority | str, Any]) -> tuple:
        """The values of ``(priority, value)`` pairs, highest priority first
        (pairs of equal priority keep their order)."""
        ranked = sorted(enumerate(values),
                        key=lambda item: (_RANK[cls.convert(item[1][0])],
                                          item[0]))
        return tuple(value for _, (_, value) in ranked)


_ORDER = (JobPriority.VERY_HIGH, JobPriority.HIGH, JobPriority.NORMAL,
          JobPriority.LOW, JobPriority.VERY_LOW)
_RANK = {priority: rank for rank, priority in enumerate(_ORDER)}


class Attempt(NamedTuple):
    """One claim of a job and how it ended (a job's ``history``)."""

    who: str
    claimed_at: float              # epoch seconds
    token: int                     # the claim token of this claim
    ended_at: float | None = None  # None while held, or when the claim was lost
    outcome: str | None = None     # 'consumed', 'abandoned', 'trashed', 'lost'
    reason: str | None = None      # why (an abandon/trash reason, an error)

    @property
    def failed(self) -> bool:
        """Whether this attempt ended without the job being done."""
        return self.outcome not in (None, 'consumed')


def check_who(who: Any) -> None:
    """Refuse a claimer name that is not a non-empty string."""
    if not isinstance(who, str):
        raise TypeError('Job applicant must be a string type')
    if not who:
        raise ValueError('Job applicant must be non-empty')


class Job(abc.ABC):
    """A job on a board (abstract: each board has its own subclass)."""

    def __init__(self, board: JobBoard, name: str, uuid: str,
                 details: dict | None = None, backend: Any = None,
                 book: Any = None, book_data: dict | None = None,
                 priority: JobPriority | str = JobPriority.NORMAL,
                 sequence: int = 0,
                 created_on: datetime.datetime | None = None) -> None:
        self._board = board
        self._name = name
        self._uuid = uuid
        self._details = details if details is not None else {}
        self._backend = backend
        self._book = book
        self._book_data = book_data if book_data is not None else {}
        self._priority = JobPriority.convert(priority)
        self._sequence = sequence
        self._created_on = created_on
        #: The token of this process's current claim of the job (set by the
        #: board on ``claim``), or ``None``.
        self.claim_token: int | None = None

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self._name

    @property
    def details(self) -> dict:
        return self._details

    @property
    def board(self) -> JobBoard:
        return self._board

    @property
    def priority(self) -> JobPriority:
        return self._priority

    @property
    def sequence(self) -> int:
        """The posting sequence number (orders jobs within a priority)."""
        return self._sequence

    @property
    def created_on(self) -> datetime.datetime | None:
        return self._created_on

    @property
    @abc.abstractmethod
    def last_modified(self) -> datetime.datetime | None:
        """When the job was last changed on the board."""

    @property
    @abc.abstractmethod
    def state(self) -> str:
        """``'UNCLAIMED'``, ``'CLAIMED'`` or ``'COMPLETE'``."""

    @property
    def book_uuid(self) -> str | None:
        if self._book is not None:
            return self._book.uuid
        return self._book_data.get('uuid')

    @property
    def book_name(self) -> str | None:
        if self._book is not None:
            return self._book.name
        return self._book_data.get('name')

    @property
    def book(self) -> Any:
        """The job's ``LogBook``, loaded from the board's persistence on first
        use (``None`` without a book or a persistence backend)."""
        if self._book is None and self._backend is not None:
            book_uuid = self._book_data.get('uuid')
            if book_uuid:
                self._book = self._load_book(book_uuid)
        return self._book

    def _load_book(self, book_uuid: str) -> Any:
        import contextlib
        with contextlib.closing(self._backend.get_connection()) as conn:
            return conn.get_logbook(book_uuid)

    def wait(self, timeout: float | None = None, delay: float = 0.01,
             delay_multiplier: float = 2.0, max_delay: float = 60.0,
             sleep_func: Callable[[float], Any] = time.sleep) -> bool:
        """Poll until the job is ``COMPLETE``: ``True`` if it is, ``False``
        when ``timeout`` seconds passed first."""
        if delay < 0 or max_delay < 0 or delay_multiplier < 1:
            raise ValueError('Delays must be non-negative and the multiplier'
                             ' at least 1')
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state != 'COMPLETE':
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                sleep_func(min(delay, left))
            else:
                sleep_func(delay)
            delay = min(delay * delay_multiplier, max_delay)
        return True

    def _sort_key(self) -> tuple[int, int]:
        return (-_RANK[self._priority], self._sequence)

    def __lt__(self, other: Job) -> bool:
        return self._sort_key() < other._sort_key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return (self._uuid, self._sort_key()) == (other._uuid,
                                                  other._sort_key())

    def __hash__(self) -> int:
        return hash(self._uuid)

    def __str__(self) -> str:
        return '%s: %s (priority=%s, uuid=%s, details=%s)' % (
            type(self).__name__, self._name, self._priority, self._uuid,
            self._details)


class JobBoard(abc.ABC):
    """A place where jobs are posted, claimed, consumed, abandoned, trashed."""

    def __init__(self, name: str, conf: dict) -> None:
        self._name = name
        self._conf = conf

    @property
    def name(self) -> str:
        return self._name

    @abc.abstractmethod
    def post(self, name: str, book: Any = None, details: dict | None = None,
             priority: JobPriority | str = JobPriority.NORMAL) -> Job:
        """Post a job; only the book's name and uuid travel with it."""

    @abc.abstractmethod
    def iterjobs(self, only_unclaimed: bool = False,
                 ensure_fresh: bool = False) -> Iterator[Job]:
        """The current jobs (only ``UNCLAIMED`` ones if asked)."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> Iterator[Job]:
        """Block until a job exists; ``NotFound`` after ``timeout`` seconds."""

    @property
    @abc.abstractmethod
    def job_count(self) -> int:
        """How many jobs are on the board."""

    @abc.abstractmethod
    def find_owner(self, job: Job) -> str | None:
        """Who holds ``job``'s claim (``None`` if nobody)."""

    @abc.abstractmethod
    def claim(self, job: Job, who: str, expiry: float | None = None) -> None:
        """Claim ``job`` for ``who`` for ``expiry`` seconds (default
        ``DEFAULT_CLAIM_EXPIRY``); sets ``job.claim_token``.

        :raises UnclaimableJob: someone holds it (the message names them).
        :raises NotFound: the job is gone.
        """

    @abc.abstractmethod
    def renew_claim(self, job: Job, who: str, expiry: float | None = None
                    ) -> None:
        """Extend ``who``'s claim of ``job`` by ``expiry`` seconds.

        :raises JobFailure: ``who`` no longer holds the claim.
        """

    @abc.abstractmethod
    def consume(self, job: Job, who: str) -> None:
        """``who`` is done with ``job``: it leaves the board."""

    @abc.abstractmethod
    def abandon(self, job: Job, who: str, reason: str | None = None) -> None:
        """``who`` gives ``job`` back (unclaimed) for others to claim."""

    @abc.abstractmethod
    def trash(self, job: Job, who: str, reason: str | None = None) -> None:
        """``job`` is broken: it moves to the board's trash (dead-letter),
        with its history."""

    @abc.abstractmethod
    def history(self, job: Job) -> list[Attempt]:
        """Every claim of ``job`` so far, oldest first (claims that were lost
        without an end have the outcome ``'lost'``)."""

    @abc.abstractmethod
    def iter_trashed(self) -> Iterator[Job]:
        """The trashed jobs (the dead-letter), with their ``history``."""

    @abc.abstractmethod
    def register_entity(self, entity: Any) -> None:
        """Make ``entity`` (e.g. a conductor) known on the board."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether ``connect()`` succeeded and ``close()`` was not called."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect to the board's service."""

    @abc.abstractmethod
    def close(self) -> None:
        """Drop the connection (claims held with it may be lost)."""

    def __enter__(self) -> JobBoard:
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class NotifyingJobBoard(JobBoard):
    """A board whose ``notifier`` emits ``POSTED`` and ``REMOVAL`` with
    ``{'job': job}`` (possibly from a background thread)."""

    def __init__(self, name: str, conf: dict) -> None:
        super().__init__(name, conf)
        self.notifier = notifier.Notifier()


def lost_attempts(attempts: list[Attempt]) -> list[Attempt]:
    """``attempts`` with every unended claim but the last marked ``'lost'``
    (a later claim means the earlier claimer went away)."""
    marked = []
    for i, attempt in enumerate(attempts):
        if attempt.outcome is None and i < len(attempts) - 1:
            attempt = attempt._replace(outcome='lost')
        marked.append(attempt)
    return marked


def expired_waiting(waited: float) -> exc.NotFound:
    """The error ``wait()`` raises when no job arrived in time."""
    return exc.NotFound('Expired waiting for jobs to arrive; waited %s'
                        ' seconds' % waited)
