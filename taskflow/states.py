"""States of flows, atoms, engines and jobs, and the transitions allowed between them.

Every state is a plain ``str`` whose value is its name, so programs may compare
against literals (``state == 'SUCCESS'``).  The transition tables are data; the
``check_*`` functions only look them up.
"""

from __future__ import annotations

from taskflow import exceptions as exc

# Job states.
CLAIMED = 'CLAIMED'
COMPLETE = 'COMPLETE'
UNCLAIMED = 'UNCLAIMED'

# Flow and atom states.
FAILURE = 'FAILURE'
PENDING = 'PENDING'
REVERTING = 'REVERTING'
SUCCESS = 'SUCCESS'
RUNNING = 'RUNNING'
RETRYING = 'RETRYING'
IGNORE = 'IGNORE'
REVERTED = 'REVERTED'
REVERT_FAILURE = 'REVERT_FAILURE'

# Flow states only.
RESUMING = 'RESUMING'
SUSPENDING = 'SUSPENDING'
SUSPENDED = 'SUSPENDED'

# Atom intentions.
EXECUTE = 'EXECUTE'
REVERT = 'REVERT'
RETRY = 'RETRY'
INTENTIONS = (EXECUTE, IGNORE, REVERT, RETRY)

# Engine (run_iter) states; UNDEFINED and GAME_OVER are internal and never yielded.
SCHEDULING = 'SCHEDULING'
WAITING = 'WAITING'
ANALYZING = 'ANALYZING'
UNDEFINED = 'UNDEFINED'
GAME_OVER = 'GAME_OVER'

_ALLOWED_FLOW_TRANSITIONS = frozenset([
    (PENDING, RUNNING),
    (RUNNING, SUCCESS), (RUNNING, FAILURE), (RUNNING, REVERTED),
    (RUNNING, SUSPENDING), (RUNNING, RESUMING),
    (SUCCESS, RUNNING), (SUCCESS, PENDING),
    (FAILURE, RUNNING),
    (REVERTED, PENDING),
    (SUSPENDING, SUSPENDED), (SUSPENDING, SUCCESS), (SUSPENDING, FAILURE),
    (SUSPENDING, REVERTED), (SUSPENDING, RESUMING),
    (SUSPENDED, RUNNING),
    (RESUMING, SUSPENDED),
])

# Moves that are meaningless rather than wrong: suspending or resuming a flow
# that is not running.  They are ignored instead of raising.
_IGNORED_FLOW_TRANSITIONS = frozenset(
    (a, b)
    for a in (PENDING, FAILURE, SUCCESS, SUSPENDED, REVERTED)
    for b in (SUSPENDING, SUSPENDED, RESUMING)
    if a != b
)

_ALLOWED_TASK_TRANSITIONS = frozenset([
    (PENDING, RUNNING), (PENDING, IGNORE),
    (RUNNING, SUCCESS), (RUNNING, FAILURE),
    (FAILURE, REVERTING),
    (SUCCESS, REVERTING),
    (REVERTING, REVERTED), (REVERTING, REVERT_FAILURE),
    (REVERTED, PENDING),
    (IGNORE, PENDING),
])

_ALLOWED_RETRY_TRANSITIONS = _ALLOWED_TASK_TRANSITIONS | frozenset([
    (SUCCESS, RETRYING), (RETRYING, RUNNING),
])

_ALLOWED_JOB_TRANSITIONS = frozenset([
    (UNCLAIMED, CLAIMED), (CLAIMED, UNCLAIMED), (CLAIMED, COMPLETE),
])


def check_flow_transition(old_state: str | None, new_state: str) -> bool:
    """Whether a flow may move from ``old_state`` to ``new_state``.

    Returns ``False`` for a move to the same state and for ignored moves;
    raises :class:`~taskflow.exceptions.InvalidState` for forbidden ones.
    A missing (``None``) old state counts as ``PENDING``.
    """
    if old_state is None:
        old_state = PENDING
    if old_state == new_state:
        return False
    pair = (old_state, new_state)
    if pair in _ALLOWED_FLOW_TRANSITIONS:
        return True
    if pair in _IGNORED_FLOW_TRANSITIONS:
        return False
    raise exc.InvalidState("Flow transition from '%s' to '%s' is not allowed" % pair)


def check_task_transition(old_state: str, new_state: str) -> bool:
    """Whether a task may move from ``old_state`` to ``new_state``."""
    return (old_state, new_state) in _ALLOWED_TASK_TRANSITIONS


def check_retry_transition(old_state: str, new_state: str) -> bool:
    """Whether a retry atom may move from ``old_state`` to ``new_state``."""
    return (old_state, new_state) in _ALLOWED_RETRY_TRANSITIONS


def check_job_transition(old_state: str, new_state: str) -> bool:
    """Whether a job may move from ``old_state`` to ``new_state`` (raises if forbidden)."""
    if old_state == new_state:
        return False
    pair = (old_state, new_state)
    if pair in _ALLOWED_JOB_TRANSITIONS:
        return True
    raise exc.InvalidState("Job transition from '%s' to '%s' is not allowed" % pair)
