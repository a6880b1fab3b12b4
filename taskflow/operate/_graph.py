"""The compiled flow as a picture: Graphviz dot, Mermaid or a standalone SVG.

The engine's execution graph (``_compile.Compilation``) has a *start* and an
*end* join node per flow; here joins are dissolved into direct atom-to-atom
edges and flows become nested clusters.  Atoms are coloured by state when
states are given (a flow detail's).

The SVG is laid out here (no Graphviz needed): columns by longest path from
the flow's first atoms (left to right), atoms in flow order within a
column.  Each atom is a ``<g class="atom state-STATE" data-atom="NAME">`` so
the web view can recolour it live.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import NamedTuple

from taskflow.engines.action_engine import _compile

#: Fill colours per atom state (also used by the web view's stylesheet).
STATE_COLOURS = {
    'PENDING': '#d8dee4', 'RUNNING': '#54aeff', 'SUCCESS': '#4ac26b',
    'FAILURE': '#ff8182', 'REVERTING': '#fb8f44', 'REVERTED': '#d4a72c',
    'REVERT_FAILURE': '#a40e26', 'RETRYING': '#a475f9', 'IGNORE': '#f6f8fa',
}
FORMATS = ('dot', 'mermaid', 'svg')


class Cluster(NamedTuple):
    """A flow of the tree: its name, depth and the atoms directly inside it."""

    key: int
    name: str
    parent: int | None
    atoms: tuple[str, ...]


class Graph(NamedTuple):
    """Atoms (in flow order), atom-to-atom edges, and flows as clusters."""

    name: str
    atoms: tuple[tuple[str, str], ...]        # (name, kind)
    edges: tuple[tuple[str, str], ...]
    clusters: tuple[Cluster, ...]


def build(compilation: _compile.Compilation) -> Graph:
    """The graph of a compiled flow, joins dissolved."""
    atoms = tuple((node.name, node.kind) for node in compilation.nodes
                  if node.kind != _compile.JOIN)
    edges: list[tuple[str, str]] = []
    for node in compilation.nodes:
        if node.kind == _compile.JOIN:
            continue
        seen = set()
        stack = list(node.succs)
        found = []
        while stack:
            succ = stack.pop()
            if succ.index in seen:
                continue
            seen.add(succ.index)
            if succ.kind == _compile.JOIN:
                stack.extend(succ.succs)
            else:
                found.append(succ)
        found.sort(key=lambda n: n.index)
        edges.extend((node.name, succ.name) for succ in found)
    scopes = [scope for scope in compilation.hierarchy if scope.flow is not None]
    keys = {id(scope): i for i, scope in enumerate(scopes)}
    members: dict[int, list[str]] = {i: [] for i in range(len(scopes))}
    for node in compilation.nodes:
        if node.kind != _compile.JOIN and id(node.scope) in keys:
            members[keys[id(node.scope)]].append(node.name)
    clusters = tuple(Cluster(keys[id(scope)], scope.flow.name,
                             keys.get(id(scope.parent)) if scope.parent else None,
                             tuple(members[keys[id(scope)]])) for scope in scopes)
    root = compilation.root
    return Graph(getattr(root, 'name', 'flow'), atoms, tuple(edges), clusters)


def render(graph: Graph, fmt: str, states: Mapping[str, str] | None = None) -> str:
    """The graph in ``fmt`` (``dot``, ``mermaid`` or ``svg``)."""
    renderers = {'dot': to_dot, 'mermaid': to_mermaid, 'svg': to_svg}
    if fmt not in renderers:
        raise ValueError('unknown graph format %r (expected one of %s)'
                         % (fmt, ', '.join(FORMATS)))
    return renderers[fmt](graph, states)


def _children(graph: Graph) -> dict[int | None, list[Cluster]]:
    kids: dict[int | None, list[Cluster]] = {}
    for cluster in graph.clusters:
        kids.setdefault(cluster.parent, []).append(cluster)
    return kids


def _dot_quote(text: str) -> str:
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


def to_dot(graph: Graph, states: Mapping[str, str] | None = None) -> str:
    """Graphviz ``dot`` text (clusters per flow, fill colour per state)."""
    states = states or {}
    kinds = dict(graph.atoms)
    lines = ['digraph %s {' % _dot_quote(graph.name), '  rankdir=LR;',
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff",'
             ' fontname="Helvetica"];']
    kids = _children(graph)

    def atom_line(name: str, indent: str) -> str:
        state = states.get(name)
        label = name if state is None else '%s\\n%s' % (name, state)
        attrs = ['label=%s' % _dot_quote(label)]
        if kinds.get(name) == 'retry':
            attrs.append('shape=hexagon')
        if state is not None:
            attrs.append('fillcolor=%s' % _dot_quote(STATE_COLOURS.get(state, '#ffffff')))
        return '%s%s [%s];' % (indent, _dot_quote(name), ', '.join(attrs))

    def cluster_lines(cluster: Cluster, depth: int) -> None:
        indent = '  ' * depth
        lines.append('%ssubgraph cluster_%d {' % (indent, cluster.key))
        lines.append('%s  label=%s;' % (indent, _dot_quote(cluster.name)))
        for child in kids.get(cluster.key, []):
            cluster_lines(child, depth + 1)
        for name in cluster.atoms:
            lines.append(atom_line(name, indent + '  '))
        lines.append('%s}' % indent)

    for top in kids.get(None, []):
        cluster_lines(top, 1)
    clustered = {name for cluster in graph.clusters for name in cluster.atoms}
    for name, _kind in graph.atoms:
        if name not in clustered:
            lines.append(atom_line(name, '  '))
    for source, target in graph.edges:
        lines.append('  %s -> %s;' % (_dot_quote(source), _dot_quote(target)))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def to_mermaid(graph: Graph, states: Mapping[str, str] | None = None) -> str:
    """A Mermaid ``flowchart LR`` (subgraphs per flow, a class per state)."""
    states = states or {}
    ids = {name: 'a%d' % i for i, (name, _kind) in enumerate(graph.atoms)}
    kinds = dict(graph.atoms)
    lines = ['flowchart LR']
    kids = _children(graph)

    def label(name: str) -> str:
        text = html.escape(name, quote=True)
        state = states.get(name)
        if state is not None:
            text += '<br/>' + state
        return ('%s{{"%s"}}' if kinds.get(name) == 'retry' else '%s["%s"]') % (ids[name], text)

    def cluster_lines(cluster: Cluster, depth: int) -> None:
        indent = '    ' * depth
        lines.append('%ssubgraph f%d ["%s"]' % (indent, cluster.key,
                                                html.escape(cluster.name, quote=True)))
        for child in kids.get(cluster.key, []):
            cluster_lines(child, depth + 1)
        for name in cluster.atoms:
            lines.append(indent + '    ' + label(name))
        lines.append(indent + 'end')

    for top in kids.get(None, []):
        cluster_lines(top, 1)
    clustered = {name for cluster in graph.clusters for name in cluster.atoms}
    for name, _kind in graph.atoms:
        if name not in clustered:
            lines.append('    ' + label(name))
    for source, target in graph.edges:
        lines.append('    %s --> %s' % (ids[source], ids[target]))
    used = sorted({states[name] for name, _ in graph.atoms if states.get(name)})
    for state in used:
        lines.append('    classDef %s fill:%s,stroke:#57606a' % (state.lower(),
                                                               STATE_COLOURS.get(state, '#fff')))
    for name, _kind in graph.atoms:
        if states.get(name):
            lines.append('    class %s %s' % (ids[name], states[name].lower()))
    return '\n'.join(lines) + '\n'


# -- SVG ----------------------------------------------------------------------

_CHAR_W = 7.2      # average glyph width at 12px sans-serif
_BOX_H = 38
_ROW_GAP = 18
_COL_GAP = 56
_PAD = 16
_LABEL_H = 14     # room for a flow's name above its atoms


def _columns(graph: Graph) -> dict[str, int]:
    """Longest-path column of each atom (atoms come in a topological order)."""
    preds: dict[str, list[str]] = {name: [] for name, _ in graph.atoms}
    for source, target in graph.edges:
        preds[target].append(source)
    column: dict[str, int] = {}
    for name, _kind in graph.atoms:
        column[name] = 1 + max((column[p] for p in preds[name] if p in column), default=-1)
    return column


def _nesting(graph: Graph) -> int:
    depth: dict[int, int] = {}
    for cluster in graph.clusters:
        depth[cluster.key] = 0 if cluster.parent is None else depth[cluster.parent] + 1
    return 1 + max(depth.values(), default=-1)


def layout(graph: Graph) -> tuple[dict[str, tuple[float, float, float]], float, float]:
    """``({atom: (x, y, width)}, total width, total height)`` of the SVG layout."""
    levels = _nesting(graph)
    margin_x = _PAD + 8 * levels
    margin_top = _PAD + (_LABEL_H + 8) * levels
    column = _columns(graph)
    by_column: dict[int, list[str]] = {}
    for name, _kind in graph.atoms:
        by_column.setdefault(column[name], []).append(name)
    widths = {name: max(96.0, _CHAR_W * max(len(name), 9) + 24) for name, _ in graph.atoms}
    positions = {}
    x = float(margin_x)
    height = 0.0
    for col in sorted(by_column):
        names = by_column[col]
        col_width = max(widths[n] for n in names)
        y = float(margin_top)
        for name in names:
            positions[name] = (x + (col_width - widths[name]) / 2, y, widths[name])
            y += _BOX_H + _ROW_GAP
        height = max(height, y)
        x += col_width + _COL_GAP
    return positions, x - _COL_GAP + margin_x, height - _ROW_GAP + 8 * levels + _PAD


def to_svg(graph: Graph, states: Mapping[str, str] | None = None,
           standalone: bool = True) -> str:
    """An SVG picture; ``standalone`` embeds the state colours as a stylesheet."""
    states = states or {}
    kinds = dict(graph.atoms)
    positions, width, height = layout(graph)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" viewBox="0 0 %d %d"'
           ' width="%d" height="%d" role="img" aria-label="%s">'
           % (width, height, width, height, html.escape(graph.name, quote=True))]
    if standalone:
        out.append('<style>' + svg_stylesheet() + '</style>')
    out.append('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5"'
               ' markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
               '<path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>')
    # Flows: a box around the atoms of each; outer boxes leave room (and a
    # label line) for every level nested inside them.
    members: dict[int, set[str]] = {c.key: set(c.atoms) for c in graph.clusters}
    below: dict[int, int] = {c.key: 0 for c in graph.clusters}
    for cluster in reversed(graph.clusters):   # children come after their parents
        if cluster.parent is not None:
            members[cluster.parent] |= members[cluster.key]
            below[cluster.parent] = max(below[cluster.parent], below[cluster.key] + 1)
    for cluster in graph.clusters:
        names = members[cluster.key]
        if not names:
            continue
        inset = 6 + 8 * below[cluster.key]
        top = _LABEL_H * (below[cluster.key] + 1)
        x0 = min(positions[n][0] for n in names) - inset
        y0 = min(positions[n][1] for n in names) - inset - top
        x1 = max(positions[n][0] + positions[n][2] for n in names) + inset
        y1 = max(positions[n][1] for n in names) + _BOX_H + inset
        out.append('<g class="flow" data-flow="%s"><rect x="%.1f" y="%.1f" width="%.1f"'
                   ' height="%.1f" rx="8"/><text x="%.1f" y="%.1f">%s</text></g>'
                   % (html.escape(cluster.name, quote=True), x0, y0, x1 - x0, y1 - y0,
                      x0 + 6, y0 + 11, html.escape(cluster.name)))
    for source, target in graph.edges:
        sx, sy, sw = positions[source]
        tx, ty, _tw = positions[target]
        x1, y1, x2, y2 = sx + sw, sy + _BOX_H / 2, tx, ty + _BOX_H / 2
        bend = max((x2 - x1) / 2, 20)
        out.append('<path class="edge" d="M %.1f %.1f C %.1f %.1f, %.1f %.1f, %.1f %.1f"'
                   ' marker-end="url(#arrow)"/>' % (x1, y1, x1 + bend, y1, x2 - bend, y2,
                                                      x2 - 1, y2))
    for name, _kind in graph.atoms:
        x, y, w = positions[name]
        state = states.get(name, 'PENDING' if states else 'NONE')
        shape = ('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" rx="%d"/>'
                 % (x, y, w, _BOX_H, 4 if kinds[name] == 'retry' else 10))
        out.append('<g class="atom kind-%s state-%s" data-atom="%s">%s'
                   '<text x="%.1f" y="%.1f" class="name">%s</text>'
                   '<text x="%.1f" y="%.1f" class="state-label">%s</text>'
                   '<title>%s (%s)</title></g>'
                   % (kinds[name], state, html.escape(name, quote=True), shape,
                      x + w / 2, y + 16, html.escape(name), x + w / 2, y + 30,
                      '' if state == 'NONE' else state, html.escape(name), kinds[name]))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def svg_stylesheet() -> str:
    """CSS for the SVG's classes (the web view includes it in its page)."""
    rules = ['svg.flow-graph{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif}',
             '.flow-graph .flow rect{fill:none;stroke:#afb8c1;stroke-dasharray:4 3}',
             '.flow-graph .flow text{font-size:11px;fill:#57606a}',
             '.flow-graph .edge{fill:none;stroke:#57606a;stroke-width:1.3}',
             '.flow-graph .atom rect{stroke:#57606a;stroke-width:1;fill:#ffffff}',
             '.flow-graph .atom.kind-retry rect{stroke-dasharray:5 2}',
             '.flow-graph .atom text{text-anchor:middle}',
             '.flow-graph .atom .name{font-size:12px;font-weight:600;fill:#1f2328}',
             '.flow-graph .atom .state-label{font-size:10px;fill:#1f2328}',
             '.flow-graph .atom.state-REVERT_FAILURE text{fill:#ffffff}']
    rules.extend('.flow-graph .atom.state-%s rect{fill:%s}' % (state, colour)
                 for state, colour in STATE_COLOURS.items())
    rules.append('.flow-graph .atom.state-RUNNING rect,.flow-graph .atom.state-REVERTING rect'
                 '{stroke-width:2.5}')
    return ''.join(rules)
