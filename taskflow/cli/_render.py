"""Rendering views for people (rich) and for programs (``--json``)."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from taskflow.operate import _views

#: Rich styles per state (flows and atoms).
STATE_STYLES = {
    'PENDING': 'dim', 'RUNNING': 'bold blue', 'SUCCESS': 'green', 'FAILURE': 'bold red',
    'REVERTING': 'yellow', 'REVERTED': 'yellow', 'REVERT_FAILURE': 'bold red reverse',
    'RETRYING': 'magenta', 'IGNORE': 'dim italic', 'SUSPENDED': 'cyan',
    'SUSPENDING': 'cyan', 'RESUMING': 'cyan',
}
_RESULT_WIDTH = 60


def state_text(state: str | None) -> Text:
    state = state or 'PENDING'
    return Text(state, style=STATE_STYLES.get(state, ''))


when = _views.format_when
seconds = _views.format_seconds


def short(value: Any, width: int = _RESULT_WIDTH) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = ' '.join(text.split())
    return text if len(text) <= width else text[:width - 1] + '…'


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=repr))


def books_table(books: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title='logbooks', title_justify='left')
    # On a narrow terminal the uuid (copied into other commands) and each
    # state count stay whole; names fold and timestamps break at the space.
    table.add_column('NAME', overflow='fold', min_width=8)
    table.add_column('UUID', no_wrap=True, min_width=36)
    table.add_column('FLOWS', no_wrap=True, min_width=5)
    table.add_column('STATES', min_width=11)
    table.add_column('CREATED (UTC)', min_width=10)
    table.add_column('UPDATED (UTC)', min_width=10)
    for book in books:
        states = Text(', ').join(Text.assemble(state_text(state), ' %d' % count)
                                 for state, count in sorted(book['states'].items()))
        table.add_row(escape(book['name']), book['uuid'], str(book['flows']), states,
                      when(book['created_at']), when(book['updated_at']))
    return table


def flows_table(views: list[_views.FlowView]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title='flows', title_justify='left')
    for column in ('UUID', 'NAME', 'STATE', 'BOOK', 'DONE', 'STARTED (UTC)', 'TOOK'):
        table.add_column(column, no_wrap=True)
    for view in views:
        failed = sum(view.counts.get(s, 0) for s in ('FAILURE', 'REVERT_FAILURE'))
        done = Text('%d/%d' % (view.done, view.total))
        if failed:
            done.append(' %d failed' % failed, style='red')
        table.add_row(view.uuid, escape(view.name), state_text(view.state),
                      escape(view.book_name or '-'), done, when(view.started_at),
                      seconds(view.duration))
    return table


def show_flow(console: Console, view: _views.FlowView, backend_url: str) -> None:
    """``taskflow show``: header, inputs, atoms, failures, operator actions."""
    header = Text.assemble(('flow ', 'bold'), (view.name, 'bold'), '  ', view.uuid, '  ',
                           state_text(view.state))
    console.print(header)
    console.print('  book %s (%s)   backend %s' % (escape(view.book_name or '-'),
                                                   view.book_uuid or '-', escape(backend_url)))
    console.print('  started %s   took %s   atoms %d/%d done%s'
                  % (when(view.started_at), seconds(view.duration), view.done, view.total,
                     '   now: %s' % escape(view.current) if view.current else ''))
    if view.factory:
        console.print('  factory %s' % escape(view.factory))
    if view.store:
        console.print('  inputs  ' + escape(', '.join('%s=%s' % (k, short(v, 40))
                                                     for k, v in view.store.items())))
    if view.interrupted_action:
        record = view.interrupted_action
        console.print(Text('  ! an operator action (%s by %s at %s) was interrupted; it is'
                           ' shown completed and is finished by the next action or resume'
                           % (record.get('action'), record.get('who'), record.get('when')),
                           style='yellow'))
    table = Table(box=box.SIMPLE_HEAD)
    for column in ('ATOM', 'KIND', 'STATE', 'INTENTION', 'TOOK', 'RESULT'):
        table.add_column(column, no_wrap=column != 'RESULT', overflow='fold')
    for atom in view.atoms:
        if atom.failure is not None:
            result = Text(short('%s: %s' % (atom.failure.type, atom.failure.message)),
                          style='red')
        elif atom.kind == 'retry' and atom.attempts:
            result = Text(short('attempt %s (%d so far)' % (atom.result, len(atom.attempts))))
        else:
            result = Text(short(atom.result) if atom.has_result else '-')
        table.add_row(escape(atom.name), atom.kind, state_text(atom.state),
                      Text(atom.intention, style='dim' if atom.intention == 'EXECUTE' else
                           'yellow'), seconds(atom.duration), result)
    console.print(table)
    for atom in view.atoms:
        for label, failure in (('failed', atom.failure), ('revert failed', atom.revert_failure)):
            if failure is None:
                continue
            console.print(Text.assemble(('%s %s: ' % (atom.name, label), 'bold red'),
                                        '%s: %s' % (failure.type, failure.message)))
            if failure.traceback:
                console.print(Text('Traceback (most recent call last):\n'
                                   + failure.traceback.rstrip('\n'), style='dim'))
    if view.actions:
        console.print(Text('operator actions', style='bold'))
        for record in view.actions:
            console.print('  %s  %-16s by %s%s%s' % (
                record.get('when', '?'), record.get('action', '?'), record.get('who', '?'),
                ' (%s)' % escape(str(record['why'])) if record.get('why') else '',
                '  [abandoned]' if record.get('abandoned') else ''))
