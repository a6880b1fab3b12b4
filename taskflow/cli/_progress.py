"""A live view of a running flow: a progress bar on a terminal, lines elsewhere."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from taskflow import states as st
from taskflow.cli import _render
from taskflow.engines.action_engine import compiler
from taskflow.listeners import base

_DONE = (st.SUCCESS, st.IGNORE)


class ProgressListener(base.Listener):
    """Shows atoms done/total, the atom running now and the time elapsed.

    On a terminal this is a rich progress bar; otherwise (logs, pipes) one
    line per atom state change.
    """

    def __init__(self, engine: Any, console: Console) -> None:
        super().__init__(engine)
        self._console = console
        self._live = console.is_terminal
        self._states: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._current: str | None = None
        self._progress: Progress | None = None
        self._task_id: Any = None

    def register(self) -> None:
        engine = self._engine
        engine.compile()
        engine.prepare()
        storage = engine.storage
        graph = engine.compilation.execution_graph
        self._states = {atom.name: storage.get_atom_state(atom.name)
                        for atom, data in graph.nodes(data=True)
                        if data.get('kind') in (compiler.TASK, compiler.RETRY)}
        super().register()
        if self._live:
            self._progress = Progress(
                SpinnerColumn(), TextColumn('[bold]{task.description}'), BarColumn(),
                TextColumn('{task.completed:.0f}/{task.total:.0f} atoms'),
                TextColumn('{task.fields[current]}'), TimeElapsedColumn(),
                console=self._console, transient=False)
            self._task_id = self._progress.add_task(storage.flow_name,
                                                    total=max(len(self._states), 1),
                                                    completed=self._done(), current='')
            self._progress.start()

    def deregister(self) -> None:
        super().deregister()
        if self._progress is not None:
            self._progress.update(self._task_id, completed=self._done(), current='')
            self._progress.stop()
            self._progress = None

    def _done(self) -> int:
        return sum(1 for state in self._states.values() if state in _DONE)

    def _atom(self, name: str, state: str) -> None:
        self._states[name] = state
        now = time.monotonic()
        took = None
        if state in (st.RUNNING, st.REVERTING):
            self._started[name] = now
            self._current = '%s %s' % (name, state.lower())
        elif name in self._started and state in base.FINISH_STATES:
            took = now - self._started.pop(name)
        if self._progress is not None:
            self._progress.update(self._task_id, completed=self._done(),
                                  current=self._current or '')
            return
        line = Text.assemble('  ', (name.ljust(24), 'bold'), ' ', _render.state_text(state))
        if took is not None:
            line.append('  %s' % _render.seconds(took), style='dim')
        line.append('  [%d/%d]' % (self._done(), len(self._states)), style='dim')
        self._console.print(line)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom(details['task_name'], state)

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._atom(details['retry_name'], state)

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        if self._progress is None:
            self._console.print(Text.assemble('flow %s ' % details['flow_name'],
                                              _render.state_text(state)))
