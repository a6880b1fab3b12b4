"""The etcd board's HTTP transport against the real etcd gateway: short and
chunked answers, error statuses, connections reused and re-opened."""

from __future__ import annotations

import base64
import socket
import threading
import uuid

import pytest

from taskflow.jobs.backends import _etcd_http
from tests import _services


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def transport():
    host, port = _services.require_endpoint('etcd')
    transport = _etcd_http.Transport(host, port, '/v3/', timeout=10)
    prefix = '/tf-test-transport-%s/' % uuid.uuid4().hex[:8]
    yield transport, prefix
    end = bytearray(prefix.encode())
    end[-1] += 1
    transport.post('kv/deleterange', {'key': b64(prefix),
                                      'range_end': base64.b64encode(
                                          bytes(end)).decode()})
    transport.close()


def test_short_and_chunked_answers_on_one_connection(transport):
    transport, prefix = transport
    values = {'%sk%03d' % (prefix, i): 'v%d-' % i + 'x' * 1000
              for i in range(200)}
    for key, value in values.items():
        transport.post('kv/put', {'key': b64(key), 'value': b64(value)})
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    # ~300 kB: etcd sends it chunked; the puts' answers had a length.
    answer = transport.post('kv/range', {'key': b64(prefix),
                                         'range_end': b64(end)})
    got = {base64.b64decode(kv['key']).decode():
           base64.b64decode(kv['value']).decode() for kv in answer['kvs']}
    assert got == values
    assert len(transport._idle) == 1  # every request reused one connection


def test_an_error_status_raises_with_etcds_message(transport):
    transport, prefix = transport
    with pytest.raises(_etcd_http.EtcdRequestError,
                       match='lease not found'):
        transport.post('kv/put', {'key': b64(prefix + 'x'),
                                  'value': b64('v'), 'lease': 12345})
    # The connection stays usable after an error status.
    transport.post('kv/put', {'key': b64(prefix + 'x'), 'value': b64('v')})


def test_concurrent_requests_use_their_own_connections(transport):
    transport, prefix = transport
    errors = []

    def work(n):
        try:
            for i in range(20):
                key = '%s%d-%d' % (prefix, n, i)
                transport.post('kv/put', {'key': b64(key), 'value': b64(key)})
                kvs = transport.post('kv/range', {'key': b64(key)})['kvs']
                assert base64.b64decode(kvs[0]['value']).decode() == key
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 1 <= len(transport._idle) <= 4


def test_a_connection_closed_while_idle_is_replaced(transport):
    transport, prefix = transport
    transport.post('kv/put', {'key': b64(prefix + 'x'), 'value': b64('1')})
    [conn] = transport._idle
    conn.sock.shutdown(socket.SHUT_RDWR)  # as if etcd had closed it
    answer = transport.post('kv/range', {'key': b64(prefix + 'x')})
    assert base64.b64decode(answer['kvs'][0]['value']) == b'1'
    assert transport._idle and transport._idle[0] is not conn


def test_nothing_listening_is_a_request_error():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    transport = _etcd_http.Transport('127.0.0.1', port, '/v3/', timeout=2)
    with pytest.raises(_etcd_http.EtcdRequestError):
        transport.post('kv/range', {'key': b64('x')})
