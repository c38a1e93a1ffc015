// Shared helpers of the console's pages: building elements (text only,
// never HTML from data), calling the admin API through the console's
// session, times, freshness, and the confirmation dialog.

export const session = { csrfToken: '', traceUrl: '', principal: null, dev: false };

// h builds an element. attrs: class, text, on<event> handlers, dataset
// (object), anything else as an attribute (false/null/undefined skipped).
// Children are elements, strings (text) or arrays of them.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// APIError is a failed API call, with the API's message.
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-CSRF-Token'] = session.csrfToken;
    opts.body = JSON.stringify(body || {});
  }
  const resp = await fetch('/ui/api' + path, opts);
  if (resp.status === 401) {
    location.assign('/ui/signin');
    throw new APIError(401, 'Your session ended: sign in again.');
  }
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!resp.ok) throw new APIError(resp.status, (data && data.message) || `${method} ${path}: HTTP ${resp.status}`);
  return data;
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body),
  // optional is get, or null when this process does not serve the route
  // (the service does not run here).
  optional: async (path) => {
    try { return await call('GET', path); } catch (e) {
      if (e.status === 404 || e.status === 501) return null;
      throw e;
    }
  },
};

export async function loadSession() {
  const resp = await fetch('/ui/session', { credentials: 'same-origin' });
  if (resp.status === 401) { location.assign('/ui/signin'); return null; }
  Object.assign(session, await resp.json());
  return session;
}

export async function signOut() {
  await fetch('/ui/signout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': session.csrfToken } });
  location.assign('/ui/signin');
}

// Times.
export function parseTime(s) {
  if (!s) return null;
  const t = new Date(s);
  return isNaN(t) || t.getUTCFullYear() < 1971 ? null : t;
}

export function fmtDuration(ms) {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  let out;
  if (d > 0) out = `${d}d ${hh}h`;
  else if (hh > 0) out = `${hh}h ${String(mm).padStart(2, '0')}m ${String(s).padStart(2, '0')}s`;
  else if (mm > 0) out = `${mm}m ${String(s).padStart(2, '0')}s`;
  else out = `${s}s`;
  return neg ? '-' + out : out;
}

export function fmtTime(t) {
  if (!t) return '—';
  return t.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

// ago is an element that says how long ago t was, kept current by tick().
export function ago(s) {
  const t = parseTime(s);
  if (!t) return h('span', { class: 'muted', text: 'never' });
  return h('time', { datetime: t.toISOString(), title: fmtTime(t), dataset: { ago: t.getTime() } }, agoText(t.getTime()));
}

function agoText(ms) {
  const d = Date.now() - ms;
  return d < 1000 ? 'just now' : fmtDuration(d) + ' ago';
}

// countdown is an element showing the time left until s, kept current.
export function countdown(s) {
  const t = parseTime(s);
  if (!t) return h('span', { class: 'muted', text: '—' });
  return h('time', { class: 'countdown', datetime: t.toISOString(), title: fmtTime(t), dataset: { until: t.getTime() } }, untilText(t.getTime()));
}

function untilText(ms) {
  const d = ms - Date.now();
  return d <= 0 ? 'due now' : fmtDuration(d) + ' left';
}

// tick refreshes every ago and countdown on the page.
export function tick() {
  for (const el of document.querySelectorAll('[data-ago]')) el.textContent = agoText(Number(el.dataset.ago));
  for (const el of document.querySelectorAll('[data-until]')) el.textContent = untilText(Number(el.dataset.until));
}

// Presentation.
const stateNames = {
  STATE_RUNNING: ['running', 'ok'], STATE_DEGRADED: ['degraded', 'warn'], STATE_STARTING: ['starting', 'info'],
  STATE_STOPPING: ['stopping', 'warn'], STATE_UNSPECIFIED: ['unknown', 'muted'],
  GRANT_STATE_PENDING: ['pending', 'info'], GRANT_STATE_ACTIVE: ['active', 'ok'], GRANT_STATE_EXPIRED: ['expired', 'muted'],
  GRANT_STATE_REVOKED: ['revoked', 'muted'], GRANT_STATE_FAILED: ['failed', 'bad'],
  closed: ['closed', 'ok'], open: ['open', 'bad'], 'half-open': ['half-open', 'warn'],
};

export function badge(state, kind) {
  const [label, cls] = stateNames[state] || [String(state || 'unknown').toLowerCase(), kind || 'muted'];
  return h('span', { class: `badge ${kind || cls}`, text: label });
}

export function num(v) {
  return Number(v || 0);
}

// table builds a table from column definitions ({label, cell(row)}) and rows;
// empty says what shows when there are none.
export function table(columns, rows, empty = 'Nothing here.', attrs = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty', text: empty });
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.class, 'data-label': c.label }, c.cell(r))))))));
}

export function section(title, ...children) {
  const id = 's-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

// traceLink links a trace id to the configured trace viewer, or shows it.
export function traceLink(id) {
  if (!id) return h('span', { class: 'muted', text: '—' });
  if (!session.traceUrl) return h('code', { title: 'trace id', text: id.slice(0, 12) + '…' });
  return h('a', { href: session.traceUrl.replace('{trace_id}', encodeURIComponent(id)), target: '_blank', rel: 'noopener noreferrer', class: 'trace' }, 'trace ' + id.slice(0, 8));
}

// confirmAction asks before a change: what it will do, in words and lines.
// It resolves to true only when the person confirms.
export function confirmAction({ title, lines = [], detail = null, confirmLabel = 'Confirm', danger = false, input = null }) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  const body = document.getElementById('confirm-body');
  body.replaceChildren(...lines.map((l) => (l instanceof Node ? l : h('p', {}, l))));
  if (detail) body.appendChild(detail);
  if (input) body.appendChild(input);
  const ok = document.getElementById('confirm-ok');
  ok.textContent = confirmLabel;
  ok.className = danger ? 'danger' : '';
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    (input ? input.querySelector('input,select,textarea') : document.getElementById('confirm-cancel'))?.focus();
  });
}

// notify shows a message at the top of the page for a while.
export function notify(msg, kind = 'ok') {
  let box = document.getElementById('notices');
  if (!box) {
    box = h('div', { id: 'notices', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(box);
  }
  const n = h('p', { class: `notice ${kind}` }, msg);
  box.appendChild(n);
  setTimeout(() => n.remove(), kind === 'bad' ? 15000 : 6000);
}

// freshness is the "updated … ago" line of a page, with a refresh button.
export function freshness(onRefresh, every) {
  const when = h('span', { class: 'when', text: 'loading…' });
  const btn = h('button', { type: 'button', class: 'secondary small', onclick: onRefresh }, 'Refresh');
  const el = h('p', { class: 'freshness', 'aria-live': 'off' }, 'Updated ', when, every ? ` · refreshes every ${every / 1000}s · ` : ' · ', btn);
  el.mark = (err) => {
    when.replaceChildren(ago(new Date().toISOString()));
    el.classList.toggle('stale', Boolean(err));
    el.title = err ? `Last refresh failed: ${err.message}` : '';
  };
  return el;
}

// refresher keeps a page current. fill (async) loads the page's content;
// load runs it, then marks fresh, the page's freshness line, and when fill
// fails shows the error in box unless box already has content. The page
// shows fresh and calls ctx.every(every, load).
export function refresher(every, box, fill) {
  const fresh = freshness(() => load(), every);
  async function load() {
    try {
      await fill();
      fresh.mark();
    } catch (e) {
      fresh.mark(e);
      if (!box.firstChild) box.replaceChildren(errorBox(e));
    }
  }
  return { fresh, load };
}

// errorBox shows a failed load in place of a page's content.
export function errorBox(err) {
  return h('p', { class: 'alert', role: 'alert' }, err.message || String(err));
}

// durationText turns "3600s" (a proto3 Duration) into "1h 00m 00s".
export function durationText(s) {
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(s || '');
  return m ? fmtDuration(Number(m[1]) * 1000) : (s || '—');
}
