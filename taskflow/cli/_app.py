"""The ``taskflow`` commands (click), rendering with rich.

Exit status: 0 done; 1 an error (one line on stderr: not found, refused,
bad input, unreachable backend); 2 a usage error; 3 the flow ran and did
not end as asked (``SUCCESS``; ``REVERTED`` for ``revert``); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from taskflow import exceptions as exc
from taskflow import operate
from taskflow.cli import _jobs
from taskflow.cli import _progress
from taskflow.cli import _render
from taskflow.cli import _signals
from taskflow.operate import _graph
from taskflow.operate import _store
from taskflow.engines.action_engine import _compile
from taskflow.listeners import _masking

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FLOW_FAILED = 3
DEBUG_ENV = 'TASKFLOW_DEBUG'


class _FlowDidNotSucceed(Exception):
    """The flow ran and ended in another state than SUCCESS (exit 3)."""


def make_console(stderr: bool = False) -> Console:
    """A console; when output is not a terminal (pipes, logs) lines are not cut at 80."""
    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal and not os.environ.get('COLUMNS'):
        console = Console(highlight=False, stderr=stderr, width=200)
    return console


def _console(ctx: click.Context) -> Console:
    state = ctx.ensure_object(dict)
    if 'console' not in state:
        state['console'] = make_console()
    return state['console']


def backend_option(func: Callable) -> Callable:
    return click.option('--backend', 'backend_url', metavar='URL', envvar=_store.BACKEND_ENV,
                        show_envvar=True,
                        help='Persistence backend: sqlite:///file.db, postgresql://...,'
                             ' mysql+pymysql://..., dir:///path, memory://'
                             ' (default: the main job\'s SQLite file, %s).'
                             % _store.main_job_database())(func)


def json_option(func: Callable) -> Callable:
    return click.option('--json', 'as_json', is_flag=True,
                        help='Print the data as JSON.')(func)


def mask_option(func: Callable) -> Callable:
    return click.option('--mask', 'mask_keys', multiple=True, metavar='KEY',
                        help='Also mask values under keys containing KEY (repeatable);'
                             ' %s are always masked.' % ', '.join(
                                 _masking.DEFAULT_SECRET_KEYS[:4]) + '...')(func)


def action_options(func: Callable) -> Callable:
    """Options every operator action takes."""
    for decorator in reversed((
            click.option('--why', metavar='TEXT', help='Reason, recorded with the action.'),
            click.option('--who', metavar='NAME', help='Operator name to record'
                         ' (default: user@host).'),
            click.option('--force', is_flag=True, help='Act on a flow stored as running when'
                         ' the backend cannot tell whether it is (its process is gone).'),
            click.option('--factory', metavar='MODULE:FACTORY', help='Build the flow with'
                         ' this factory instead of the one recorded with it.'),
            click.option('--engine', type=click.Choice(['serial', 'parallel']),
                         default='serial', show_default=True,
                         help='Engine that runs the flow.'),
            click.option('--yes', '-y', is_flag=True, help='Do not ask for confirmation.'),
    )):
        func = decorator(func)
    return func


def _open(backend_url: str | None, create: bool = False) -> tuple[Any, str]:
    url = backend_url or _store.default_backend_url()
    return _store.open_backend(url, create=create), _store.mask_url(url)


def _confirm(ctx: click.Context, yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError('%s: confirmation needed, pass --yes' % question)
    if not click.confirm(question, default=False):
        raise click.Abort()


def _progress_listeners(ctx: click.Context, as_json: bool) -> list:
    if as_json:
        return []
    console = _console(ctx)
    return [lambda engine: _progress.ProgressListener(engine, console)]


def _report_run(ctx: click.Context, uuid: str, name: str, state: str, error: str | None,
                as_json: bool, extra: dict | None = None, wanted: str = 'SUCCESS') -> None:
    console = _console(ctx)
    if as_json:
        _render.print_json(console, dict(extra or {}, uuid=uuid, name=name, state=state,
                                         error=error))
    else:
        console.print('flow %s (%s) is %s%s' % (name, uuid, state,
                                                 ': %s' % error if error else ''))
        console.print('look at it: taskflow show %s%s' % (uuid, _backend_hint(ctx)))
    if state != wanted:
        raise _FlowDidNotSucceed()


def _backend_hint(ctx: click.Context) -> str:
    url = ctx.params.get('backend_url')
    return ' --backend %s' % _store.mask_url(url) if url else ''


def _try_compile(flow_detail: Any) -> Any:
    """The compiled flow when it can be rebuilt quietly, else None (views still work)."""
    try:
        return _compile.Compilation(operate.rebuild_flow(flow_detail))
    except Exception:
        return None


@click.group(context_settings={'help_option_names': ['-h', '--help'],
                               'max_content_width': 100})
@click.version_option(package_name='taskflow-ng', prog_name='taskflow')
def cli() -> None:
    """Look at and steer persisted taskflow flows.

    Every command reads the backend given by --backend (or $TASKFLOW_BACKEND),
    by default the SQLite file the main job (scripts/main) writes. A FLOW is a
    flow uuid, a unique uuid prefix or a unique flow name.
    """


@cli.command()
@click.argument('factory', metavar='MODULE:FACTORY')
@click.option('--store', 'store', multiple=True, metavar='KEY=VALUE',
              help='Flow input (repeatable); VALUE is JSON when it parses, else a string.')
@click.option('--engine', type=click.Choice(['serial', 'parallel']), default='serial',
              show_default=True, help='Engine that runs the flow.')
@click.option('--book', metavar='NAME', help='Logbook name (default: the factory name).')
@backend_option
@json_option
@click.pass_context
def run(ctx: click.Context, factory: str, store: tuple[str, ...], engine: str,
        book: str | None, backend_url: str | None, as_json: bool) -> None:
    """Build a flow with MODULE:FACTORY, persist it and run it (with live progress).

    MODULE is a module name (found from the working directory) or a path to a
    .py file: orders.flows:make_flow, examples/main_job.py:make_flow.
    """
    values = operate.parse_store(store)
    backend, _url = _open(backend_url, create=True)
    console = _console(ctx)

    def announce(eng: Any) -> None:
        if not as_json:
            console.print('running flow %s (%s)' % (eng.storage.flow_name,
                                                    eng.storage.flow_uuid))

    uuid, state, error = operate.start(backend, factory, store=values, book=book,
                                       engine=engine, on_loaded=announce,
                                       listeners=_progress_listeners(ctx, as_json))
    ref = _store.find_flow(backend, uuid)
    _report_run(ctx, uuid, ref.flow.name, state, error, as_json)


@cli.command()
@backend_option
@json_option
@click.pass_context
def books(ctx: click.Context, backend_url: str | None, as_json: bool) -> None:
    """List logbooks with their flows' states."""
    backend, _url = _open(backend_url)
    summaries = [operate.describe_book(book) for book in operate.list_books(backend)]
    summaries.sort(key=lambda b: b['created_at'] or 0)
    if as_json:
        _render.print_json(_console(ctx), summaries)
    else:
        _console(ctx).print(_render.books_table(summaries))


@cli.command()
@click.option('--state', 'states', multiple=True, metavar='STATE',
              help='Only flows in this state (repeatable), e.g. FAILURE.')
@click.option('--book', metavar='BOOK', help='Only flows of this logbook (name or uuid).')
@click.option('--name', metavar='NAME', help='Only flows with this name.')
@backend_option
@json_option
@click.pass_context
def flows(ctx: click.Context, states: tuple[str, ...], book: str | None, name: str | None,
          backend_url: str | None, as_json: bool) -> None:
    """List flows with their states, times and atom counts."""
    backend, _url = _open(backend_url)
    wanted = {s.upper() for s in states}
    views = []
    for ref in operate.iter_flows(backend):
        if book and book not in (ref.book.name, ref.book.uuid):
            continue
        if name and ref.flow.name != name:
            continue
        view = operate.describe(ref.flow, ref.book, with_atoms=False)
        if wanted and view.state not in wanted:
            continue
        views.append(view)
    views.sort(key=lambda v: (v.started_at or 0, v.name))
    if as_json:
        _render.print_json(_console(ctx), [v.to_dict(atoms=False) for v in views])
    else:
        _console(ctx).print(_render.flows_table(views))


@cli.command()
@click.argument('flow')
@mask_option
@backend_option
@json_option
@click.pass_context
def show(ctx: click.Context, flow: str, mask_keys: tuple[str, ...],
         backend_url: str | None, as_json: bool) -> None:
    """Every atom of FLOW: state, intention, duration, result (masked), failures."""
    backend, url = _open(backend_url)
    ref = operate.find_flow(backend, flow)
    view = operate.describe(ref.flow, ref.book, mask_keys=_masking.SecretKeys(mask_keys),
                            compilation=_try_compile(ref.flow))
    if as_json:
        _render.print_json(_console(ctx), view.to_dict())
    else:
        _render.show_flow(_console(ctx), view, url)


@cli.command()
@click.argument('flow')
@click.option('--no-revert', is_flag=True, help='Resume without reverting: cancel pending'
              ' reverts, run failed atoms again, and stop (FAILURE) instead of reverting if'
              ' something fails.')
@action_options
@backend_option
@json_option
@click.pass_context
def resume(ctx: click.Context, flow: str, no_revert: bool, why: str | None,
           who: str | None, force: bool, factory: str | None, engine: str, yes: bool,
           backend_url: str | None, as_json: bool) -> None:
    """Resume FLOW (a crashed, suspended or failed run) and run it to its end."""
    backend, _url = _open(backend_url)
    ref = operate.find_flow(backend, flow)
    if no_revert:
        _confirm(ctx, yes, 'Resume flow %s (%s) without reverting?' % (ref.flow.name,
                                                                        ref.flow.uuid))
    result = operate.resume(backend, ref.flow.uuid, revert=not no_revert, who=who, why=why,
                            force=force, factory=factory, engine=engine,
                            listeners=_progress_listeners(ctx, as_json))
    _report_run(ctx, result.flow_uuid, result.flow_name, result.state, result.error, as_json,
                {'action': result.record})


def _act(ctx: click.Context, action: Callable, question: str, flow: str, no_run: bool,
         who: str | None, why: str | None, force: bool, factory: str | None, engine: str,
         yes: bool, backend_url: str | None, as_json: bool, **extra: Any) -> None:
    backend, _url = _open(backend_url)
    ref = operate.find_flow(backend, flow)
    _confirm(ctx, yes, question % {'flow': '%s (%s, %s)' % (ref.flow.name, ref.flow.uuid,
                                                            ref.flow.state)})
    result = action(backend, ref.flow.uuid, who=who, why=why, force=force, factory=factory,
                    run=not no_run, engine=engine,
                    listeners=_progress_listeners(ctx, as_json), **extra)
    console = _console(ctx)
    record = result.record
    if not result.ran:
        if as_json:
            _render.print_json(console, {'uuid': result.flow_uuid, 'name': result.flow_name,
                                         'state': result.state, 'action': record})
        else:
            changed = ', '.join('%s %s->%s' % (n, a, b) for n, (a, b) in
                                record['atoms'].items() if a != b) or 'no atom states'
            console.print('%s: flow %s (%s) is now %s (%s); run it with: taskflow resume %s%s'
                          % (record['action'], result.flow_name, result.flow_uuid,
                             result.state, changed, result.flow_uuid, _backend_hint(ctx)))
        return
    _report_run(ctx, result.flow_uuid, result.flow_name, result.state, result.error, as_json,
                {'action': record},
                wanted='REVERTED' if record['action'] == 'revert' else 'SUCCESS')


_NO_RUN = click.option('--no-run', is_flag=True,
                       help='Only record the change; resume the flow later.')


@cli.command()
@click.argument('flow')
@_NO_RUN
@action_options
@backend_option
@json_option
@click.pass_context
def retry(ctx: click.Context, /, **kwargs: Any) -> None:
    """Retry FLOW from its failed atom, without re-running what succeeded.

    For FAILURE, REVERTED and SUSPENDED flows: atoms that failed or were
    reverted (and the retry controllers in charge of them) run again; atoms
    that succeeded keep their results. Then the flow runs (unless --no-run).
    """
    _act(ctx, operate.retry, 'Retry flow %(flow)s from its failed atom?', **kwargs)


@cli.command()
@click.argument('flow')
@click.argument('atom')
@click.option('--result', 'result_json', metavar='JSON',
              help='Record the task as SUCCESS with this result (JSON; a bare word is a'
                   ' string). Without it the task is recorded IGNORE.')
@_NO_RUN
@action_options
@backend_option
@json_option
@click.pass_context
def skip(ctx: click.Context, /, atom: str, result_json: str | None, **kwargs: Any) -> None:
    """Skip task ATOM of FLOW (IGNORE, or SUCCESS with --result) and carry on."""
    extra: dict[str, Any] = {'atom': atom}
    if result_json is not None:
        try:
            extra['result'] = json.loads(result_json)
        except ValueError:
            extra['result'] = result_json
    _act(ctx, operate.skip, 'Skip %r in flow %%(flow)s and carry on?' % atom, **kwargs,
         **extra)


@cli.command()
@click.argument('flow')
@_NO_RUN
@action_options
@backend_option
@json_option
@click.pass_context
def revert(ctx: click.Context, /, **kwargs: Any) -> None:
    """Force a revert of a SUSPENDED (or halted FAILURE) flow: undo what it did."""
    _act(ctx, operate.revert, 'Revert flow %(flow)s, undoing everything it did?', **kwargs)


@cli.command()
@click.argument('target', metavar='FLOW|MODULE:FACTORY')
@click.option('--format', 'fmt', type=click.Choice(_graph.FORMATS), default='dot',
              show_default=True)
@click.option('--output', '-o', type=click.Path(dir_okay=False, writable=True),
              help='Write to this file instead of standard output.')
@click.option('--factory', metavar='MODULE:FACTORY', help='Build a stored flow with this'
              ' factory instead of the one recorded with it.')
@backend_option
@click.pass_context
def graph(ctx: click.Context, target: str, fmt: str, output: str | None,
          factory: str | None, backend_url: str | None) -> None:
    """The compiled graph of a flow; coloured by state when FLOW is a stored flow."""
    flow_obj, states = _graph_target(target, factory, backend_url)
    text = _graph.render(_graph.build(_compile.Compilation(flow_obj)), fmt, states)
    if output:
        with open(output, 'w', encoding='utf-8') as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)


def _graph_target(target: str, factory: str | None,
                  backend_url: str | None) -> tuple[Any, dict[str, str] | None]:
    if ':' in target and factory is None:
        try:
            made, _added = operate.import_factory(target)
        except operate.OperatorError:
            made = None
        if made is not None:
            try:
                return made(), None
            except Exception as error:
                raise operate.OperatorError('%s failed to build a flow: %s: %s'
                                            % (target, type(error).__name__, error)) from error
    backend, _url = _open(backend_url)
    ref = operate.find_flow(backend, target)
    from taskflow.operate import _apply
    flow_detail = _apply.effective(ref.flow)
    states = {ad.name: ad.state or 'PENDING' for ad in flow_detail}
    return operate.rebuild_flow(flow_detail, factory), states


@cli.command()
@click.option('--host', default='127.0.0.1', show_default=True,
              help='Address to listen on (other than loopback exposes your flows).')
@click.option('--port', default=8765, show_default=True, type=int)
@click.option('--allow-actions', is_flag=True,
              help='Show the operator controls (retry, skip, resume, revert); read-only'
                   ' otherwise.')
@mask_option
@backend_option
@click.pass_context
def web(ctx: click.Context, host: str, port: int, allow_actions: bool,
        mask_keys: tuple[str, ...], backend_url: str | None) -> None:
    """Serve the live web view of the backend's flows."""
    try:
        from taskflow.web import serve
    except ImportError as error:
        raise operate.OperatorError("the web view needs its extra: pip install"
                                    " 'taskflow-ng[web]' (%s)" % error) from error
    # Watching an empty database that flows will fill later is fine.
    backend, url = _open(backend_url, create=True)
    serve(backend, host=host, port=port, allow_actions=allow_actions,
          mask_keys=mask_keys, backend_label=url)


@cli.command()
@click.option('--url', 'url', required=True, envvar='TASKFLOW_WORKER_URL',
              help='Broker URL (kombu), e.g. amqp://guest:guest@127.0.0.1:5672//'
                   ' (also $TASKFLOW_WORKER_URL; never printed with its password).')
@click.option('--exchange', required=True, help='Exchange shared with the engines.')
@click.option('--topic', required=True, help='Topic the engines send this worker\'s tasks to.')
@click.option('--task', 'tasks', multiple=True, required=True, metavar='MODULE:CLASS',
              help='A task class this worker may run (repeatable); nothing else runs.')
@click.option('-v', '--verbose', is_flag=True, help='Log at DEBUG (INFO otherwise).')
def worker(url: str, exchange: str, topic: str, tasks: tuple[str, ...],
           verbose: bool) -> None:
    """Serve tasks to worker-based engines until interrupted (Ctrl-C or SIGTERM)."""
    import logging as std_logging
    try:
        from taskflow.engines.worker_based.worker import Worker
    except ImportError as error:
        raise operate.OperatorError("the worker needs its extra: pip install"
                                    " 'taskflow-ng[workers]' (%s)" % error) from error
    std_logging.basicConfig(level=std_logging.DEBUG if verbose else std_logging.INFO,
                            format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        served = Worker(exchange=exchange, topic=topic, tasks=list(tasks), url=url)
    except (ImportError, AttributeError) as error:
        raise operate.OperatorError('cannot load the tasks to serve: %s' % error) from error
    _signals.run_until_stopped(served.run, served.stop)


_jobs.register(cli, backend_option, json_option, _console)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every error is one line on stderr and an exit status."""
    err = make_console(stderr=True)
    try:
        cli.main(args=argv, prog_name='taskflow', standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as error:
        hint = ''
        if error.ctx is not None:
            hint = " (see '%s --help')" % error.ctx.command_path
        err.print('taskflow: error: %s%s' % (error.format_message(), hint), markup=False)
        return EXIT_USAGE
    except click.Abort:
        err.print('taskflow: aborted', markup=False)
        return EXIT_ERROR
    except _FlowDidNotSucceed:
        return EXIT_FLOW_FAILED
    except KeyboardInterrupt:
        err.print('taskflow: interrupted', markup=False)
        return 130
    except (operate.OperatorError, exc.TaskFlowException, OSError, ValueError) as error:
        _print_error(err, error)
        return EXIT_ERROR
    except Exception as error:  # a bug: still one line, the traceback on request
        _print_error(err, error, internal=True)
        return EXIT_ERROR
    return 0


def _print_error(err: Console, error: BaseException, internal: bool = False) -> None:
    if isinstance(error, operate.OperatorError):
        text = str(error)
    elif isinstance(error, exc.TaskFlowException):
        text = str(error.args[0]) if error.args else type(error).__name__
        cause = error.cause or error.__cause__
        if cause is not None:
            text += ': %s' % str(cause).strip().splitlines()[0] if str(cause).strip() else ''
    else:
        text = '%s: %s' % (type(error).__name__, error)
    text = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    prefix = 'taskflow: internal error: ' if internal else 'taskflow: error: '
    suffix = ' (set %s=1 for the traceback)' % DEBUG_ENV if internal else ''
    err.print(prefix + text + suffix, markup=False, soft_wrap=True)
    if os.environ.get(DEBUG_ENV):
        err.print(''.join(traceback.format_exception(error)), markup=False, soft_wrap=True)
