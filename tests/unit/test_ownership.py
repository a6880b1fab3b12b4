"""The rule for granting a flow's lease (``ownership.grant``), on literal data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from taskflow import exceptions as exc
from taskflow.persistence import ownership

Lease = ownership.Lease
NOW = 1000.0


def live(owner='other', token=4, claim=None):
    return Lease('fd', owner, token, NOW + 10, claim)


def test_a_flow_never_owned_gets_token_one():
    assert ownership.grant(None, 'fd', 'me', 30, NOW) == Lease('fd', 'me', 1, NOW + 30, None)


def test_a_live_lease_of_someone_else_is_refused_with_who_and_when():
    with pytest.raises(exc.FlowLeased) as info:
        ownership.grant(live(), 'fd', 'me', 30, NOW)
    assert str(info.value).startswith(
        "Flow detail 'fd' is owned by 'other' (lease token 4, expires in 10.0 s)")


def test_an_expired_lease_is_taken_over_with_the_next_token():
    expired = Lease('fd', 'other', 4, NOW, 7)
    assert ownership.grant(expired, 'fd', 'me', 30, NOW) == Lease('fd', 'me', 5, NOW + 30, 7)


def test_the_owner_may_take_its_own_live_lease_again_with_a_new_token():
    assert ownership.grant(live(owner='me'), 'fd', 'me', 30, NOW).token == 5


@pytest.mark.parametrize('recorded, claim, granted', [
    (None, 1, True), (3, 4, True), (3, 3, False), (3, 2, False), (3, None, False)])
def test_a_newer_jobboard_claim_pre_empts_a_live_lease(recorded, claim, granted):
    current = live(claim=recorded)
    if not granted:
        with pytest.raises(exc.FlowLeased):
            ownership.grant(current, 'fd', 'me', 30, NOW, claim_token=claim)
        return
    lease = ownership.grant(current, 'fd', 'me', 30, NOW, claim_token=claim)
    assert (lease.owner, lease.token, lease.claim_token) == ('me', 5, claim)


def test_the_recorded_claim_token_never_goes_back():
    expired = Lease('fd', 'other', 4, NOW, 9)
    assert ownership.grant(expired, 'fd', 'me', 30, NOW, claim_token=2).claim_token == 9


def test_a_dead_owner_on_this_host_is_replaced_at_once():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    dead = '%s:%d:abcd' % (socket.gethostname(), proc.pid)
    lease = ownership.grant(live(owner=dead), 'fd', 'me', 30, NOW)
    assert lease.owner == 'me'


@pytest.mark.parametrize('owner', [
    '%s:%d:abcd' % (socket.gethostname(), os.getpid()),   # this very process
    'elsewhere.example:1:abcd',                           # another host: wait it out
    'conductor-1'])                                       # not a host:pid name
def test_owners_that_may_be_alive_are_waited_for(owner):
    with pytest.raises(exc.FlowLeased):
        ownership.grant(live(owner=owner), 'fd', 'me', 30, NOW)


@pytest.mark.parametrize('ttl', [0, -1, 'x', None, True])
def test_a_lease_needs_a_positive_time_to_live(ttl):
    with pytest.raises(ValueError, match='A lease time to live must be a positive number'):
        ownership.check_ttl(ttl)


@pytest.mark.parametrize('owner', ['', None, 3])
def test_a_lease_needs_an_owner_name(owner):
    with pytest.raises(ValueError, match='A lease owner must be a non-empty string'):
        ownership.grant(None, 'fd', owner, 30, NOW)


def test_the_default_owner_names_this_host_and_process():
    host, pid, rest = ownership.default_owner().split(':')
    assert (host, int(pid)) == (socket.gethostname(), os.getpid()) and rest


def test_an_owner_of_this_process_that_gave_up_unrecorded_is_replaced_at_once():
    # (its release could not be written: the backend was down)
    mine = '%s:%d:engine-1' % (socket.gethostname(), os.getpid())
    with pytest.raises(exc.FlowLeased):
        ownership.grant(live(owner=mine), 'fd', 'me', 30, NOW)
    ownership.retire(mine)
    try:
        assert ownership.grant(live(owner=mine), 'fd', 'me', 30, NOW).owner == 'me'
        ownership.reinstate(mine)    # it took a lease again
        with pytest.raises(exc.FlowLeased):
            ownership.grant(live(owner=mine), 'fd', 'me', 30, NOW)
    finally:
        ownership.reinstate(mine)
