"""Describe a failed atom's surroundings for humans (used when logging failures).

:meth:`FailureFormatter.format` returns ``(exc_info, details_text)``.
``details_text`` holds, in order:

* the failure's ``pformat(traceback=True)`` and a line break, only when the
  failure has no ``exc_info`` (otherwise the logger prints the traceback);
* when the failed atom is still meant to execute (intention ``EXECUTE``), a
  ``'<N> predecessors (most recent first):'`` line and the tree of what ran
  before it, two spaces in, one node per line::

      2 predecessors (most recent first):
        Atom 'a' {'intention': 'EXECUTE', 'state': 'SUCCESS', 'requires': {}, 'provides': 1}
        |__Flow 'f'

  A flow appears as ``Flow '<name>'`` where it starts; an atom as
  ``Atom '<name>' {...}`` with its intention, state and, unless hidden, the
  arguments it was given (``requires``) and its result (``provides``).
  These last two are left out when storage can not produce them (e.g. an
  ignored atom).  Values under a masked key are shown as ``'***'``, at any
  depth of nested dicts, lists, tuples and sets (see
  :func:`taskflow.secrets.redact`).

Secrets: the masked keys are the formatter's own and the project-wide ones
(:mod:`taskflow.secrets`).  The values found under them, and the failed
atom's own inputs under ``mask_inputs_keys``, are remembered, and the whole
text is scrubbed of remembered values -- so a failure message quoting its
task's password shows ``'***'`` (the original only masks the tree, and only
in dicts and lists).

The tree repeats the same shape as the reference library, quirks included,
because users grep logs for it: where a subflow *ends*, that end and the
atoms right before it are not shown, only what precedes those (so an
unordered subflow of ``n`` atoms shows up as ``n`` copies of its start).
Shared history is therefore repeated for every path that reaches it; to keep
a failure from producing an enormous log record, at most
:attr:`FailureFormatter.MAX_TREE_LINES` lines are drawn (the count on the
first line stays exact).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container
from typing import Any

from taskflow import exceptions as exc
from taskflow import secrets
from taskflow import states
from taskflow.engines.action_engine import _compile
from taskflow.types import failure as failure_module

#: ``atom_matcher`` signature: gets an :class:`AtomNode`, returns truthy to pick it.
AtomMatcher = Callable[['AtomNode'], Any]

_INDENT = '  '


class AtomNode:
    """What an ``atom_matcher`` is called with: one atom of the compiled flow.

    ``item`` is the atom itself, as in the nodes the reference library
    passes, so matchers written for it (``node.item.name == 'x'``) work
    unchanged; ``name`` and ``kind`` (``'task'`` or ``'retry'``) are
    shortcuts.  Matchers are only shown atoms, in compile order (a flow's
    retry, then its children depth first).
    """

    __slots__ = ('item', 'kind')

    def __init__(self, item: Any, kind: str) -> None:
        self.item = item
        self.kind = kind

    @property
    def name(self) -> str:
        return str(self.item.name)

    @property
    def metadata(self) -> dict[str, str]:
        return {'kind': self.kind}

    def __repr__(self) -> str:
        return '<AtomNode %s %r>' % (self.kind, self.item)


class _Shown:
    """One line of the predecessor tree (a flow or an atom) and the lines below it.

    Nodes reached by several paths are shared, not copied; ``size`` counts
    the descendants per path, as they will be drawn.
    """

    __slots__ = ('is_flow', 'item', 'children', 'size')

    def __init__(self, is_flow: bool, item: Any) -> None:
        self.is_flow = is_flow
        self.item = item
        self.children: list[_Shown] = []
        self.size = 0


def _predecessor_tree(engine: Any, atom_matcher: AtomMatcher) -> tuple[Any, list[_Shown]] | None:
    """Find the matched atom and the tree of what precedes it.

    The only code that reads the engine's compiled graph (``_compile``):
    each flow has a start and an end *join* node, and node indices are a
    topological order.  The wrapper scope of a lone task (no ``flow``) is
    never shown.  Returns ``(atom, top level nodes)``, or ``None`` when the
    engine is not compiled or no atom matches.
    """
    compilation = getattr(engine, '_compilation', None)
    if compilation is None:
        return None
    target = None
    for node in compilation.nodes:   # compile order: a flow's retry before its children
        if node.atom is not None and atom_matcher(AtomNode(node.atom, node.kind)):
            target = node
            break
    if target is None:
        return None

    def shown_below(node: Any) -> list[Any]:
        # The graph nodes drawn right below ``node``: its predecessors, except
        # that a flow's end *and the nodes right before it* are passed through
        # (the reference's quirk), as is the wrapper scope of a lone task.
        found = []
        stack = [iter(node.preds)]
        while stack:
            pred = next(stack[-1], None)
            if pred is None:
                stack.pop()
            elif pred.kind == _compile.JOIN and pred is pred.scope.end:
                stack.extend(iter(p.preds) for p in reversed(pred.preds))
            elif pred.kind != _compile.JOIN or pred.scope.flow is not None:
                found.append(pred)
        return found

    entries: dict[int, _Shown] = {}
    unexpanded = []

    def entry(node: Any) -> _Shown:
        shown = entries.get(node.index)
        if shown is None:
            is_flow = node.kind == _compile.JOIN
            shown = entries[node.index] = _Shown(is_flow,
                                                 node.scope.flow if is_flow else node.atom)
            unexpanded.append(node)
        return shown

    top = [entry(node) for node in shown_below(target)]
    while unexpanded:
        node = unexpanded.pop()
        entries[node.index].children = [entry(pred) for pred in shown_below(node)]
    # Sizes bottom-up: predecessors always have smaller indices.
    for index in sorted(entries):
        item = entries[index]
        item.size = sum(1 + child.size for child in item.children)
    return target.atom, top


class FailureFormatter:
    """Formats a failure with the state of the atoms that ran before it.

    :param engine: the engine whose atoms are described.
    :param hide_inputs_outputs_of: names of atoms whose ``requires`` and
        ``provides`` are never shown.
    :param mask_inputs_keys: keys whose values are shown as ``'***'`` in
        the ``requires`` (at any depth, see :func:`taskflow.secrets.redact`).
    :param mask_outputs_keys: likewise for results.

    The three containers are kept as given and only tested with ``in``, as
    the reference does (so a string matches its substrings).
    """

    #: Lines of predecessor tree drawn at most (the count stays exact).
    MAX_TREE_LINES = 1000

    def __init__(self, engine: Any, hide_inputs_outputs_of: Container[str] = (),
                 mask_inputs_keys: Container[Any] = (),
                 mask_outputs_keys: Container[Any] = ()) -> None:
        self._engine = engine
        self._hide_inputs_outputs_of = hide_inputs_outputs_of
        self._mask_inputs_keys = mask_inputs_keys
        self._mask_outputs_keys = mask_outputs_keys

    def format(self, fail: failure_module.Failure,
               atom_matcher: AtomMatcher) -> tuple[tuple[Any, ...] | None, str]:
        """Return ``(exc_info, details_text)`` for ``fail``.

        ``atom_matcher`` picks the failed atom: it is called with an
        :class:`AtomNode` per atom of the engine's flow (compile order)
        until it returns truthy.  Without a match (or before the engine is
        compiled) no predecessor tree is added.
        """
        tree = ''
        found = _predecessor_tree(self._engine, atom_matcher)
        if found is not None:
            atom, top = found
            storage = self._engine.storage
            if self._mask_inputs_keys or secrets.is_active():
                # The failure's message may quote the failed atom's own
                # secret inputs: remember them before anything is shown.
                self._learn_inputs(storage, atom)
            if storage.get_atom_intention(atom.name) == states.EXECUTE:
                tree = self._format_tree(storage, top)
        text = tree
        if fail.exc_info is None:
            text = fail.pformat(traceback=True) + os.linesep + tree
        if secrets.is_active():
            text = secrets.scrub(text)
        return fail.exc_info, text

    def _fetch_inputs(self, storage: Any, atom: Any) -> Any:
        return storage.fetch_mapped_args(atom.rebind, atom_name=atom.name,
                                         optional_args=atom.optional)

    def _learn_inputs(self, storage: Any, atom: Any) -> None:
        if atom.name in self._hide_inputs_outputs_of:
            return
        try:
            inputs = self._fetch_inputs(storage, atom)
        except exc.NotFound:
            return
        secrets.learn(inputs, self._mask_inputs_keys)

    def _format_tree(self, storage: Any, top: list[_Shown]) -> str:
        labels: dict[int, str] = {}

        def label(item: _Shown) -> str:
            text = labels.get(id(item))
            if text is None:
                if item.is_flow:
                    text = "Flow '%s'" % item.item.name
                else:
                    text = self._format_atom(storage, item.item)
                labels[id(item)] = text
            return text

        count = sum(1 + item.size for item in top)
        out: list[str] = []
        limit = self.MAX_TREE_LINES
        # Same drawing as ``types.tree.Node.pformat`` for each top-level node.
        stack: list[tuple[_Shown, str | None, bool]] = [
            (item, None, True) for item in reversed(top)]
        while stack and len(out) < limit:
            item, prefix, is_last = stack.pop()
            if prefix is None:
                out.append(_INDENT + label(item))
                child_prefix = ''
            else:
                out.append(_INDENT + prefix + '|__' + label(item))
                child_prefix = prefix + ('   ' if is_last else '|  ')
            last = len(item.children) - 1
            stack.extend((child, child_prefix, i == last)
                         for i, child in reversed(list(enumerate(item.children))))
        if len(out) < count:
            out.append('%s... (%d more not shown)' % (_INDENT, count - len(out)))
        # Header and tree are joined even when the tree is empty (the
        # reference then ends the text with a line break).
        return ('%d predecessors (most recent first):' % count + os.linesep
                + os.linesep.join(out))

    def _format_atom(self, storage: Any, atom: Any) -> str:
        name = atom.name
        info: dict[str, Any] = {
            'intention': storage.get_atom_intention(name),
            'state': storage.get_atom_state(name),
        }
        if name not in self._hide_inputs_outputs_of:
            try:
                info['requires'] = secrets.redact(self._fetch_inputs(storage, atom),
                                                  self._mask_inputs_keys, plain=True)
                info['provides'] = secrets.redact(storage.get_execute_result(name),
                                                  self._mask_outputs_keys, plain=True)
            except exc.NotFound:
                pass  # e.g. an ignored atom: no inputs were fetched, no result exists
        return "Atom '%s' %s" % (name, info)

