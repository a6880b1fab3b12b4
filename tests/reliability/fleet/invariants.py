"""What must hold after a fleet trial, checked on plain data.

Each check returns violations as ``(invariant, message)`` pairs:

* ``flow``: every job's flow (but the poison job's) ended ``SUCCESS``, all
  its tasks ``SUCCESS``;
* ``consumed``: every such job was consumed exactly once (one
  ``job_consumed`` event, or none when its holder was killed between the end
  of its run and that event) and left the board;
* ``rerun``: no task whose completion was persisted (``SUCCESS`` in storage
  right after its runner was killed or stopped) started again;
  In outage trials: no task starts again after the driver saw it stored
  ``SUCCESS``;
* ``takeover``: the job of a killed holder was claimable again within
  lease + 2 s;
* ``stale``: after another conductor took a stopped holder's job over, the
  stale holder started nothing more of it, no result it produced after the
  takeover was stored, and it did not consume the job;
* ``dead-letter``: the poison job ended in the trash with at least N
  attempts in its history, and was never consumed;
* ``conductor``: a conductor process died that nobody killed;
* ``deadline``: the trial did not finish in time.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.fleet import flows

TAKEOVER_SLACK = 2.0   # seconds beyond the lease a takeover may take
Violation = tuple[str, str]


@dataclass
class JobInfo:
    key: str           # job name, as the ledger writes it
    uuid: str
    flow_uuid: str
    tasks: list[str]
    poison: bool = False


@dataclass
class Kill:
    pid: int
    job: str                  # job key
    at: float                 # epoch seconds, just before the signal
    persisted: dict[str, str] = field(default_factory=dict)   # task -> state right after
    freed_after: float | None = None   # seconds until claimable again (None: never seen)


@dataclass
class Stop:
    pid: int
    job: str
    stopped_at: float
    taken_over_at: float | None = None   # another conductor's running_start of the job
    resumed_at: float | None = None
    persisted: dict[str, str] = field(default_factory=dict)
    note: str = ''            # what the driver found when nobody took over


@dataclass
class Final:
    flow_state: str | None
    tasks: dict[str, tuple[str | None, Any]]   # task -> (state, result)


def check_flows(jobs: list[JobInfo], finals: dict[str, Final]) -> list[Violation]:
    found = []
    for job in jobs:
        if job.poison:
            continue
        final = finals.get(job.key)
        if final is None or final.flow_state != 'SUCCESS':
            found.append(('flow', '%s: flow ended %s, not SUCCESS'
                          % (job.key, final.flow_state if final else 'missing')))
            continue
        for name in job.tasks:
            state = final.tasks.get(name, (None, None))[0]
            if state != 'SUCCESS':
                found.append(('flow', '%s: task %s ended %s' % (job.key, name, state)))
    return found


def check_consumed(jobs: list[JobInfo], events: list[dict], left_on_board: set[str],
                   kills: list[Kill] = (), unacknowledged: set[str] = frozenset(),
                   ) -> list[Violation]:
    consumed = collections.Counter(e['job'] for e in events
                                   if e['event'] == 'job_consumed')
    for uuid in unacknowledged:   # see unacknowledged_consumes()
        consumed[uuid] = consumed[uuid] or 1
    # A holder killed after its run ended may have consumed the job without
    # living to report it: the job then left the board with no event.
    ended = {(e['pid'], e.get('job')) for e in events if e['event'] == 'running_end'}
    by_key = {job.key: job.uuid for job in jobs}
    for kill in kills:
        uuid = by_key.get(kill.job)
        if (kill.pid, uuid) in ended and not consumed[uuid] and uuid not in left_on_board:
            consumed[uuid] = 1
    found = []
    for job in jobs:
        if job.poison:
            if consumed[job.uuid]:
                found.append(('dead-letter', '%s (poison) was consumed' % job.key))
            continue
        if consumed[job.uuid] != 1:
            found.append(('consumed', '%s consumed %d times' % (job.key, consumed[job.uuid])))
        if job.uuid in left_on_board:
            found.append(('consumed', '%s is still on the board' % job.key))
    return found


def check_reruns(kills: list[Kill], stops: list[Stop],
                 ledger: list[flows.Line]) -> list[Violation]:
    found = []
    for cut in [*kills, *stops]:
        since = cut.at if isinstance(cut, Kill) else cut.stopped_at
        for line in ledger:
            if (line.job == cut.job and line.phase == flows.START and line.at > since
                    and cut.persisted.get(line.task) == 'SUCCESS'):
                found.append(('rerun', '%s: task %s, stored SUCCESS before pid %d was cut,'
                              ' started again by pid %d' % (cut.job, line.task, cut.pid,
                                                           line.pid)))
    return found


def unacknowledged_consumes(jobs: list[JobInfo], events: list[dict],
                            left_on_board: set[str],
                            cuts: list[tuple[float, float]]) -> set[str]:
    """Jobs (uuids) whose consume an outage made ambiguous: no
    ``job_consumed`` event, gone from the board, and the run ended (its last
    ``running_end``) within 2 s before or during a cut ``(start, end)``.

    The conductor's consume reached the server but its answer was lost; the
    retry after the outage finds the job gone and reports nothing.  The job
    was consumed once (its flow is checked separately); it is counted, not
    flagged.
    """
    consumed = {e['job'] for e in events if e['event'] == 'job_consumed'}
    ended: dict[str, float] = {}
    for e in events:
        if e['event'] == 'running_end':
            ended[e['job']] = max(ended.get(e['job'], 0.0), e['t'])
    found = set()
    for job in jobs:
        at = ended.get(job.uuid)
        if (job.poison or at is None or job.uuid in consumed
                or job.uuid in left_on_board):
            continue
        if any(start - 2.0 <= at <= end for start, end in cuts):
            found.add(job.uuid)
    return found


def check_reruns_seen(seen_success: dict[tuple[str, str], float],
                      ledger: list[flows.Line]) -> list[Violation]:
    """No task starts after the moment it was seen ``SUCCESS`` in storage."""
    found = []
    for line in ledger:
        seen = seen_success.get((line.job, line.task))
        if line.phase == flows.START and seen is not None and line.at > seen:
            found.append(('rerun', '%s: task %s, seen stored SUCCESS at %.3f, started'
                          ' again by pid %d at %.3f' % (line.job, line.task, seen,
                                                        line.pid, line.at)))
    return found


def check_takeovers(kills: list[Kill], lease: float) -> list[Violation]:
    found = []
    for kill in kills:
        if kill.freed_after is None:
            found.append(('takeover', '%s: never claimable again after pid %d was killed'
                          % (kill.job, kill.pid)))
        elif kill.freed_after > lease + TAKEOVER_SLACK:
            found.append(('takeover', '%s: claimable again %.2f s after pid %d was killed'
                          ' (lease %.1f s + %.0f s)' % (kill.job, kill.freed_after, kill.pid,
                                                        lease, TAKEOVER_SLACK)))
    return found


def check_stale(stops: list[Stop], jobs: list[JobInfo], ledger: list[flows.Line],
                events: list[dict], finals: dict[str, Final]) -> list[Violation]:
    by_key = {job.key: job for job in jobs}
    found = []
    for stop in stops:
        if stop.taken_over_at is None:
            found.append(('stale', '%s: nobody took it over while pid %d was stopped%s'
                          % (stop.job, stop.pid, ' (%s)' % stop.note if stop.note else '')))
            continue
        late_ends = {line.task for line in ledger
                     if line.job == stop.job and line.pid == stop.pid
                     and line.phase == flows.END and line.at > stop.taken_over_at}
        for line in ledger:
            if (line.job == stop.job and line.pid == stop.pid and line.phase == flows.START
                    and line.at > stop.taken_over_at):
                found.append(('stale', '%s: stale pid %d started %s after the takeover'
                              % (stop.job, stop.pid, line.task)))
        final = finals.get(stop.job)
        for task in sorted(late_ends):
            if final is not None and final.tasks.get(task, (None, None))[1] == stop.pid:
                found.append(('stale', '%s: the result of %s pid %d finished after the'
                              ' takeover was stored' % (stop.job, task, stop.pid)))
        uuid = by_key[stop.job].uuid
        for event in events:
            if event.get('job') == uuid and event['pid'] == stop.pid \
                    and event['event'] == 'job_consumed':
                found.append(('stale', '%s: consumed by the stale pid %d'
                              % (stop.job, stop.pid)))
    return found


def check_dead_letter(jobs: list[JobInfo], trashed: dict[str, list],
                      attempts: int) -> list[Violation]:
    found = []
    for job in jobs:
        if not job.poison:
            if job.uuid in trashed:
                found.append(('flow', '%s was trashed (history: %s)'
                              % (job.key, _history(trashed[job.uuid]))))
            continue
        if job.uuid not in trashed:
            found.append(('dead-letter', '%s (poison) is not in the dead-letter' % job.key))
        elif len(trashed[job.uuid]) < attempts:
            found.append(('dead-letter', '%s (poison) trashed after %d attempts, not %d: %s'
                          % (job.key, len(trashed[job.uuid]), attempts,
                             _history(trashed[job.uuid]))))
    return found


def _history(history: list) -> str:
    return ', '.join('%s:%s' % (getattr(a, 'who', '?'), getattr(a, 'outcome', '?'))
                     for a in history)


def dispatch_takeovers(kills: list[Kill], jobs: list[JobInfo],
                       events: list[dict]) -> list[float]:
    """Seconds from each kill to the job's next ``running_start`` elsewhere."""
    uuids = {job.key: job.uuid for job in jobs}
    found = []
    for kill in kills:
        later = [e['t'] for e in events
                 if e['event'] == 'running_start' and e.get('job') == uuids[kill.job]
                 and e['pid'] != kill.pid and e['t'] > kill.at]
        if later:
            found.append(min(later) - kill.at)
    return found


def dispatched_again(events: list[dict]) -> int:
    """How many jobs had more than one ``running_start`` (taken over after a
    kill, a lost claim or an abandoned run): shows the cuts did bite."""
    starts = collections.Counter(e.get('job') for e in events
                                 if e['event'] == 'running_start')
    return sum(1 for n in starts.values() if n > 1)
