"""taskflow.utils.* and taskflow.version (messages observed on the reference)."""

import datetime
import sys
import threading
import types

import pytest

from taskflow import exceptions as exc
from taskflow import version
from taskflow.types import failure
from taskflow.utils import banner, eventlet_utils, kazoo_utils, misc
from taskflow.utils import redis_utils, threading_utils


# -- misc -------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (1, 1), ('2', 2), ('3.7', 3), (4.9, 4), (True, 1)])
def test_as_int(value, expected):
    assert misc.as_int(value) == expected


@pytest.mark.parametrize('value', ['x', None, [1]])
def test_as_int_errors(value):
    with pytest.raises(TypeError) as info:
        misc.as_int(value)
    assert str(info.value) == "Can not translate '%s' (%s) to an integer" % (
        value, type(value))
    assert misc.as_int(value, quiet=True) is value


def test_binary_encode_decode():
    assert misc.binary_encode('ü') == b'\xc3\xbc'
    assert misc.binary_encode(b'b') == b'b'
    assert misc.binary_encode('é', 'latin-1') == b'\xe9'
    assert misc.binary_decode(b'\xc3\xbc') == 'ü'
    assert misc.binary_decode('s') == 's'
    assert misc.binary_decode(b'\xff', errors='replace') == '\ufffd'
    for bad in (1, None, bytearray(b'x')):
        with pytest.raises(TypeError) as info:
            misc.binary_encode(bad)
        assert str(info.value) == "%s can't be encoded" % type(bad)
        with pytest.raises(TypeError) as info:
            misc.binary_decode(bad)
        assert str(info.value) == "%s can't be decoded" % type(bad)


def test_capture_failure():
    with pytest.raises(RuntimeError) as info:
        with misc.capture_failure():
            pass
    assert str(info.value) == 'No active exception is being handled'
    try:
        raise ValueError('v')
    except ValueError:
        with misc.capture_failure() as f:
            assert isinstance(f, failure.Failure)
            assert str(f) == 'Failure: ValueError: v'


def test_get_hostname(monkeypatch):
    monkeypatch.setattr(misc.socket, 'getfqdn', lambda: 'host.example')
    assert misc.get_hostname() == 'host.example'

    def broken():
        raise OSError('no network')

    monkeypatch.setattr(misc.socket, 'getfqdn', broken)
    assert misc.get_hostname() == '<unknown>' == misc.UNKNOWN_HOSTNAME
    assert misc.get_hostname('x') == 'x'


def test_get_version_string():
    def with_version(v):
        return types.SimpleNamespace(version=v)

    assert misc.get_version_string(with_version((1, 0))) == '1.0'
    assert misc.get_version_string(with_version((1, 0, 'a'))) == '1.0.a'
    assert misc.get_version_string(with_version('2.1')) == '2.1'
    assert misc.get_version_string(with_version(3)) == '3'
    assert misc.get_version_string(object()) is None


def test_parse_uri():
    r = misc.parse_uri('mysql://user:pass@host:3306/db?a=1&b=2&a=3&c#frag')
    assert isinstance(r, misc.SplitResult)
    assert (r.scheme, r.username, r.password, r.hostname, r.port, r.path,
            r.query, r.fragment) == ('mysql', 'user', 'pass', 'host', 3306,
                                     '/db', 'a=1&b=2&a=3&c', 'frag')
    assert repr(r) == ("SplitResult(scheme='mysql', netloc='user:pass@host:3306',"
                       " path='/db', query='a=1&b=2&a=3&c', fragment='frag')")
    assert r.params() == {'a': '3', 'b': '2'}
    assert r.params(collapse=False) == {'a': ['1', '3'], 'b': '2'}
    zk = misc.parse_uri('zookeeper://a,b,c:2181/path')
    assert (zk.hostname, zk.port, zk.params()) == ('a,b,c', 2181, {})
    assert misc.parse_uri('mailto:foo').path == 'foo'


@pytest.mark.parametrize('uri', ['memory', '', ' http://x ', '1http://x'])
def test_parse_uri_needs_scheme(uri):
    with pytest.raises(ValueError) as info:
        misc.parse_uri(uri)
    assert str(info.value) == (
        "Uri '%s' does not start with a RFC 3986 compliant scheme" % uri)


def test_parse_uri_needs_string():
    with pytest.raises(TypeError) as info:
        misc.parse_uri(5)
    assert str(info.value) == ("Can only parse string types to uri data, and"
                               " not '5' (<class 'int'>)")


def test_merge_uri_and_extract_driver():
    conf = {'b': 'keep', 'c': 3}
    uri = misc.parse_uri('mysql://u:p@h:5/db?a=1&b=2')
    assert misc.merge_uri(uri, conf) is conf
    assert conf == {'b': 'keep', 'c': 3, 'username': 'u', 'password': 'p',
                    'port': 5, 'hostname': 'h:5', 'a': '1'}
    assert misc.extract_driver_and_conf({'k': 'memory'}, 'k') == (
        'memory', {'k': 'memory'})
    driver, conf = misc.extract_driver_and_conf({'k': 'mysql://u:p@h/db?x=1'}, 'k')
    assert driver == 'mysql'
    assert conf == {'k': 'mysql://u:p@h/db?x=1', 'username': 'u',
                    'password': 'p', 'hostname': 'h', 'x': '1'}


@pytest.mark.parametrize('conf, expected', [
    ('mysql://u:p@h:12/db?x=1',
     ('mysql', {'connection': 'mysql://u:p@h:12/db?x=1', 'username': 'u',
                'password': 'p', 'port': 12, 'hostname': 'h:12', 'x': '1'})),
    ('memory', ('memory', {'connection': 'memory'})),
    ('memory:', ('memory', {'connection': 'memory:'})),
    ('x y', ('x y', {'connection': 'x y'})),
])
def test_extract_driver_and_conf_from_a_string(conf, expected):
    # A plain string stands for {conf_key: string} (as the original).
    assert misc.extract_driver_and_conf(conf, 'connection') == expected


def test_clamp():
    clamped = []
    assert misc.clamp(5, 0, 3) == 3
    assert misc.clamp(-1, 0, 3) == 0
    assert misc.clamp(2, 0, 3, on_clamped=lambda: clamped.append(1)) == 2
    assert clamped == []
    assert misc.clamp(1.5, 0.0, 1.0, on_clamped=lambda: clamped.append(1)) == 1.0
    assert clamped == [1]
    with pytest.raises(ValueError) as info:
        misc.clamp(1, 3, 0)
    assert str(info.value) == ("Provided minimum '3' must be less than or"
                               " equal to the provided maximum '0'")


@pytest.mark.parametrize('value, expected', [
    ('s', False), (b'b', True), ([1], True), ((), True), ({}, True),
    (set(), True), (iter([]), True), (5, False), (None, False)])
def test_is_iterable(value, expected):
    assert misc.is_iterable(value) is expected


def test_small_helpers():
    assert misc.pick_first_not_none(None, 0, 1) == 0
    assert misc.pick_first_not_none() is None
    assert misc.sequence_minus([1, 2, 2, 3], [2, 5]) == [1, 2, 3]
    assert list(misc.reverse_enumerate('abc')) == [(2, 'c'), (1, 'b'), (0, 'a')]
    assert list(misc.countdown_iter(5, 2)) == [5, 3, 1]
    assert list(misc.countdown_iter(0)) == []
    with pytest.raises(ValueError) as info:
        list(misc.countdown_iter(3, 0))
    assert str(info.value) == 'Decrement value must be greater than zero and not 0'
    assert misc.fix_newlines('a\r\nb\nc\rd') == 'a\nb\nc\nd'
    assert misc.fix_newlines('a\r\nb', replacement='X') == 'aXb'
    assert misc.millis_to_datetime(1500) == datetime.datetime.fromtimestamp(1.5)
    d = {'a': [1]}
    assert misc.safe_copy_dict(d) == d and misc.safe_copy_dict(d) is not d
    assert misc.safe_copy_dict(None) == {}
    assert misc.match_type(5, [((str,), 'str'), ((int,), 'int')]) == 'int'
    assert misc.match_type(5.0, [((str,), 'str')]) is None
    assert misc.NUMERIC_TYPES == (int, float)


def test_decode_json():
    assert misc.decode_json('{"a": 1}') == {'a': 1}
    assert misc.decode_json(b'{"a": 1}') == {'a': 1}
    assert misc.decode_json('[1]', root_types=(list,)) == [1]
    with pytest.raises(ValueError) as info:
        misc.decode_json('[1]')
    assert str(info.value) == ("Expected '<class 'dict'>' root type not"
                               " '<class 'list'>'")
    with pytest.raises(ValueError) as info:
        misc.decode_json('nope')
    assert str(info.value) == ('Expected JSON decodable data: Expecting value:'
                               ' line 1 column 1 (char 0)')


def test_cachedproperty():
    class A:
        calls = 0

        @misc.cachedproperty
        def foo(self):
            """doc"""
            A.calls += 1
            return A.calls

        @misc.cachedproperty(require_lock=False)
        def bar(self):
            return 'b'

    a = A()
    assert (a.foo, a.foo, a.bar) == (1, 1, 'b')
    assert vars(a) == {'_foo': 1, '_bar': 'b'}
    assert A.foo.__doc__ == 'doc'
    with pytest.raises(AttributeError) as info:
        a.foo = 5
    assert str(info.value) == "can't set attribute"
    with pytest.raises(AttributeError) as info:
        del a.foo
    assert str(info.value) == "can't delete attribute"


def test_str_enum():
    class E(misc.StrEnum):
        X = 'x'

    assert E.X == 'x' and str(E.X) == 'x'


# -- threading_utils ------------------------------------------------------------

def test_daemon_thread_is_not_started():
    out = []
    t = threading_utils.daemon_thread(out.append, 'a')
    assert isinstance(t, threading.Thread) and t.daemon and not t.is_alive()
    t.start()
    t.join()
    assert out == ['a']
    t = threading_utils.daemon_thread(lambda **kw: out.append(kw), k=1)
    t.start()
    t.join()
    assert out[-1] == {'k': 1}


def test_thread_helpers(monkeypatch):
    assert threading_utils.get_ident() == threading.get_ident()
    assert threading_utils.is_alive(None) is False
    monkeypatch.setattr(threading_utils.multiprocessing, 'cpu_count', lambda: 7)
    assert threading_utils.get_optimal_thread_count() == 8

    def no_count():
        raise NotImplementedError()

    monkeypatch.setattr(threading_utils.multiprocessing, 'cpu_count', no_count)
    assert threading_utils.get_optimal_thread_count(5) == 5


def test_thread_bundle():
    events = []
    bundle = threading_utils.ThreadBundle()
    assert len(bundle) == 0

    def factory():
        return threading_utils.daemon_thread(lambda: events.append('run'))

    bundle.bind(factory,
                before_start=lambda t: events.append('bs'),
                after_start=lambda t: events.append('as'),
                before_join=lambda t: events.append('bj'),
                after_join=lambda t: events.append('aj'))
    bundle.bind(factory)
    assert len(bundle) == 2
    assert bundle.start() == 2 and bundle.start() == 0
    assert bundle.stop() == 2 and bundle.stop() == 0
    assert sorted(events) == ['aj', 'as', 'bj', 'bs', 'run', 'run']
    for kwargs, name in (({'thread_factory': 5}, 'thread_factory'),
                         ({'thread_factory': None}, 'thread_factory'),
                         ({'thread_factory': factory, 'after_join': 'x'},
                          'after_join'),
                         ({'thread_factory': factory, 'before_start': 5},
                          'before_start')):
        with pytest.raises(ValueError) as info:
            bundle.bind(**kwargs)
        assert str(info.value) == ("Provided callback for argument '%s' must"
                                   " be callable" % name)


# -- eventlet_utils ----------------------------------------------------------------

def test_check_for_eventlet(monkeypatch):
    monkeypatch.setattr(eventlet_utils, 'EVENTLET_AVAILABLE', False)
    with pytest.warns(DeprecationWarning):
        with pytest.raises(RuntimeError) as info:
            eventlet_utils.check_for_eventlet()
    assert str(info.value) == 'Eventlet is not currently available'
    with pytest.warns(DeprecationWarning):
        with pytest.raises(KeyError):
            eventlet_utils.check_for_eventlet(KeyError('k'))
    monkeypatch.setattr(eventlet_utils, 'EVENTLET_AVAILABLE', True)
    with pytest.warns(DeprecationWarning):
        assert eventlet_utils.check_for_eventlet() is None


# -- kazoo_utils -----------------------------------------------------------------

@pytest.fixture
def fake_kazoo(monkeypatch):
    """A stand-in ``kazoo`` package recording KazooClient(**kwargs)."""
    made = []

    class KazooException(Exception):
        pass

    kazoo = types.ModuleType('kazoo')
    kazoo.client = types.ModuleType('kazoo.client')
    kazoo.exceptions = types.ModuleType('kazoo.exceptions')
    kazoo.client.KazooClient = lambda **kwargs: made.append(kwargs) or 'client'
    kazoo.exceptions.KazooException = KazooException
    for name, module in (('kazoo', kazoo), ('kazoo.client', kazoo.client),
                         ('kazoo.exceptions', kazoo.exceptions)):
        monkeypatch.setitem(sys.modules, name, module)
    # The module caches the class it builds from kazoo: start and end clean.
    kazoo_utils.__dict__.pop('KazooTransactionException', None)
    yield made, KazooException
    kazoo_utils.__dict__.pop('KazooTransactionException', None)


def test_make_client_defaults(fake_kazoo):
    made, _ = fake_kazoo
    assert kazoo_utils.make_client({}) == 'client'
    kwargs = dict(made[0])
    assert kwargs.pop('logger').logger.name == 'taskflow.utils.kazoo_utils'
    assert kwargs == {'hosts': 'localhost:2181', 'read_only': False,
                      'randomize_hosts': False, 'keyfile': None,
                      'keyfile_password': None, 'certfile': None,
                      'use_ssl': False, 'verify_certs': True}


@pytest.mark.parametrize('hosts, expected', [
    ('a:1,b:2', 'a:1,b:2'), (['a:1', 'b:2'], 'a:1,b:2'),
    ({'a': 1, 'b': 2}, 'a:1,b:2'), (('a:1',), 'a:1')])
def test_make_client_hosts(fake_kazoo, hosts, expected):
    made, _ = fake_kazoo
    kazoo_utils.make_client({'hosts': hosts})
    assert made[0]['hosts'] == expected


def test_make_client_options(fake_kazoo):
    made, _ = fake_kazoo
    kazoo_utils.make_client({
        'timeout': '5', 'read_only': 'yes', 'randomize_hosts': 0,
        'command_retry': {'max_tries': 3}, 'connection_retry': {'delay': 1},
        'handler': 'H', 'ca': 'ca.pem', 'use_ssl': 1, 'verify_certs': 'false'})
    kwargs = made[0]
    assert kwargs['timeout'] == 5.0
    assert (kwargs['read_only'], kwargs['randomize_hosts']) == (True, False)
    assert (kwargs['use_ssl'], kwargs['verify_certs']) == (True, False)
    assert kwargs['command_retry'] == {'max_tries': 3}
    assert kwargs['connection_retry'] == {'delay': 1}
    assert (kwargs['handler'], kwargs['ca']) == ('H', 'ca.pem')


@pytest.mark.parametrize('hosts, shown', [(5, "'5' (<class 'int'>)"),
                                          ('', "'' (<class 'str'>)"),
                                          ([], "'' (<class 'str'>)")])
def test_make_client_bad_hosts(fake_kazoo, hosts, shown):
    with pytest.raises(TypeError) as info:
        kazoo_utils.make_client({'hosts': hosts})
    assert str(info.value) == ('Invalid hosts format, expected non-empty'
                               ' string/list, not ' + shown)


def test_make_client_without_kazoo(monkeypatch):
    monkeypatch.setitem(sys.modules, 'kazoo', None)
    with pytest.raises(ImportError) as info:
        kazoo_utils.make_client({})
    assert 'pip install kazoo' in str(info.value)


def test_finalize_client():
    calls = []
    client = types.SimpleNamespace(stop=lambda: calls.append('stop'),
                                   close=lambda: calls.append('close'))
    kazoo_utils.finalize_client(client)
    assert calls == ['stop', 'close']


def test_check_compatible():
    def client(*version):
        return types.SimpleNamespace(server_version=lambda: version)

    assert kazoo_utils.check_compatible(client(3, 4, 0), (3, 4)) is None
    assert kazoo_utils.check_compatible(client(3, 4, 9), (3, 4), (3, 5)) is None
    with pytest.raises(exc.IncompatibleVersion) as info:
        kazoo_utils.check_compatible(client(3, 3, 0), (3, 4))
    assert str(info.value) == ('Incompatible zookeeper version 3.3.0 detected,'
                               ' zookeeper >= 3.4 required')
    with pytest.raises(exc.IncompatibleVersion) as info:
        kazoo_utils.check_compatible(client(3, 5, 0), None, (3, 5))
    assert str(info.value) == ('Incompatible zookeeper version 3.5.0 detected,'
                               ' zookeeper <= 3.5 required')


def test_checked_commit(fake_kazoo):
    _, KazooException = fake_kazoo

    class Create:
        def __init__(self, path):
            self.path = path

    class NoNodeError(KazooException):
        pass

    class RolledBackError(KazooException):
        pass

    def txn(results):
        return types.SimpleNamespace(operations=[Create('/a'), Create('/b')],
                                     commit=lambda: results)

    assert kazoo_utils.checked_commit(txn([True, 'ok'])) == [True, 'ok']
    # The exception class is made on first use: checked_commit must not
    # depend on someone having looked it up before.
    with pytest.raises(KazooException) as info:
        kazoo_utils.checked_commit(txn([NoNodeError(), RolledBackError()]))
    assert type(info.value) is kazoo_utils.KazooTransactionException
    assert str(info.value) == ("Transaction with 2 operations failed:"
                               " NoNodeError@Create(path='/a') and 1 more...")
    assert [type(e).__name__ for _, e in info.value.failures] == [
        'NoNodeError', 'RolledBackError']


# -- redis_utils -----------------------------------------------------------------

class _FakeRedisServer:
    def __init__(self, version=None, ttl=None):
        self.version = version
        self.ttl = ttl
        self.expires = []

    def info(self):
        return {} if self.version is None else {'redis_version': self.version}

    def pttl(self, key):
        return self.ttl

    def pexpire(self, key, ms):
        self.expires.append((key, ms))
        return True


@pytest.mark.parametrize('version, expected', [
    ('2.6.0', (True, '2.6.0')), ('2.4', (False, '2.4')),
    ('7.0.1', (True, '7.0.1')), ('2.6', (False, '2.6'))])
def test_is_server_new_enough(version, expected):
    min_version = (2, 6, 0) if version == '2.6' else (2, 6)
    assert redis_utils.is_server_new_enough(
        _FakeRedisServer(version), min_version) == expected


def test_is_server_new_enough_edges():
    assert redis_utils.is_server_new_enough(
        _FakeRedisServer('1'), (2, 6), prior_version='3.0') == (True, '3.0')
    assert redis_utils.is_server_new_enough(
        _FakeRedisServer(), (2, 6), default='dflt') == ('dflt', '')
    with pytest.raises(ValueError):
        redis_utils.is_server_new_enough(_FakeRedisServer('garbage'), (2, 6))


def test_expiry_helpers():
    assert redis_utils.get_expiry(_FakeRedisServer(ttl=-1), 'k') is \
        redis_utils.DOES_NOT_EXPIRE
    assert redis_utils.get_expiry(_FakeRedisServer(ttl=-2), 'k') is \
        redis_utils.KEY_NOT_FOUND
    assert redis_utils.get_expiry(_FakeRedisServer(ttl=5000), 'k') == 5.0
    server = _FakeRedisServer()
    for expiry in (1.5, 0, -1, redis_utils.KEY_NOT_FOUND):
        assert redis_utils.apply_expiry(server, 'k', expiry) is True
    assert server.expires == [('k', 1500), ('k', 0), ('k', 0), ('k', 0)]


@pytest.fixture
def no_cached_redis_client():
    # The module caches the class it builds from redis: start and end clean.
    redis_utils.__dict__.pop('RedisClient', None)
    yield
    redis_utils.__dict__.pop('RedisClient', None)


def test_redis_client_is_built_lazily(monkeypatch, no_cached_redis_client):
    class ConnectionError(Exception):
        pass

    class Redis:
        def __init__(self, *args, **kwargs):
            self.args = args

        def close(self):
            pass

        def execute_command(self, *args, **options):
            return args

        def transaction(self, func, *watches, **kwargs):
            return 'txn'

        def pubsub(self, **kwargs):
            return 'pubsub'

    redis = types.ModuleType('redis')
    redis.Redis = Redis
    redis.exceptions = types.ModuleType('redis.exceptions')
    redis.exceptions.ConnectionError = ConnectionError
    monkeypatch.setitem(sys.modules, 'redis', redis)
    monkeypatch.setitem(sys.modules, 'redis.exceptions', redis.exceptions)
    client = redis_utils.RedisClient(host='h')
    assert type(client).__qualname__ == 'RedisClient'
    assert client.execute_command('GET', 'x') == ('GET', 'x')
    client.close()
    assert client.closed
    for call in (lambda: client.execute_command('GET'), client.pubsub,
                 lambda: client.transaction(None)):
        with pytest.raises(ConnectionError) as info:
            call()
        assert str(info.value) == 'Connection has been closed'


def test_redis_client_without_redis(monkeypatch, no_cached_redis_client):
    monkeypatch.setitem(sys.modules, 'redis', None)
    with pytest.raises(ImportError) as info:
        redis_utils.RedisClient
    assert 'pip install redis' in str(info.value)
    with pytest.raises(AttributeError):
        redis_utils.NoSuchThing


# -- banner / version ----------------------------------------------------------------

def test_make_banner():
    text = banner.make_banner('Worker', {
        'b': {'z': 1, 'a': 2}, 'a': ['q', 'p'], 'S': {'zz', 'b', 'aa'},
        'Empty': {}})
    assert text == '\n'.join([
        '___    __', ' |    |_', ' |ask |low v%s' % version.version_string(),
        '*Worker*', 'Empty:', 'S:', '  1. aa', '  2. b', '  3. zz',
        'a:', '  1. q', '  2. p', 'b:', '  a => 2', '  z => 1'])
    with pytest.raises(TypeError) as info:
        banner.make_banner('W', {'Third': 'plain'})
    assert str(info.value) == ('Unsupported chapter contents type: one of'
                               ' dict, list, tuple, set expected and not str')


def test_version():
    from importlib import metadata
    assert version.version_string() == metadata.version('taskflow-ng')
    assert version.version_string_with_package() == version.version_string()
    assert (version.TASK_VENDOR, version.TASK_PRODUCT, version.TASK_PACKAGE) == (
        'OpenStack Foundation', 'OpenStack TaskFlow', None)


def test_version_fallback(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version.metadata, 'version', missing)
    version.version_string.cache_clear()
    try:
        assert version.version_string() == '6.5.0'
    finally:
        version.version_string.cache_clear()
