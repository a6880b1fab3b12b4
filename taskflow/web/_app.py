"""The Starlette application behind ``taskflow web``.

Routes::

    GET  /                                 books and flows (filters: state, book, q)
    GET  /flows/{uuid}                     one flow: graph, atoms, failures, actions
    GET  /flows/{uuid}/events              server-sent events: the flow's JSON on change
    GET  /flows/{uuid}/graph.svg           the coloured graph alone
    POST /flows/{uuid}/actions/{action}    an operator action (only with allow_actions)
    GET  /api/books, /api/flows, /api/flows/{uuid}    the same data as JSON

Reads go to the backend on every request (and every ``poll_interval`` for
an open event stream): the page shows what any process stored, not what
this server did.  Actions run in this process: the change is stored under
the flow's lease, then the flow runs on a background thread.  Forms carry a
per-server token and cross-origin posts are refused, so another web site
cannot drive the controls through your browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, RedirectResponse, Response,
                                 StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from taskflow import operate
from taskflow import states as st
from taskflow.engines.action_engine import _compile
from taskflow.listeners import _masking
from taskflow.operate import _apply
from taskflow.operate import _graph
from taskflow.operate import _lease
from taskflow.operate import _plans
from taskflow.operate import _store
from taskflow.operate import _views

_HERE = __file__.rsplit('/', 1)[0]
#: Action buttons, in page order: (action, label, what the confirmation says).
ACTIONS = (
    ('retry', 'Retry from failed atom',
     'Run again what failed or was reverted; what succeeded is kept.'),
    ('skip', 'Skip an atom',
     'Record one task as skipped (IGNORE, or SUCCESS with a result) and carry on.'),
    ('resume', 'Resume', 'Run the flow on from where it stopped.'),
    ('resume_no_revert', 'Resume without reverting',
     'Cancel pending reverts and go forward; a new failure stops the flow instead of'
     ' reverting it.'),
    ('revert', 'Revert', 'Undo, newest first, everything the flow did.'),
)
_ACTION_NAMES = frozenset(name for name, _label, _text in ACTIONS)


class _State:
    """What the app needs: backend, options, compiled flows, running actions."""

    def __init__(self, backend: Any, allow_actions: bool, mask_keys: Iterable[str],
                 backend_label: str, poll_interval: float, who: str | None) -> None:
        self.backend = backend
        self.allow_actions = allow_actions
        self.keys = _masking.SecretKeys(mask_keys)
        self.backend_label = _masking.mask_url(backend_label)
        self.poll_interval = poll_interval
        self.who = who or _lease.default_operator()
        self.token = secrets.token_urlsafe(24)
        self._compiled: dict[str, Any] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def compilation(self, flow_detail: Any) -> Any:
        """The compiled flow (cached by uuid), or None when it cannot be rebuilt."""
        uuid = flow_detail.uuid
        if uuid not in self._compiled:
            try:
                self._compiled[uuid] = _compile.Compilation(operate.rebuild_flow(flow_detail))
            except Exception:
                self._compiled[uuid] = None
        return self._compiled[uuid]

    def is_running_here(self, uuid: str) -> bool:
        with self._lock:
            return uuid in self._running

    def run_in_background(self, uuid: str, never_resolve: bool) -> None:
        with self._lock:
            if uuid in self._running:
                raise operate.FlowBusy('flow %s is already being run by this server' % uuid)
            self._running.add(uuid)

        def run() -> None:
            try:
                operate.run_flow(self.backend, uuid, never_resolve=never_resolve,
                                 owner=_lease.owner_name(self.who))
            except Exception:  # shown on the page through the stored state
                pass
            finally:
                with self._lock:
                    self._running.discard(uuid)

        threading.Thread(target=run, name='taskflow-web-run-%s' % uuid[:8],
                         daemon=True).start()


def _enabled_actions(state: _State, flow_detail: Any, busy: bool) -> list[str]:
    if not state.allow_actions or busy:
        return []
    enabled = []
    effective = _plans.effective_state(flow_detail)
    for action in _ACTION_NAMES:
        if effective in _plans.ACCEPTS[action]:
            enabled.append(action)
    return sorted(enabled)


def _flow_payload(state: _State, ref: _store.FlowRef) -> dict[str, Any]:
    """Everything the flow page shows, as JSON (also what the event stream sends)."""
    compilation = state.compilation(ref.flow)
    view = operate.describe(ref.flow, ref.book, mask_keys=state.keys, compilation=compilation)
    busy = state.is_running_here(ref.flow.uuid) or _lease.may_be_running(state.backend,
                                                                          ref.flow)
    data = json.loads(json.dumps(view.to_dict(), default=repr))
    data['busy'] = busy
    data['actions_enabled'] = _enabled_actions(state, _apply.effective(ref.flow), busy)
    data['skippable'] = [atom.name for atom in view.atoms
                         if atom.kind == 'task' and atom.state not in (st.SUCCESS, st.IGNORE)]
    return data


def _summaries(state: _State, request: Request) -> tuple[list[dict], list[dict], dict]:
    wanted_state = request.query_params.get('state') or ''
    wanted_book = request.query_params.get('book') or ''
    query = (request.query_params.get('q') or '').strip().lower()
    books = [operate.describe_book(book) for book in operate.list_books(state.backend)]
    books.sort(key=lambda b: b['created_at'] or 0)
    flows = []
    for ref in operate.iter_flows(state.backend):
        if wanted_book and wanted_book not in (ref.book.uuid, ref.book.name):
            continue
        view = operate.describe(ref.flow, ref.book, with_atoms=False)
        if wanted_state and view.state != wanted_state:
            continue
        if query and query not in view.name.lower() and query not in view.uuid:
            continue
        flows.append(json.loads(json.dumps(view.to_dict(atoms=False), default=repr)))
    flows.sort(key=lambda f: (f['started_at'] or 0, f['name']), reverse=True)
    filters = {'state': wanted_state, 'book': wanted_book, 'q': query}
    return books, flows, filters


def create_app(backend: Any, *, allow_actions: bool = False, mask_keys: Iterable[str] = (),
               backend_label: str = '', poll_interval: float = 0.5,
               who: str | None = None) -> Starlette:
    """The web view's ASGI app for ``backend``.

    :param allow_actions: show and accept the operator controls (read-only
        otherwise).
    :param mask_keys: extra keys to mask (the defaults are always masked).
    :param backend_label: how to name the backend on the pages (its URL; a
        password in it is never shown).
    :param poll_interval: seconds between reads of an open flow page's flow.
    :param who: recorded as the operator of actions (default ``user@host``).
    """
    state = _State(backend, allow_actions, mask_keys, backend_label, poll_interval, who)
    templates = jinja2.Environment(loader=jinja2.PackageLoader('taskflow.web', 'templates'),
                                   autoescape=True)
    templates.filters['when'] = _views.format_when
    templates.filters['seconds'] = _views.format_seconds
    templates.filters['short'] = _short

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.update(backend_label=state.backend_label, allow_actions=state.allow_actions,
                       states=sorted(_graph.STATE_COLOURS) + ['SUSPENDED'])
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    async def index(request: Request) -> Response:
        books, flows, filters = await run_in_threadpool(_summaries, state, request)
        return page('index.html', books=books, flows=flows, filters=filters)

    async def api_flows(request: Request) -> Response:
        _books, flows, _filters = await run_in_threadpool(_summaries, state, request)
        return JSONResponse(flows)

    async def api_books(request: Request) -> Response:
        books, _flows, _filters = await run_in_threadpool(_summaries, state, request)
        return JSONResponse(books)

    def find(uuid: str) -> _store.FlowRef:
        return operate.find_flow(state.backend, uuid)

    async def flow_page(request: Request) -> Response:
        uuid = request.path_params['uuid']
        try:
            ref = await run_in_threadpool(find, uuid)
        except operate.OperatorError as error:
            return page('missing.html', status=404, message=str(error))
        data = await run_in_threadpool(_flow_payload, state, ref)
        svg = await run_in_threadpool(_graph_svg, state, ref, True)
        return page('flow.html', flow=data, graph_svg=svg, actions=ACTIONS,
                    token=state.token, who=state.who,
                    notice=request.query_params.get('notice'),
                    error=request.query_params.get('error'),
                    payload=json.dumps(data).replace('<', '\\u003c'))

    async def api_flow(request: Request) -> Response:
        try:
            ref = await run_in_threadpool(find, request.path_params['uuid'])
        except operate.OperatorError as error:
            return JSONResponse({'error': str(error)}, status_code=404)
        return JSONResponse(await run_in_threadpool(_flow_payload, state, ref))

    async def graph_svg(request: Request) -> Response:
        try:
            ref = await run_in_threadpool(find, request.path_params['uuid'])
        except operate.OperatorError as error:
            return Response(str(error), status_code=404)
        svg = await run_in_threadpool(_graph_svg, state, ref, True)
        if svg is None:
            return Response('the flow cannot be rebuilt here (its factory is not importable)',
                            status_code=404)
        return Response(svg, media_type='image/svg+xml')

    async def events(request: Request) -> Response:
        uuid = request.path_params['uuid']

        async def stream() -> AsyncIterator[str]:
            last = None
            yield 'retry: 1000\n\n'
            while not await request.is_disconnected():
                try:
                    ref = await run_in_threadpool(find, uuid)
                    text = json.dumps(await run_in_threadpool(_flow_payload, state, ref))
                except Exception as error:  # the backend hiccuped: say so, keep trying
                    text = json.dumps({'error': str(error).splitlines()[0]})
                if text != last:
                    last = text
                    yield 'data: %s\n\n' % text
                await asyncio.sleep(state.poll_interval)

        return StreamingResponse(stream(), media_type='text/event-stream',
                                 headers={'Cache-Control': 'no-cache'})

    async def act(request: Request) -> Response:
        uuid, action = request.path_params['uuid'], request.path_params['action']
        if not state.allow_actions:
            return PlainForbidden('this web view is read-only (start it with'
                                  ' --allow-actions to use the operator controls)')
        form = _parse_form(await request.body())
        if not secrets.compare_digest(str(form.get('token', '')), state.token):
            return PlainForbidden('missing or stale form token: reload the page')
        origin = request.headers.get('origin')
        if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get('host'):
            return PlainForbidden('cross-origin request refused')
        if action not in _ACTION_NAMES:
            return Response('unknown action %r' % action, status_code=404)
        why = str(form.get('why') or '').strip() or None
        who = str(form.get('who') or '').strip() or state.who
        try:
            notice = await run_in_threadpool(_perform, state, uuid, action, who, why, form)
        except operate.OperatorError as error:
            return _back(uuid, error=str(error))
        return _back(uuid, notice=notice)

    routes = [
        Route('/', index),
        Route('/favicon.ico', lambda request: Response(status_code=204)),
        Route('/api/books', api_books),
        Route('/api/flows', api_flows),
        Route('/api/flows/{uuid}', api_flow),
        Route('/flows/{uuid}', flow_page),
        Route('/flows/{uuid}/events', events),
        Route('/flows/{uuid}/graph.svg', graph_svg),
        Route('/flows/{uuid}/actions/{action}', act, methods=['POST']),
        Mount('/static', app=StaticFiles(directory=_HERE + '/static'), name='static'),
    ]
    return Starlette(routes=routes)


def _parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded form (the only kind the pages post): last value of each field."""
    fields = urllib.parse.parse_qsl(body.decode('utf-8', 'replace'), keep_blank_values=True)
    return dict(fields)


def PlainForbidden(message: str) -> Response:  # noqa: N802 - reads like a response class
    return Response(message, status_code=403, media_type='text/plain')


def _back(uuid: str, **params: str) -> RedirectResponse:
    return RedirectResponse('/flows/%s?%s' % (uuid, urllib.parse.urlencode(params)),
                            status_code=303)


def _perform(state: _State, uuid: str, action: str, who: str, why: str | None,
             form: Any) -> str:
    """Store the action (synchronously), then run the flow in the background."""
    backend = state.backend
    if state.is_running_here(uuid):
        raise operate.FlowBusy('flow %s is being run by this server right now' % uuid)
    never_resolve = False
    if action == 'retry':
        operate.retry(backend, uuid, who=who, why=why)
    elif action == 'skip':
        atom = str(form.get('atom') or '')
        text = str(form.get('result') or '').strip()
        if text:
            try:
                result = json.loads(text)
            except ValueError:
                result = text
            operate.skip(backend, uuid, atom, result, who=who, why=why)
        else:
            operate.skip(backend, uuid, atom, who=who, why=why)
    elif action == 'revert':
        operate.revert(backend, uuid, who=who, why=why)
    else:
        never_resolve = action == 'resume_no_revert'
        operate.resume(backend, uuid, revert=not never_resolve, who=who, why=why, run=False)
    state.run_in_background(uuid, never_resolve)
    return '%s recorded; the flow is running' % dict(
        (name, label) for name, label, _text in ACTIONS)[action]


def _graph_svg(state: _State, ref: _store.FlowRef, standalone: bool) -> str | None:
    compilation = state.compilation(ref.flow)
    if compilation is None:
        return None
    states = {ad.name: ad.state or st.PENDING for ad in _apply.effective(ref.flow)}
    return _graph.to_svg(_graph.build(compilation), states, standalone=standalone)


def _short(value: Any, width: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= width else text[:width - 1] + '…'


def serve(backend: Any, host: str = '127.0.0.1', port: int = 8765, **options: Any) -> None:
    """Run the app with uvicorn (blocks until interrupted)."""
    import uvicorn
    app = create_app(backend, **options)
    if host not in ('127.0.0.1', 'localhost', '::1'):
        print('taskflow web: listening on %s: anyone who can reach it sees your flows%s'
              % (host, ' and can act on them' if options.get('allow_actions') else ''),
              flush=True)
    print('taskflow web: http://%s:%d/ (%s)%s' % (
        host if ':' not in host else '[%s]' % host, port,
        _masking.mask_url(options.get('backend_label') or ''),
        '' if options.get('allow_actions') else ' read-only'), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level='warning')
