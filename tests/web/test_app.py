"""The web view over real HTTP (``taskflow web`` in a subprocess): pages, JSON, events,
read-only mode, form protection and masking."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from taskflow import operate
from tests.operate import flows
from tests.web import _server


def get(url, **headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def post(url, fields, **headers):
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=body, method='POST', headers=dict(
        {'Content-Type': 'application/x-www-form-urlencoded'}, **headers))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


@pytest.fixture
def reverted(tmp_path):
    """A REVERTED orders flow in a fresh SQLite file: ``(url, uuid, log)``."""
    url = 'sqlite:///%s' % (tmp_path / 'web.db')
    backend = operate.open_backend(url, create=True)
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    uuid, state, _error = operate.start(
        backend, 'tests.operate.flows:make_orders',
        store={'log': log, 'delay': 0, 'api_token': 's3cr3t', 'card': '4111-1111',
               'note': '<script>alert(1)</script>'})
    assert state == 'REVERTED'
    backend.close()
    return url, uuid, log


def test_read_only_by_default(reverted):
    url, uuid, _log = reverted
    with _server.web_server(url) as base:
        status, page = get(base + '/flows/' + uuid)
        assert status == 200
        assert 'read-only' in page and 'id="action-retry"' not in page
        status, _headers, body = post(base + '/flows/%s/actions/retry' % uuid, {'token': 'x'})
        assert status == 403 and 'read-only' in body
    assert operate.find_flow(operate.open_backend(url), uuid).flow.state == 'REVERTED'


def test_pages_json_events_and_masking(reverted):
    url, uuid, _log = reverted
    with _server.web_server(url, '--mask', 'card') as base:
        status, index = get(base + '/?state=REVERTED')
        assert status == 200 and '/flows/%s' % uuid in index
        _status, other = get(base + '/?state=SUCCESS')
        assert '/flows/%s' % uuid not in other and 'No flows match these filters' in other
        _status, listed = get(base + '/api/flows?state=REVERTED')
        assert [f['uuid'] for f in json.loads(listed)] == [uuid]
        _status, books = get(base + '/api/books')
        assert json.loads(books)[0]['states'] == {'REVERTED': 1}

        _status, data = get(base + '/api/flows/' + uuid)
        data = json.loads(data)
        assert data['store']['api_token'] == '***' and data['store']['card'] == '***'
        assert data['actions_enabled'] == []                   # read-only server
        _status, page = get(base + '/flows/' + uuid)
        for secret in ('s3cr3t', '4111-1111', '<script>alert(1)'):
            assert secret not in page
        assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
        assert 'RuntimeError: charge is broken' in page
        assert 'class="atom kind-task state-REVERTED" data-atom="charge"' in page

        _status, svg = get(base + '/flows/%s/graph.svg' % uuid)
        assert svg.startswith('<svg') and 'data-atom="ship"' in svg
        with urllib.request.urlopen(base + '/flows/%s/events' % uuid, timeout=10) as stream:
            assert stream.headers['content-type'].startswith('text/event-stream')
            lines = []
            while not any(line.startswith(b'data: ') for line in lines):
                lines.append(stream.readline())
        event = json.loads(next(l for l in lines if l.startswith(b'data: '))[6:])
        assert (event['uuid'], event['state']) == (uuid, 'REVERTED')

        with pytest.raises(urllib.error.HTTPError) as missing:
            get(base + '/flows/no-such-flow')
        assert missing.value.code == 404


def test_actions_need_the_form_token_and_the_same_origin(reverted):
    url, uuid, log = reverted
    with _server.web_server(url, '--allow-actions') as base:
        _status, page = get(base + '/flows/' + uuid)
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        action = base + '/flows/%s/actions/retry' % uuid
        assert post(action, {'token': 'stale'})[0] == 403
        assert post(action, {'token': token}, Origin='http://evil.example')[0] == 403
        assert operate.find_flow(operate.open_backend(url), uuid).flow.state == 'REVERTED'

        flows.break_task(log, 'charge', broken=False)
        status, headers, _body = post(action, {'token': token, 'why': 'from a test',
                                               'who': 'web-test'},
                                      Origin=base)
        assert status == 303
        assert 'notice=' in headers['location']
        deadline = time.monotonic() + 30
        while True:
            data = json.loads(get(base + '/api/flows/' + uuid)[1])
            if data['state'] == 'SUCCESS' and not data['busy']:
                break
            assert time.monotonic() < deadline, data['state']
            time.sleep(0.1)
        assert [(a['action'], a['who'], a['why']) for a in data['actions']] == [
            ('retry', 'web-test', 'from a test')]
        # A refused action comes back as an error on the page.
        status, headers, _body = post(action, {'token': token})
        assert status == 303 and 'error=' in headers['location']
        assert 'nothing+to+retry' in headers['location']
