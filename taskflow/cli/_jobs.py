"""``taskflow jobs`` and ``taskflow conductor``: a jobboard from the command line.

The board defaults to the SQL board in the backend's database (the main
job's SQLite file unless ``--backend``/``$TASKFLOW_BACKEND`` say otherwise),
so a deployment on the embedded default needs no other service.
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
from typing import Any

import click
from rich.table import Table

from taskflow import exceptions as exc
from taskflow import operate
from taskflow.cli import _render
from taskflow.cli import _signals
from taskflow.operate import _store

BOARD_ENV = 'TASKFLOW_BOARD'


def _board_url(board_url: str | None, backend_url: str | None) -> str:
    if board_url:
        return board_url
    backend = backend_url or _store.default_backend_url()
    if backend.startswith(('sqlite:', 'postgresql', 'mysql')):
        return backend
    raise operate.OperatorError('no --board given and the backend %s has no SQL database'
                                ' to hold one' % _store.mask_url(backend))


def _open_board(board_url: str, persistence: Any, namespace: str | None) -> Any:
    from taskflow.jobs import backends as job_backends
    conf: dict[str, Any] = {'board': board_url}
    if board_url.startswith(('sqlite:', 'postgresql', 'mysql')):
        conf = {'board': 'sql', 'connection': board_url}
    if namespace:
        conf['namespace' if not board_url.startswith(('zookeeper', 'etcd')) else 'path'] = \
            namespace
    board = job_backends.fetch('taskflow-cli', conf, persistence=persistence)
    try:
        board.connect()
    except exc.TaskFlowException:
        raise
    except Exception as error:
        raise exc.JobFailure('cannot connect to the jobboard %s' % _store.mask_url(board_url),
                             error) from error
    return board


def board_options(func: Any) -> Any:
    for decorator in reversed((
            click.option('--board', 'board_url', metavar='URL', envvar=BOARD_ENV,
                         show_envvar=True,
                         help='Jobboard: redis://..., zookeeper://..., etcd://...,'
                              ' sqlite:///..., postgresql://... (default: the SQL board'
                              ' in the backend\'s database).'),
            click.option('--namespace', metavar='NAME',
                         help='Board namespace (path on ZooKeeper/etcd).'),
    )):
        func = decorator(func)
    return func


def _job_row(board: Any, job: Any) -> dict[str, Any]:
    attempts = board.history(job) if callable(getattr(board, 'history', None)) else []
    return {
        'uuid': job.uuid, 'name': job.name, 'state': job.state,
        'owner': board.find_owner(job) if job.state == 'CLAIMED' else None,
        'priority': job.priority.value,
        'created_on': job.created_on.isoformat() if job.created_on else None,
        'book': job.book_uuid,
        'attempts': [{'who': a.who, 'outcome': a.outcome, 'reason': a.reason}
                     for a in attempts],
    }


def _jobs_table(rows: list[dict[str, Any]], trashed: bool) -> Table:
    table = Table(title='trashed jobs (dead-letter)' if trashed else 'jobs')
    for column in ('name', 'uuid', 'state', 'owner', 'priority', 'attempts', 'last'):
        table.add_column(column)
    for row in rows:
        last = row['attempts'][-1] if row['attempts'] else None
        table.add_row(row['name'], row['uuid'], 'TRASHED' if trashed else row['state'],
                      row['owner'] or '', row['priority'], str(len(row['attempts'])),
                      _render.short('%s%s' % (last['outcome'] or 'running',
                                              ': %s' % last['reason'] if last['reason']
                                              else '')) if last else '')
    return table


def register(cli: click.Group, backend_option: Any, json_option: Any,
             console_of: Any) -> None:
    """Add the jobboard commands to ``cli``."""

    @cli.command()
    @click.option('--trashed', is_flag=True, help='List the dead-letter (trashed jobs) with'
                  ' the history of their attempts.')
    @board_options
    @json_option
    @backend_option
    @click.pass_context
    def jobs(ctx: click.Context, trashed: bool, board_url: str | None,
             namespace: str | None, as_json: bool, backend_url: str | None) -> None:
        """List the jobs of a jobboard with their states, owners and attempts."""
        persistence = _store.open_backend(backend_url)
        board = _open_board(_board_url(board_url, backend_url), persistence, namespace)
        with contextlib.closing(board):
            listed = board.iter_trashed() if trashed else board.iterjobs(ensure_fresh=True)
            rows = [_job_row(board, job) for job in listed]
        console = console_of(ctx)
        if as_json:
            _render.print_json(console, rows)
        elif not rows:
            console.print('no %s on %s' % ('trashed jobs' if trashed else 'jobs',
                                           _store.mask_url(_board_url(board_url,
                                                                      backend_url))))
        else:
            console.print(_jobs_table(rows, trashed))

    @cli.command()
    @click.option('--name', metavar='NAME', help='Conductor name (default: host:pid).')
    @click.option('--kind', type=click.Choice(['blocking', 'nonblocking']),
                  default='blocking', show_default=True)
    @click.option('--engine', type=click.Choice(['serial', 'parallel']), default='serial',
                  show_default=True, help='Engine that runs each job\'s flow.')
    @click.option('--allow-module', 'allowed', multiple=True, metavar='MODULE',
                  help='Only run flows whose factory lives in these modules (repeatable).')
    @click.option('--claim-expiry', type=float, default=None, metavar='SECONDS',
                  help='Claim lease, renewed while a job runs (default 30).')
    @click.option('-v', '--verbose', is_flag=True, help='Log at DEBUG (INFO otherwise).')
    @board_options
    @backend_option
    def conductor(name: str | None, kind: str, engine: str, allowed: tuple[str, ...],
                  claim_expiry: float | None, verbose: bool, board_url: str | None,
                  namespace: str | None, backend_url: str | None) -> None:
        """Claim and run the board's jobs until interrupted (Ctrl-C or SIGTERM)."""
        from taskflow.conductors import backends as conductor_backends
        std_logging.basicConfig(level=std_logging.DEBUG if verbose else std_logging.INFO,
                                format='%(asctime)s %(levelname)s %(name)s: %(message)s')
        persistence = _store.open_backend(backend_url, create=True)
        board = _open_board(_board_url(board_url, backend_url), persistence, namespace)
        options: dict[str, Any] = {'engine': engine}
        if allowed:
            options['allowed_factory_modules'] = list(allowed)
        if claim_expiry is not None:
            options['claim_expiry'] = claim_expiry
        name = name or 'cli-%d' % os.getpid()
        running = conductor_backends.fetch(kind, name, board, persistence=persistence,
                                           **options)
        std_logging.getLogger('taskflow.cli').info(
            'Conductor %s runs the jobs of %s (Ctrl-C or SIGTERM stops it)', name,
            _store.mask_url(_board_url(board_url, backend_url)))

        def shut_down() -> None:
            running.stop()
            running.wait(60)
            board.close()
        _signals.run_until_stopped(running.run, shut_down)
