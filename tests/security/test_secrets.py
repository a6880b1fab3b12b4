"""taskflow.secrets: the project-wide masked keys, redaction and scrubbing."""

from __future__ import annotations

import collections
import dataclasses
import io
import logging
import os
import subprocess
import sys
import types
import uuid

import pytest

from taskflow import _secrets_memory
from taskflow import logging as tf_logging
from taskflow import secrets
from taskflow.types import failure
from tests.security.conftest import formatted

MASK = secrets.MASK


def secret(tag: str = '') -> str:
    """A unique value, long enough to be remembered."""
    return 'canary-%s%s' % (tag, uuid.uuid4().hex)


Creds = collections.namedtuple('Creds', 'user password')


@dataclasses.dataclass
class Login:
    user: str
    password: str


@dataclasses.dataclass
class Frozen:
    password: str
    derived: str = dataclasses.field(init=False, default='x')


# -- configuration -------------------------------------------------------------

def test_nothing_is_masked_by_default():
    assert secrets.masked_keys() == frozenset()
    assert not secrets.is_active()
    data = {'password': 'hunter22', 'nested': [('password', {'password': 1})]}
    assert secrets.redact(data) is data
    assert secrets.scrub('hunter22') == 'hunter22'


def test_mask_and_unmask_keys():
    secrets.mask_keys('password', 'token')
    assert secrets.masked_keys() == {'password', 'token'}
    assert secrets.is_active()
    secrets.unmask_keys('token')
    assert secrets.masked_keys() == {'password'}
    assert secrets.redact({'token': 1, 'password': 2}) == {'token': 1, 'password': MASK}


def test_keys_match_exactly_project_wide():
    secrets.mask_keys('password')
    assert secrets.redact({'Password': 1, 'passwords': 2, 'password': 3}) == {
        'Password': 1, 'passwords': 2, 'password': MASK}


def test_taskflow_logging_exports_mask_keys():
    assert tf_logging.mask_keys is secrets.mask_keys
    tf_logging.mask_keys('api_key')
    assert 'api_key' in secrets.masked_keys()


@pytest.mark.parametrize('raw, keys', [
    ('password', ['password']),
    ('password, token', ['password', 'token']),
    (' password,,token  api_key ', ['api_key', 'password', 'token']),
    ('', []),
])
def test_environment_variable_is_read_at_import(raw, keys):
    program = ('from taskflow import secrets;'
               ' print(sorted(secrets.masked_keys()), secrets.is_active())')
    env = dict(os.environ, **{secrets.ENV_VAR: raw})
    out = subprocess.run([sys.executable, '-c', program], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == '%s %s' % (keys, bool(keys))


def test_reset_goes_back_to_the_environment(monkeypatch):
    monkeypatch.setenv(secrets.ENV_VAR, 'from_env')
    secrets.mask_keys('other')
    secrets.hide_values('some-value')
    secrets.reset()
    assert secrets.masked_keys() == {'from_env'}
    assert secrets.scrub('some-value') == 'some-value'


# -- redact ----------------------------------------------------------------------

def test_redact_reaches_every_container_at_any_depth():
    value = secret()
    data = {
        'password': value,
        'list': [{'password': value}, [{'password': value}]],
        'tuple': ('password', {'password': value}),
        'namedtuple': Creds('bob', value),
        'dataclass': Login('bob', value),
        'mapping': types.MappingProxyType({'password': value}),
        'set': frozenset([('a', 'b')]),
        'deep': {'a': {'b': {'c': ({'d': [{'password': value}]},)}}},
    }
    shown = secrets.redact(data, ['password'])
    assert value not in repr(shown)
    assert shown['list'] == [{'password': MASK}, [{'password': MASK}]]
    assert shown['tuple'] == ('password', {'password': MASK})
    assert shown['namedtuple'] == Creds('bob', MASK)
    assert type(shown['namedtuple']) is Creds
    assert shown['dataclass'] == Login('bob', MASK)
    assert shown['mapping'] == {'password': MASK}
    assert shown['set'] is data['set']
    assert shown['deep'] == {'a': {'b': {'c': ({'d': [{'password': MASK}]},)}}}
    # The data itself is untouched.
    assert data['list'][0]['password'] == value
    assert data['namedtuple'].password == value


def test_a_masked_key_hides_its_whole_value():
    shown = secrets.redact({'password': {'a': [1, 2]}, 'x': 1}, ['password'])
    assert shown == {'password': MASK, 'x': 1}


def test_redact_copies_only_what_it_changes():
    untouched = {'a': [1, 2]}
    data = {'password': 1, 'other': untouched, 't': (1, 2)}
    shown = secrets.redact(data, ['password'])
    assert shown is not data
    assert shown['other'] is untouched
    assert shown['t'] is data['t']
    assert secrets.redact(untouched, ['password']) is untouched


def test_plain_redaction_shows_dicts_and_lists_as_plain_ones():
    class Ordered(collections.OrderedDict):
        pass

    shown = secrets.redact([Ordered(a=1)], ['password'], plain=True)
    assert shown == [{'a': 1}]
    assert type(shown[0]) is dict


def test_sets_of_values_are_scrubbed_when_a_value_is_remembered():
    value = secret()
    shown = secrets.redact({'password': value, 'seen': {value, 'other'}}, ['password'])
    assert shown == {'password': MASK, 'seen': {MASK, 'other'}}


def test_local_keys_are_tested_with_in_as_given():
    # A string is a container: its substrings match, as in the original.
    assert secrets.redact({'secret': 1, 'sec': 2, 'x': 3}, 'secret') == {
        'secret': MASK, 'sec': MASK, 'x': 3}
    # Keys that can not be looked up in the container are simply not masked.
    assert secrets.redact({1: 'a', ('t',): 'b'}, 'secret') == {1: 'a', ('t',): 'b'}


def test_self_containing_data_never_shows_the_unmasked_original():
    value = secret()
    loop = {'password': value}
    loop['self'] = loop
    shown = secrets.redact(loop, ['password'])
    assert shown == {'password': MASK, 'self': MASK}
    assert value not in repr(shown)
    # With nothing to mask the value is given back as it is.
    plain = [1]
    plain.append(plain)
    assert secrets.redact(plain, ['password']) is plain


def test_data_nested_too_deep_is_hidden_whole():
    deep = {'password': secret()}
    for _ in range(5000):
        deep = {'x': deep}
    assert secrets.redact(deep, ['password']) == MASK


def test_dataclass_that_can_not_be_copied_still_has_its_text_scrubbed():
    value = secret()
    item = Frozen(value)
    shown = secrets.safe_for_display({'item': item}, ['password'])
    assert value not in str(shown)
    assert MASK in str(shown)


# -- remembering and scrubbing ---------------------------------------------------

def test_values_found_under_masked_keys_are_scrubbed_from_text():
    value = secret()
    secrets.redact({'password': value}, ['password'])
    assert secrets.scrub('login with %s failed' % value) == 'login with *** failed'
    assert secrets.is_active()


def test_escaped_forms_are_scrubbed_too():
    value = "it's-a-\"secret\"-\u00e9\\n-%s" % uuid.uuid4().hex
    secrets.redact({'password': value}, ['password'])
    for text in (str([value]), repr(value), '%r' % {'k': value}, '"%s"' % value,
                 __import__('json').dumps({'k': value})):
        assert secrets.scrub(text).count(MASK) == 1, text


def test_leaves_of_a_masked_container_are_remembered():
    token, number = secret(), 123456789
    secrets.redact({'credentials': {'token': token, 'pin': number, 'user': 'bob'}},
                   ['credentials'])
    assert secrets.scrub('%s %s bob' % (token, number)) == '*** *** bob'


def test_short_values_are_masked_but_not_searched_for():
    shown = secrets.redact({'password': 'abc'}, ['password'])
    assert shown == {'password': MASK}
    assert secrets.scrub('abc is short') == 'abc is short'


def test_hidden_values_may_be_short_and_are_kept():
    secrets.hide_values('xy', b'bytes-value')
    assert secrets.scrub('xy and bytes-value') == '*** and ***'
    assert secrets.scrub(repr(b'bytes-value')) == "b'***'"


def test_longest_values_are_replaced_first():
    secrets.hide_values('abcdef', 'abcdefghij')
    assert secrets.scrub('abcdefghij') == MASK


def test_memory_of_learned_values_is_bounded(monkeypatch):
    monkeypatch.setattr(_secrets_memory, 'MAX_LEARNED_VALUES', 5)
    values = ['value-number-%d' % i for i in range(8)]
    for value in values:
        secrets.redact({'password': value}, ['password'])
    # The least recently seen are forgotten first.
    assert [secrets.scrub(v) == MASK for v in values] == [False] * 3 + [True] * 5
    secrets.redact({'password': values[3]}, ['password'])   # seen again: kept longest
    secrets.redact({'password': 'value-number-8'}, ['password'])
    assert secrets.scrub(values[3]) == MASK
    assert secrets.scrub(values[4]) != MASK


def test_safe_for_display_returns_the_value_itself_when_nothing_is_hidden():
    value = {'a': 1}
    assert secrets.safe_for_display(value) is value
    assert secrets.safe_for_display(value, ['password']) is value
    hidden = secret()
    secrets.hide_values(hidden)
    assert secrets.safe_for_display('x %s' % hidden) == 'x ***'
    assert secrets.safe_for_display(7) == 7


# -- failures --------------------------------------------------------------------

class LoginRejected(Exception):
    pass


def reject(password, config):
    raise LoginRejected('rejected %s' % password, {'password': password})


def capture(func, *args):
    try:
        func(*args)
    except Exception:
        return failure.Failure()
    raise AssertionError('did not raise')


def test_failures_are_untouched_when_nothing_is_masked():
    value = secret()
    fail = capture(reject, value, {})
    assert value in fail.exception_str
    assert fail.exception_args == ('rejected %s' % value, {'password': value})


def test_failures_keep_masked_text_and_args():
    secrets.mask_keys('password')
    value = secret()
    fail = capture(reject, value, {})
    assert fail.exception_str == str(("rejected ***", {'password': MASK}))
    assert fail.exception_args == ('rejected ***', {'password': MASK})
    stored = fail.to_dict()
    assert value not in repr(stored)
    assert value not in fail.pformat(traceback=True)
    assert value not in str(failure.Failure.from_dict(stored))
    # The live exception is the caller's own, unchanged: reraise() gives it back.
    assert fail.exception.args[1] == {'password': value}
    with pytest.raises(LoginRejected) as raised:
        fail.reraise()
    assert raised.value is fail.exception


def test_failures_learn_secrets_from_nested_arguments_and_attributes():
    secrets.mask_keys('api_token')
    token, other = secret('t'), secret('o')

    class Refused(Exception):
        def __init__(self, details):
            super().__init__('refused: %s' % details['text'])
            self.details = details

    def call(config):
        raise Refused({'api_token': other, 'text': 'token %s' % config['db']['api_token']})

    fail = capture(call, {'db': {'api_token': token}})
    assert fail.exception_str == 'refused: token ***'
    fail = capture(lambda: call({'db': {'api_token': 'short'}}))
    assert other not in repr(fail.to_dict())


def test_causes_are_masked_too():
    secrets.mask_keys('password')
    value = secret()

    def chained(password):
        try:
            raise KeyError({'password': password})
        except KeyError as e:
            raise RuntimeError('wrapped') from e

    fail = capture(chained, value)
    [cause] = fail.causes
    assert cause.exception_args == ({'password': MASK},)
    assert value not in repr(fail.to_dict())


def test_redact_failure_scrubs_a_failure_made_before_the_value_was_known():
    value = secret()
    fail = capture(reject, value, {})
    assert secrets.redact_failure(fail) is fail
    secrets.hide_values(value)
    shown = secrets.redact_failure(fail)
    assert value not in repr(shown.to_dict())
    assert str(shown) == 'Failure: %s.LoginRejected: %s' % (
        __name__, ("rejected ***", {'password': MASK}))
    assert shown.exception is fail.exception
    assert shown.check(LoginRejected)


def test_learn_from_failure_with_listener_keys():
    value = secret()
    fail = capture(reject, value, {})
    secrets.learn_from_failure(fail, ['password'])
    assert secrets.scrub(str(fail)).count(value) == 0


# -- log records -----------------------------------------------------------------

def test_taskflow_log_records_are_masked_at_every_level(everything_logged):
    secrets.mask_keys('password')
    value = secret()
    log = logging.getLogger('taskflow.some.module.%s' % uuid.uuid4().hex)
    for level in (5, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        log.log(level, 'details: %s', {'password': value, 'user': 'bob'})
        log.log(level, 'quoted: %s', value)
    try:
        reject(value, {})
    except LoginRejected:
        log.exception('failed')
    text = formatted(everything_logged)
    assert value not in text
    assert text.count("details: {'password': '***', 'user': 'bob'}") == 5
    assert text.count('quoted: ***') == 5
    assert "LoginRejected: ('rejected ***', {'password': '***'})" in text


def test_taskflow_adapter_logger_records_are_masked(everything_logged):
    value = secret()
    secrets.hide_values(value)
    tf_logging.getLogger('taskflow.adapted').trace('see %s', value)
    assert formatted(everything_logged).endswith('see ***')


def test_other_loggers_are_left_alone_unless_they_ask(everything_logged):
    value = secret()
    secrets.hide_values(value)
    app = logging.getLogger('app-%s' % uuid.uuid4().hex)
    app.warning('value %s', value)
    assert formatted(everything_logged).endswith('value %s' % value)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(secrets.RedactingFilter())
    app.addHandler(handler)
    try:
        app.warning('value %s', value)
    finally:
        app.removeHandler(handler)
    assert stream.getvalue() == 'value ***\n'


def test_records_are_unchanged_when_nothing_is_masked(everything_logged):
    log = logging.getLogger('taskflow.plain')
    details = {'password': 'visible'}
    log.warning('details: %s', details)
    [record] = everything_logged
    assert record.args == (details,) or record.args == details
    assert record.getMessage() == "details: {'password': 'visible'}"


def test_safe_for_display_keeps_a_failure_a_failure():
    value = secret()
    fail = capture(reject, value, {})
    secrets.hide_values(value)
    shown = secrets.safe_for_display(fail)
    assert isinstance(shown, failure.Failure)
    assert value not in str(shown) and shown.exception is fail.exception
