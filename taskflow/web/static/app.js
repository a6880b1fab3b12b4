// taskflow web view: live updates (server-sent events, polling for the index)
// and the operator controls' confirmation dialog. No framework, no build step.
'use strict';

function fmtSeconds(v) {
  if (v === null || v === undefined) return '-';
  if (v < 1) return Math.round(v * 1000) + 'ms';
  if (v < 120) return v.toFixed(2) + 's';
  const m = Math.floor(v / 60), s = Math.floor(v % 60);
  return m + 'm' + String(s).padStart(2, '0') + 's';
}

function fmtWhen(epoch) {
  if (epoch === null || epoch === undefined) return '-';
  return new Date(epoch * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

function short(value, width) {
  width = width || 80;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length <= width ? text : text.slice(0, width - 1) + '\u2026';
}

function node(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children || []) e.appendChild(c);
  return e;
}

function stateBadge(state, extra) {
  return node('span', {class: 'state state-' + state + (extra ? ' ' + extra : ''), text: state});
}

function setState(elem, state) {
  elem.className = elem.className.replace(/\bstate-[A-Z_]+\b/g, '').trim() + ' state-' + state;
  elem.textContent = state;
}

// -- index page ----------------------------------------------------------------

function taskflowIndex() {
  const body = document.querySelector('#flows tbody');
  async function refresh() {
    try {
      const response = await fetch('/api/flows' + location.search);
      if (!response.ok) return;
      const flows = await response.json();
      body.replaceChildren(...flows.map(f => node('tr', {'data-flow': f.uuid}, [
        node('td', {}, [node('a', {href: '/flows/' + f.uuid, text: f.name}),
                        node('div', {class: 'uuid', text: f.uuid})]),
        node('td', {}, [stateBadge(f.state)]),
        node('td', {text: f.book_name || '-'}),
        node('td', {text: f.done + '/' + f.total}),
        node('td', {text: fmtWhen(f.started_at)}),
        node('td', {text: fmtSeconds(f.duration)}),
      ])));
      if (!flows.length) {
        body.appendChild(node('tr', {class: 'empty'}, [node('td', {colspan: 6, text: 'No flows.'})]));
      }
    } catch (e) { /* the server went away: try again later */ }
  }
  setInterval(refresh, 1500);
}

// -- flow page -----------------------------------------------------------------

function renderFlow(d) {
  window.taskflowFlowState = d.state;
  setState(document.getElementById('flow-state'), d.state);
  document.getElementById('flow-done').textContent = d.done + '/' + d.total;
  document.getElementById('flow-current').textContent = d.current || '-';
  document.getElementById('flow-started').textContent = fmtWhen(d.started_at);
  document.getElementById('flow-took').textContent = fmtSeconds(d.duration);
  document.getElementById('interrupted').hidden = !d.interrupted_action;

  const body = document.querySelector('#atoms tbody');
  for (const a of d.atoms) {
    let row = body.querySelector('tr[data-atom="' + CSS.escape(a.name) + '"]');
    if (!row) {
      row = node('tr', {'data-atom': a.name}, [
        node('td', {class: 'name', text: a.name}), node('td', {text: a.kind}),
        node('td', {}, [stateBadge(a.state)]), node('td', {class: 'intention'}),
        node('td', {class: 'took'}), node('td', {class: 'result'})]);
      body.appendChild(row);
    }
    setState(row.querySelector('.state'), a.state);
    row.querySelector('.intention').textContent = a.intention;
    row.querySelector('.took').textContent = fmtSeconds(a.duration);
    const result = row.querySelector('.result');
    if (a.failure) {
      result.replaceChildren(node('span', {class: 'failed', text: a.failure.type + ': ' + a.failure.message}));
    } else if (a.has_result) {
      result.replaceChildren(node('code', {text: short(a.result)}));
    } else {
      result.textContent = '-';
    }
    const g = document.querySelector('#graph g.atom[data-atom="' + CSS.escape(a.name) + '"]');
    if (g) {
      g.setAttribute('class', g.getAttribute('class').replace(/\bstate-[A-Z_]+\b/, 'state-' + a.state));
      g.querySelector('.state-label').textContent = a.state;
    }
  }

  const failures = [];
  for (const a of d.atoms) {
    for (const [label, f] of [['failed', a.failure], ['revert failed', a.revert_failure]]) {
      if (!f) continue;
      const summary = node('summary', {}, [node('strong', {text: a.name + ' ' + label + ': '}),
                                           node('span', {text: f.type + ': ' + f.message})]);
      const parts = [summary];
      if (f.traceback) parts.push(node('pre', {text: 'Traceback (most recent call last):\n' + f.traceback}));
      failures.push(node('details', {class: 'failure', 'data-atom': a.name, open: ''}, parts));
    }
  }
  document.getElementById('failures').replaceChildren(...failures);
  document.getElementById('failures-section').hidden = failures.length === 0;

  const history = document.getElementById('history');
  history.replaceChildren(...(d.actions.length ? d.actions.slice().reverse().map(r => node('li', {}, [
    node('strong', {text: r.action}), node('span', {text: ' by ' + r.who + ' at ' + r.when}),
    node('span', {class: 'why', text: r.why ? ' \u2014 ' + r.why : ''}),
    node('span', {class: 'hint', text: r.abandoned ? ' (abandoned)' : ''}),
  ])) : [node('li', {class: 'hint', text: 'none yet'})]));

  for (const button of document.querySelectorAll('button.action')) {
    button.disabled = !d.actions_enabled.includes(button.dataset.action);
  }
  const busy = document.getElementById('busy-hint');
  if (busy) busy.hidden = !d.busy;
  const atoms = document.getElementById('confirm-atom');
  if (atoms) atoms.replaceChildren(...d.skippable.map(n => node('option', {value: n, text: n})));
}

function taskflowFlow() {
  const data = JSON.parse(document.getElementById('flow-data').textContent);
  renderFlow(data);
  const live = document.getElementById('live');
  const source = new EventSource(location.pathname + '/events');
  source.onopen = () => live.classList.add('on');
  source.onerror = () => live.classList.remove('on');
  source.onmessage = (event) => {
    const d = JSON.parse(event.data);
    if (!d.error) renderFlow(d);
  };
  const dialog = document.getElementById('confirm');
  if (!dialog) return;
  const form = document.getElementById('confirm-form');
  for (const button of document.querySelectorAll('button.action')) {
    button.addEventListener('click', () => {
      const action = button.dataset.action;
      form.action = location.pathname + '/actions/' + action;
      document.getElementById('confirm-title').textContent = button.textContent + '?';
      document.getElementById('confirm-text').textContent = button.dataset.text;
      document.getElementById('confirm-ok').textContent = button.textContent;
      dialog.querySelector('.skip-only').hidden = action !== 'skip';
      dialog.showModal();
      document.getElementById('confirm-why').focus();
    });
  }
  document.getElementById('confirm-cancel').addEventListener('click', () => dialog.close());
}
