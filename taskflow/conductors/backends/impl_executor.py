"""The conductor loop shared by the blocking and non-blocking conductors.

``run()`` is the loop: it lists the board's unclaimed jobs, claims them
(while fewer than ``max_simultaneous_jobs`` run) and hands each to an
executor; it idles ``wait_timeout`` when nothing was dispatched.  A job's
dispatch (:meth:`ExecutorConductor._dispatch_job`) returns whether to
consume it (``True``), abandon it (``False``) or leave it alone because the
claim was lost (``None``); a dispatch that raises trashes it.
:meth:`ExecutorConductor._on_job_done` then acts on the board.

Beyond the original (see ``docs/conductors.md``):

* claims are leases (``claim_expiry``) renewed every third of their expiry
  while the job runs; a lost claim suspends the engine and leaves the job;
* the engine runs as the conductor's entity with the claim's token
  (fencing): a stale conductor's writes are refused (``OwnershipLost``), and
  it then neither consumes nor abandons the job;
* a job that failed ``max_attempts`` times (abandoned, or lost by a
  conductor that died) is trashed (the dead-letter), as is a job whose
  logbook is missing or whose flow factory is refused;
* board outages back off (exponential, capped, jittered) and log a bounded
  number of lines; ``stop()`` interrupts the back-off at once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow import states
from taskflow.conductors import _backoff
from taskflow.conductors import _lease
from taskflow.conductors import base
from taskflow.jobs import base as jobs_base
from taskflow.listeners import logging as logging_listener
from taskflow.types import timing

__all__ = ['ExecutorConductor']

LOG = logging.getLogger(__name__)

#: Failed attempts (abandoned, lost) after which a job is trashed.
DEFAULT_MAX_ATTEMPTS = 5


class _DeadLetter(Exception):
    """A claimed job must go to the dead-letter instead of being run."""


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, or the exceptions a ``WrappedFailure`` wraps."""
    if isinstance(error, exc.WrappedFailure):
        return list(error)  # Failure objects: matched with their check()
    return [error]


def _failure_matches(failure: Any, kinds: tuple) -> bool:
    if isinstance(failure, BaseException):
        return isinstance(failure, kinds)
    check = getattr(failure, 'check', None)
    return bool(check is not None and check(*kinds))


def _describe(error: BaseException) -> str:
    return '%s: %s' % (type(error).__name__, error)


class ExecutorConductor(base.Conductor):
    """Dispatches claimed jobs to an executor (see the module docstring).

    :param wait_timeout: seconds to idle when no job was dispatched
        (default ``WAIT_TIMEOUT``; interrupted by :meth:`stop`).
    :param log: the logger to use (default: this module's).
    :param max_simultaneous_jobs: jobs run at once (``<= 0``: no limit).
    :param claim_expiry: seconds a claim lasts unless renewed (default
        ``taskflow.jobs.base.DEFAULT_CLAIM_EXPIRY``); renewed every third.
    :param max_attempts: failed attempts after which a claimed job is
        trashed instead of run (``None``: never).
    :param allowed_factory_modules: module prefixes flow factories may come
        from (default: any module outside the standard library).
    """

    #: Seconds to idle when no job was dispatched.
    WAIT_TIMEOUT = 0.5
    #: Every this many seconds the board is listed with ``ensure_fresh``.
    REFRESH_PERIODICITY = 30
    #: Exceptions (direct or all wrapped) that abandon a job instead of
    #: consuming it.
    NO_CONSUME_EXCEPTIONS = (exc.ExecutionFailure, exc.StorageFailure)
    #: Events of :attr:`notifier`.
    EVENTS_EMITTED = tuple([
        'compilation_start', 'compilation_end',
        'preparation_start', 'preparation_end',
        'validation_start', 'validation_end',
        'running_start', 'running_end',
        'job_consumed', 'job_abandoned',
    ])
    #: Jobs run at once by default (``<= 0``: no limit).
    MAX_SIMULTANEOUS_JOBS = -1
    LOG = LOG

    def __init__(self, name: str, jobboard: Any, persistence: Any = None,
                 engine: str | None = None, engine_options: dict | None = None,
                 wait_timeout: float | None = None, log: Any = None,
                 max_simultaneous_jobs: int = MAX_SIMULTANEOUS_JOBS, *,
                 claim_expiry: float | None = None,
                 max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
                 allowed_factory_modules: Iterable[str] | None = None) -> None:
        super().__init__(name, jobboard, persistence=persistence,
                         engine=engine, engine_options=engine_options)
        self._wait_timeout = timing.convert_to_timeout(
            value=wait_timeout, default_value=self.WAIT_TIMEOUT,
            event_factory=self._event_factory)
        self._dead = self._event_factory()
        self._log = log if log is not None else self.LOG
        self._max_simultaneous_jobs = int(max_simultaneous_jobs)
        self._dispatched: set[futures.Future] = set()
        self._lock = threading.RLock()
        if claim_expiry is None:
            claim_expiry = jobs_base.DEFAULT_CLAIM_EXPIRY
        if isinstance(claim_expiry, bool) or not isinstance(claim_expiry, (int, float)) \
                or not claim_expiry > 0:
            raise ValueError('Conductor %r: claim_expiry must be a positive number of'
                             ' seconds, not %r' % (name, claim_expiry))
        self._claim_expiry = float(claim_expiry)
        if max_attempts is not None and (isinstance(max_attempts, bool)
                                         or not isinstance(max_attempts, int)
                                         or max_attempts < 1):
            raise ValueError('Conductor %r: max_attempts must be an integer >= 1 (or'
                             ' None), not %r' % (name, max_attempts))
        self._max_attempts = max_attempts
        if isinstance(allowed_factory_modules, str):
            allowed_factory_modules = [allowed_factory_modules]
        self._allowed_factory_modules = (None if allowed_factory_modules is None
                                         else list(allowed_factory_modules))
        # Boards written for the original (entry points) may have no claim
        # expiry, renewal or history: those features are skipped for them.
        self._claims_expire = _accepts_keyword(getattr(jobboard, 'claim', None), 'expiry')
        self._renews = callable(getattr(jobboard, 'renew_claim', None))
        self._has_history = callable(getattr(jobboard, 'history', None))
        # Set by stop(), cleared when run() exits: interrupts back-offs.
        self._stopping = self._event_factory()
        # Wakes the idle loop: a stop, or a job finished (a slot is free).
        self._wakeup = self._event_factory()
        # Per running job (by uuid): its engine, claim keeper, finish reason.
        self._engines: dict[str, Any] = {}
        self._keepers: dict[str, _lease.ClaimKeeper] = {}
        self._reasons: dict[str, str] = {}

    _event_factory = threading.Event

    @property
    def dispatching(self) -> bool:
        """Whether jobs are being dispatched (as the original: until
        :meth:`run` has exited; also before it first ran)."""
        return not self._dead.is_set()

    # -- the loop ----------------------------------------------------------

    def _executor_factory(self) -> futures.Executor:
        """The executor jobs are dispatched to (subclasses choose)."""
        raise NotImplementedError

    def _can_claim_more_jobs(self) -> bool:
        if self._stopping.is_set():
            return False
        if self._max_simultaneous_jobs <= 0:
            return True
        with self._lock:
            return len(self._dispatched) < self._max_simultaneous_jobs

    def run(self, max_dispatches: int | None = None) -> None:
        """Claim and dispatch jobs until :meth:`stop` (or until
        ``max_dispatches`` jobs were dispatched; ``0`` returns at once).

        Jobs still running when the loop ends are waited for (a stop asks
        their engines to suspend, so they are abandoned).
        """
        self._dead.clear()
        try:
            if max_dispatches is not None and max_dispatches <= 0:
                return
            if not self._register():
                return
            executor = self._executor_factory()
            try:
                with self._woken_by_posts():
                    self._run_until_dead(executor, max_dispatches)
            finally:
                executor.shutdown(wait=True)
        finally:
            self._stopping.clear()
            self._wait_timeout.reset()
            self._dead.set()

    @contextlib.contextmanager
    def _woken_by_posts(self) -> Iterator[None]:
        """Wake the idle loop when the board announces a posted job.

        Boards with a ``notifier`` (ZooKeeper; Redis and SQL boards of
        taskflow-ng) announce ``POSTED``: the conductor then claims a new job
        at once instead of after its idle ``wait_timeout``.
        """
        board_notifier = getattr(self._jobboard, 'notifier', None)
        if board_notifier is None:
            yield
            return

        def posted(event_type: str, details: Any) -> None:
            self._wakeup.set()

        try:
            board_notifier.register(jobs_base.POSTED, posted)
        except Exception:
            self._log.debug('Board %s takes no POSTED listener; polling',
                            self._jobboard.name, exc_info=True)
            yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                board_notifier.deregister(jobs_base.POSTED, posted)

    def _register(self) -> bool:
        """Register the conductor's entity (retrying through an outage);
        ``False`` if stopped first."""
        backoff = _backoff.Backoff(self._stopping, self._log,
                                   'Registering conductor %s on board %s'
                                   % (self.conductor.name, self._jobboard.name))
        while not self._stopping.is_set():
            try:
                self._jobboard.register_entity(self.conductor)
            except Exception as error:
                if not backoff.pause(error):
                    return False
                continue
            return True
        return False

    def _run_until_dead(self, executor: futures.Executor,
                        max_dispatches: int | None) -> None:
        backoff = _backoff.Backoff(self._stopping, self._log,
                                   'Conductor %s: listing or claiming jobs of board %s'
                                   % (self._name, self._jobboard.name))
        total = 0
        last_fresh = None
        while not self._stopping.is_set():
            now = time.monotonic()
            ensure_fresh = last_fresh is None or now - last_fresh >= self.REFRESH_PERIODICITY
            dispatched = 0
            # Wake-ups (a post, a finished job) from now on are for this pass
            # or the next: one arriving while listing is not lost.
            self._wakeup.clear()
            try:
                jobs = self._jobboard.iterjobs(only_unclaimed=True,
                                               ensure_fresh=ensure_fresh)
                if ensure_fresh:
                    last_fresh = now
                for job in jobs:
                    if not self._can_claim_more_jobs():
                        break
                    if not self._claim(job):
                        continue
                    self._submit(executor, job)
                    dispatched += 1
                    total += 1
                    if max_dispatches is not None and total >= max_dispatches:
                        return
            except Exception as error:
                # The board (or its server) is away: do not spin, do not
                # flood the log; stop() interrupts the pause.
                if not backoff.pause(error):
                    return
                continue
            backoff.succeeded()
            if dispatched == 0 or not self._can_claim_more_jobs():
                self._wakeup.wait(self._wait_timeout.value)

    def _claim(self, job: Any) -> bool:
        """Claim ``job``: ``False`` if someone else has it or it is gone
        (other board errors propagate: the loop backs off)."""
        try:
            if self._claims_expire:
                self._jobboard.claim(job, self._name, expiry=self._claim_expiry)
            else:
                self._jobboard.claim(job, self._name)
        except (exc.UnclaimableJob, exc.NotFound):
            return False
        return True

    def _submit(self, executor: futures.Executor, job: Any) -> None:
        keeper = _lease.ClaimKeeper(self._jobboard, job, self._name,
                                    self._claim_expiry, self._log)
        with self._lock:
            self._keepers[job.uuid] = keeper
        if self._renews and self._claims_expire:
            keeper.start()
        try:
            fut = executor.submit(self._run_job, job)
        except BaseException:
            self._forget(job, keeper)
            raise
        with self._lock:
            self._dispatched.add(fut)
        fut.add_done_callback(functools.partial(self._job_done, job, keeper))

    def _job_done(self, job: Any, keeper: _lease.ClaimKeeper,
                  fut: futures.Future) -> None:
        try:
            self._on_job_done(job, fut)
        finally:
            self._forget(job, keeper)
            with self._lock:
                self._dispatched.discard(fut)
            # A slot is free: the loop may claim again without idling.
            self._wakeup.set()

    def _forget(self, job: Any, keeper: _lease.ClaimKeeper) -> None:
        keeper.stop()
        with self._lock:
            self._keepers.pop(job.uuid, None)
            self._engines.pop(job.uuid, None)
            self._reasons.pop(job.uuid, None)

    def stop(self) -> None:
        """Ask :meth:`run` to stop: it claims no more jobs, the engines it
        runs are asked to suspend (their jobs are abandoned)."""
        self._stopping.set()
        self._wait_timeout.interrupt()
        self._wakeup.set()
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            with contextlib.suppress(Exception):
                engine.suspend()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for :meth:`run` to exit: ``True`` if it has."""
        return self._dead.wait(timeout)

    # -- one job -----------------------------------------------------------

    def _run_job(self, job: Any) -> bool | None:
        """The dispatch of a claimed job (runs on the executor)."""
        self._check_attempts(job)
        return self._dispatch_job(job)

    def _check_attempts(self, job: Any) -> None:
        """Refuse (dead-letter) a job that failed ``max_attempts`` times."""
        if self._max_attempts is None or not self._has_history:
            return
        try:
            history = jobs_base.lost_attempts(list(self._jobboard.history(job)))
        except Exception:
            self._log.warning('Could not read the history of job %s; running it',
                              job.uuid, exc_info=True)
            return
        token = getattr(job, 'claim_token', None)
        earlier = [a for a in history if not (a.outcome is None and a.token == token)]
        failed = [a for a in earlier if a.failed]
        if len(failed) < self._max_attempts:
            return
        last = failed[-1]
        raise _DeadLetter(
            'Job %s (%s) failed %d time(s), max_attempts is %d; last attempt by %s'
            ' ended %s%s' % (job.name, job.uuid, len(failed), self._max_attempts,
                             last.who, last.outcome,
                             ': %s' % last.reason if last.reason else ''))

    def _listeners_from_job(self, job: Any, engine: Any) -> list:
        listeners = super()._listeners_from_job(job, engine)
        listeners.append(logging_listener.LoggingListener(engine, log=self._log))
        return listeners

    def _notify(self, event: str, details: dict) -> None:
        self._notifier.notify(event, details)

    def _dispatch_job(self, job: Any) -> bool | None:
        """Run ``job``'s flow: ``True`` to consume it, ``False`` to abandon
        it, ``None`` when its claim was lost (leave it to the new owner)."""
        keeper = self._keepers.get(job.uuid)
        try:
            engine = self._engine_from_job(job)
        except exc.StorageFailure as error:
            if isinstance(error, exc.CorruptRecord):
                raise  # unreadable logbook: trashed
            # The database is away: the job can run later.
            self._reasons[job.uuid] = 'persistence unavailable: %s' % _describe(error)
            self._log.warning('Job %s: could not load its flow (%s); abandoning it',
                              job.uuid, error)
            return False
        listeners = self._listeners_from_job(job, engine)
        with contextlib.ExitStack() as stack:
            for listener in listeners:
                stack.enter_context(listener)
            self._log.debug("Dispatching engine for job '%s'", job)
            with self._lock:
                self._engines[job.uuid] = engine
            if keeper is not None:
                keeper.set_on_lost(functools.partial(self._suspend_lost, job, engine))
            if self._stopping.is_set():
                engine.suspend()
            return self._run_engine(job, engine, keeper)

    def _suspend_lost(self, job: Any, engine: Any, reason: str) -> None:
        """The claim of ``job`` was lost: stop its engine (its writes are
        refused anyway once the new owner took the flow)."""
        try:
            engine.suspend()
        except exc.StorageFailure as error:
            self._log.info('Job %s: suspending its engine after the claim was lost: %s',
                           job.uuid, error)

    def _run_engine(self, job: Any, engine: Any,
                    keeper: _lease.ClaimKeeper | None) -> bool | None:
        details = {'job': job, 'engine': engine, 'conductor': self}
        try:
            for stage, event in ((engine.compile, 'compilation'),
                                 (engine.prepare, 'preparation'),
                                 (engine.validate, 'validation')):
                self._notify('%s_start' % event, details)
                stage()
                self._notify('%s_end' % event, details)
            self._notify('running_start', details)
            for _state in engine.run_iter():
                if self._stopping.is_set():
                    engine.suspend()
            self._notify('running_end', details)
        except Exception as error:
            return self._outcome_of_error(job, error, keeper)
        if keeper is not None and keeper.lost:
            self._log.warning('Job %s: claim lost while running (%s); leaving it'
                              ' to its new owner', job.uuid, keeper.lost)
            return None
        state = engine.storage.get_flow_state()
        if state == states.SUSPENDED:
            why = 'conductor stopping' if self._stopping.is_set() else 'flow suspended'
            self._reasons[job.uuid] = 'flow %s ended SUSPENDED (%s)' % (
                engine.storage.flow_name, why)
            self._log.info('Job %s: flow suspended; abandoning it', job.uuid)
            return False
        return True

    def _outcome_of_error(self, job: Any, error: Exception,
                          keeper: _lease.ClaimKeeper | None) -> bool | None:
        causes = _causes(error)
        if any(_failure_matches(c, (exc.OwnershipLost,)) for c in causes) or (
                keeper is not None and keeper.lost):
            # Fencing refused our writes: another conductor owns the job's
            # flow now; it finishes the job, we must not touch it.
            self._log.warning('Job %s: claim lost (%s); leaving it to its new owner',
                              job.uuid, error)
            return None
        if any(_failure_matches(c, (exc.FlowLeased,)) for c in causes):
            self._reasons[job.uuid] = 'flow owned by another engine: %s' % error
            self._log.warning('Job %s: %s; abandoning it', job.uuid, error)
            return False
        if all(_failure_matches(c, self.NO_CONSUME_EXCEPTIONS) for c in causes):
            self._reasons[job.uuid] = 'engine failed: %s' % _describe(error)
            self._log.warning('Job %s: engine failed with %s; abandoning it', job.uuid,
                              _describe(error), exc_info=True)
            return False
        self._log.warning('Job %s: engine failed (%s); consuming it', job.uuid,
                          _describe(error), exc_info=True)
        return True

    def _on_job_done(self, job: Any, fut: futures.Future) -> None:
        """Act on the board once ``job``'s dispatch ended (``fut`` holds
        what :meth:`_dispatch_job` returned, or the error it raised)."""
        consume: bool | None = False
        trash = False
        error = fut.exception()
        if error is not None:
            if isinstance(error, _DeadLetter):
                self._log.warning('%s; trashing it', error)
                self._reasons[job.uuid] = str(error)
            else:
                self._log.warning('Job dispatching failed: %s', job, exc_info=error)
                self._reasons[job.uuid] = 'dispatch failed: %s' % _describe(error)
            trash = True
        else:
            consume = fut.result()
        self._try_finish_job(job, consume, trash=trash)

    def _try_finish_job(self, job: Any, consume: bool | None,
                        trash: bool = False) -> None:
        """Trash, consume or abandon ``job`` (``consume=None``: the claim
        was lost, leave it); failures are logged, not raised."""
        reason = self._reasons.pop(job.uuid, None)
        if trash:
            action, event = functools.partial(self._jobboard.trash, reason=reason), 'job_trashed'
        elif consume is None:
            return
        elif consume:
            action, event = self._jobboard.consume, 'job_consumed'
        else:
            action, event = functools.partial(self._jobboard.abandon, reason=reason), \
                'job_abandoned'
        if self._finish(job, action, event.split('_', 1)[1]):
            self._notify(event, {'job': job, 'conductor': self,
                                 'persistence': self._persistence})

    def _finish(self, job: Any, action: Callable[..., Any], what: str) -> bool:
        """``action(job, name)``, retried through a board outage while the
        claim is ours; ``False`` (logged) when it could not be done, or was
        done by the job's next owner."""
        keeper = self._keepers.get(job.uuid)
        backoff = _backoff.Backoff(self._stopping, self._log,
                                   'Conductor %s: recording job %s %s'
                                   % (self._name, job.uuid, what))
        for attempt in itertools.count(1):
            try:
                action(job, self._name)
                return True
            except exc.NotFound as error:
                ended = self._ended_meanwhile(job, keeper, what) if attempt > 1 else None
                if ended is not None:
                    return ended
                self._log.warning('Job %s could not be %s: %s', job.uuid, what, error)
                return False
            except Exception as error:
                ended = self._ended_meanwhile(job, keeper, what)
                if ended is not None:
                    return ended
                if (keeper is not None and keeper.lost) or self._not_ours(job) \
                        or attempt >= 8 or not backoff.pause(error):
                    self._log.warning('Job %s could not be %s: %s', job.uuid, what,
                                      _describe(error))
                    return False
        return False  # pragma: no cover

    def _ended_meanwhile(self, job: Any, keeper: Any, what: str) -> bool | None:
        """After a consume/trash failed (or its retry found the job gone),
        whether the job left the board: ``True`` when our own try did it
        (the board took it, the answer was lost in an outage), ``False``
        when the job's next owner did (our claim was lost meanwhile, say
        with a ZooKeeper session), ``None`` while it is still there or the
        board can not tell."""
        if what not in ('consumed', 'trashed') or (keeper is not None and keeper.lost):
            return None
        try:
            if job.state != 'COMPLETE':
                return None
        except Exception:
            return None  # unknown: the board is away, retry
        try:
            newer = self._next_owner_token(job, keeper, what)
        except Exception as error:
            # Two reports are worse than none: a listener acts on each.
            self._log.warning('Job %s left the board; could not tell whether our try'
                              ' or its next owner did it (%s); not reporting it %s',
                              job.uuid, _describe(error), what)
            return False
        if newer is not None:
            self._log.info('Job %s was %s by its next owner (claim token %s, ours %s)'
                           ' after our claim was lost', job.uuid, what, newer,
                           keeper.claim_token)
            return False
        self._log.info('Job %s was %s by a try whose answer was lost', job.uuid, what)
        return True

    def _next_owner_token(self, job: Any, keeper: Any, what: str) -> int | None:
        """The claim token of a later claim of ``job`` that consumed it (its
        flow's lease names the last claim that ran it) or trashed it (the
        job's history names who did); ``None`` when none did, or there are
        no tokens to compare."""
        ours = getattr(keeper, 'claim_token', None)
        if ours is None:
            return None
        if what == 'trashed':
            if not self._has_history:
                return None
            for attempt in reversed(list(self._jobboard.history(job))):
                if attempt.outcome == 'trashed':
                    return None if attempt.token == ours else int(attempt.token)
            return None
        with self._lock:
            engine = self._engines.get(job.uuid)
        recorded = getattr(getattr(engine, 'storage', None), 'recorded_lease', None)
        lease = recorded() if recorded is not None else None
        if lease is None or lease.claim_token is None or lease.claim_token <= ours:
            return None
        return int(lease.claim_token)

    def _not_ours(self, job: Any) -> bool:
        try:
            return self._jobboard.find_owner(job) != self._name
        except Exception:
            return False  # unknown: the board is away, retry


def _accepts_keyword(function: Any, name: str) -> bool:
    """Whether ``function`` takes the keyword argument ``name``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def accepts_argument(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` can be called with one positional argument."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True
