"""The jobboards' ReconnectingLoop, on a real thread with scripted sessions.

Timing asserts are one-sided where they can be (a back-off is never shorter
than asked) and generous where they cannot (the machine is shared).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from taskflow.jobs.backends._background import Connected, ReconnectingLoop

LOGGER = 'taskflow.jobs.backends._background'
WHAT = 'Jobboard test: the feed'


class Script:
    """A session playing one step per call: ``'fail'`` raises, ``'ok'``
    connects and returns, ``'hold'`` connects and waits for stop(); once
    the steps run out it plays ``then``. Records when each call began and
    what ``connected()`` answered."""

    def __init__(self, steps: list[str], then: str = 'hold') -> None:
        self.steps = list(steps)
        self.then = then
        self.began: list[float] = []
        self.recovered: list[bool] = []
        self.holding = threading.Event()
        self.loop: ReconnectingLoop | None = None

    def __call__(self, connected: Connected) -> None:
        self.began.append(time.monotonic())
        step = self.steps.pop(0) if self.steps else self.then
        if step == 'fail':
            raise ConnectionError('connection refused\nsecond line')
        self.recovered.append(connected())
        if step == 'hold':
            self.holding.set()
            assert self.loop is not None
            while not self.loop.stopping:
                time.sleep(0.005)


class LongestDraw(random.Random):
    """Draws the longest pause each time: the back-off without jitter."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make(script: Script, first_backoff: float = 0.01,
         max_backoff: float = 0.05,
         wake: Callable[[], None] | None = None,
         rng: random.Random | None = None) -> ReconnectingLoop:
    loop = ReconnectingLoop('test-loop', WHAT, script, wake=wake,
                            first_backoff=first_backoff,
                            max_backoff=max_backoff, rng=rng)
    script.loop = loop
    return loop


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def run_until_held(script: Script, **options: Any) -> list[float]:
    """Run the loop until the script reaches 'hold', then stop it; return
    the gaps between the sessions' starts."""
    loop = make(script, **options)
    loop.start()
    try:
        assert script.holding.wait(10)
    finally:
        assert loop.stop(5)
    return [b - a for a, b in zip(script.began, script.began[1:])]


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and r.levelno == level]


def test_each_outage_is_logged_once_and_its_end_once(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    script = Script(['fail'] * 4 + ['ok', 'ok'] + ['fail'] * 3)
    run_until_held(script)
    assert len(script.began) == 10
    warnings = messages(caplog, logging.WARNING)
    assert warnings == [WHAT + ' failed (ConnectionError: connection refused);'
                        ' retrying with back-off'] * 2
    backs = messages(caplog, logging.INFO)
    assert len(backs) == 2 and all(m.startswith(WHAT + ' is back (after ')
                                   for m in backs)
    # connected() says which connection ended an outage (a session resyncs).
    assert script.recovered == [True, False, True]


def test_the_backoff_doubles_up_to_its_bound():
    script = Script(['fail'] * 6)
    gaps = run_until_held(script, first_backoff=0.02, max_backoff=0.16,
                          rng=LongestDraw())
    asked = [0.02, 0.04, 0.08, 0.16, 0.16, 0.16]
    assert len(gaps) == len(asked)
    for gap, wanted in zip(gaps, asked):
        assert wanted * 0.95 <= gap < wanted + 0.3, (gaps, asked)


def test_the_backoff_starts_again_once_connected():
    # Five failures take the back-off to 0.64 s; connecting resets it.
    script = Script(['fail'] * 5 + ['ok', 'fail'])
    gaps = run_until_held(script, first_backoff=0.02, max_backoff=2.0,
                          rng=LongestDraw())
    assert gaps[4] >= 0.32 * 0.95, gaps
    # 'ok' -> 'fail': the minimum interval; 'fail' -> 'hold': the first
    # back-off again, not 0.64 s.
    assert gaps[5] < 0.3 and gaps[6] < 0.3, gaps


def test_pauses_are_jittered_between_half_the_backoff_and_all_of_it():
    # Conductors that lost the same server must not all reconnect at once.
    script = Script(['fail'] * 8)
    gaps = run_until_held(script, first_backoff=0.05, max_backoff=0.2,
                          rng=random.Random(7))
    at_cap = gaps[3:]   # 0.05, 0.1, 0.2, then 0.2 every time
    assert all(0.1 * 0.95 <= gap < 0.2 + 0.3 for gap in at_cap), gaps
    # Gaps are never shorter than the pause taken: one shorter than 0.18 s
    # (this seed draws five between 0.10 and 0.17 s) was drawn below the cap.
    assert min(at_cap) < 0.18, gaps
    # Never closer together than the first back-off.
    assert min(gaps) >= 0.05 * 0.95, gaps


def test_a_failing_session_does_not_spin():
    script = Script([], then='fail')
    loop = make(script, first_backoff=0.05, max_backoff=0.05)
    started = time.process_time()
    loop.start()
    time.sleep(1.0)
    assert loop.stop(5)
    assert 5 <= len(script.began) <= 22, len(script.began)
    # Includes pytest's own thread, which only sleeps meanwhile.
    assert time.process_time() - started < 0.3


def test_a_session_that_ends_at_once_does_not_spin():
    script = Script([], then='ok')
    loop = make(script, first_backoff=0.05, max_backoff=1.0)
    loop.start()
    time.sleep(1.0)
    assert loop.stop(5)
    assert 5 <= len(script.began) <= 22, len(script.began)


def test_stop_cuts_a_backoff_short_and_says_the_thread_ended():
    script = Script([], then='fail')
    loop = make(script, first_backoff=30.0, max_backoff=30.0)
    loop.start()
    assert until(lambda: len(script.began) == 1)
    time.sleep(0.05)  # into the 30 s back-off
    started = time.monotonic()
    assert loop.stop(5) is True
    assert time.monotonic() - started < 1.0
    assert len(script.began) == 1


def test_an_error_after_stop_is_not_an_outage(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    woken = threading.Event()
    calls = []

    def session(connected: Connected) -> None:
        calls.append(connected())
        woken.wait(30)  # blocked on a socket, say, until stop() closes it
        raise ConnectionError('socket closed')

    loop = ReconnectingLoop('test-loop', WHAT, session, wake=woken.set)
    loop.start()
    assert until(lambda: calls)
    started = time.monotonic()
    assert loop.stop(5) is True
    assert time.monotonic() - started < 1.0
    assert calls == [False]
    assert messages(caplog, logging.WARNING) == []
    assert messages(caplog, logging.INFO) == []


def test_stop_says_when_the_thread_outlives_its_timeout():
    release = threading.Event()
    entered = threading.Event()

    def session(connected: Connected) -> None:
        entered.set()
        release.wait(30)  # deaf to stop()

    loop = ReconnectingLoop('test-loop', WHAT, session)
    loop.start()
    assert entered.wait(10)
    started = time.monotonic()
    assert loop.stop(0.1) is False
    assert time.monotonic() - started < 1.0
    release.set()
    assert loop.stop(5) is True


def test_stop_from_the_session_itself_ends_the_loop():
    answers = []

    def session(connected: Connected) -> None:
        answers.append(loop.stop(5))

    loop = ReconnectingLoop('test-loop-self', WHAT, session)
    loop.start()
    assert until(lambda: answers)
    assert answers == [False]  # it cannot have ended while it asks
    assert loop.stop(5) is True
    assert len(answers) == 1


def test_start_is_once_and_never_after_stop():
    script = Script([])
    loop = make(script)
    assert loop.stop(1) is True  # never started: nothing to wait for
    loop.start()
    time.sleep(0.05)
    assert script.began == []

    script = Script([])
    loop = make(script)
    loop.start()
    loop.start()
    assert script.holding.wait(10)
    threads = [t for t in threading.enumerate() if t.name == 'test-loop']
    assert len(threads) == 1 and threads[0].daemon
    assert loop.stop(5)
    assert not any(t.name == 'test-loop' for t in threading.enumerate())
