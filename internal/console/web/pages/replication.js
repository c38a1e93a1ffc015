// Replication: links and their targets, the drift the last dry run found,
// deletions held for approval (each listed before it is approved), and the
// audit trail with filters and links to traces.
import { h, api, ago, badge, num, table, section, refresher, errorBox, traceLink, confirmAction, notify, fmtTime, parseTime } from '../lib.js';
import { what } from './overview.js';

const EVERY = 10000;

export default {
  title: 'Replication',
  render(root, ctx) {
    const linksBox = h('div', { id: 'links' });
    const holdsBox = h('div', { id: 'holds' });
    const auditBox = h('div', { id: 'audit' });
    let linkNames = [];
    const filters = auditFilters(() => loadAudit());
    const { fresh, load } = refresher(EVERY, linksBox, async () => {
      const [links, holds] = await Promise.all([api.optional('/v1/replicator/links'), api.optional('/v1/replicator/holds')]);
      if (!links) {
        linksBox.replaceChildren(h('p', { class: 'empty' }, 'The replicator does not run in this process.'));
        holdsBox.replaceChildren();
        return;
      }
      linkNames = (links.links || []).map((l) => l.name);
      filters.setLinks(linkNames);
      linksBox.replaceChildren(...(links.links || []).map((l) => linkView(l, load)));
      holdsBox.replaceChildren(holdsView((holds && holds.holds) || [], load));
    });
    root.append(fresh,
      section('Held deletions', h('p', { class: 'hint' }, 'The mass-deletion guard holds deletions beyond its limits until a person approves or rejects them.'), holdsBox),
      section('Links', linksBox),
      section('Audit trail', filters.form, auditBox));

    async function loadAudit() {
      try {
        const recs = await api.optional('/v1/replicator/actions?' + filters.query());
        auditBox.replaceChildren(auditView((recs && recs.records) || []));
      } catch (e) {
        auditBox.replaceChildren(errorBox(e));
      }
    }
    ctx.every(EVERY, load);
    loadAudit();
  },
};

function linkView(l, reload) {
  const dirs = l.directions || [];
  return h('article', { class: 'card wide', 'data-link': l.name },
    h('header', {}, h('h3', {}, l.name), h('span', { class: 'muted' }, `${l.source} → ${(l.targets || []).join(', ')}`),
      l.bidirectional ? badge('bidirectional', 'info') : null, l.dryRun ? badge('dry run only', 'warn') : null),
    table([
      { label: 'Direction', cell: (d) => `${d.source} → ${d.target}` },
      { label: 'Waiting', class: 'num', cell: (d) => String(num(d.pending) + num(d.ackPending)) },
      { label: 'Last success', cell: (d) => ago(d.lastSuccess) },
      { label: 'Circuit', cell: (d) => badge(d.circuit || 'closed') },
      { label: 'Last reconcile', cell: (d) => (d.reconciling ? `running ${d.progress || ''}` : d.lastReconcile ? [ago(d.lastReconcile.finishedAt), ' · ', counts(d.lastReconcile.actions)] : 'not yet') },
      { label: 'Last error', cell: (d) => (d.lastError ? h('span', { class: 'error-text' }, d.lastError) : '—') },
    ], dirs),
    dirs.filter((d) => (d.unsupported || []).length).map((d) => h('p', { class: 'hint' }, `${d.target} does not take: `,
      d.unsupported.map((u) => `${u.resource}.${u.path} (${u.reason})`).join(', '))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => dryRun(l, reload) }, 'Find drift (dry run)'),
      h('button', { type: 'button', onclick: () => reconcile(l, reload) }, 'Reconcile now')),
    dirs.map((d) => driftView(d)));
}

function counts(actions) {
  const e = Object.entries(actions || {}).filter(([, v]) => num(v) > 0);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'in step';
}

function driftView(d) {
  const r = d.lastDryRun;
  if (!r) return h('p', { class: 'hint' }, `${d.source} → ${d.target}: no dry run yet.`);
  const planned = (r.planned || []).filter((a) => a.kind !== 'skip');
  return h('details', { class: 'drift', open: planned.length > 0 && planned.length <= 20 },
    h('summary', {}, `Drift ${d.source} → ${d.target}, from the dry run `, ago(r.finishedAt), `: ${counts(r.actions)}`),
    r.error ? h('p', { class: 'alert' }, r.error) : null,
    plannedTable(planned, 'No drift: the target matches the source.'),
    r.truncated ? h('p', { class: 'hint' }, 'Only the first 1000 actions are listed.') : null);
}

function plannedTable(actions, empty) {
  return table([
    { label: 'Action', cell: (a) => h('code', {}, a.kind) },
    { label: 'Entity', cell: (a) => a.entity },
    { label: 'Name', cell: (a) => a.name || a.sourceId || a.targetId },
    { label: 'Member', cell: (a) => a.memberName || a.memberSourceId || a.memberTargetId || '' },
    { label: 'Changes', cell: (a) => (a.changes || []).map((c) => h('div', {}, `${c.attribute}: `, h('del', {}, c.before || '∅'), ' → ', h('ins', {}, c.after || '∅'))) },
    { label: 'Why', cell: (a) => a.reason || '' },
  ], actions, empty);
}

async function dryRun(l, reload) {
  try {
    const res = await api.post(`/v1/replicator/links/${encodeURIComponent(l.name)}:reconcile`, { dryRun: true });
    notify(`Dry run of ${l.name}: ` + (res.reports || []).map((r) => `${r.target}: ${counts(r.actions)}`).join('; '));
    reload();
  } catch (e) { notify(e.message, 'bad'); }
}

async function reconcile(l, reload) {
  const targets = (l.targets || []).join(', ');
  const ok = await confirmAction({
    title: `Reconcile ${l.name} now?`,
    lines: [`This reads every user and group of ${l.source} and of ${targets}, and changes the target${l.targets.length > 1 ? 's' : ''} to match: creates, updates, memberships, and deletions within the guard's limits (beyond them they are held for approval).`,
      'Run “Find drift (dry run)” first to see exactly what would change.'],
    confirmLabel: 'Reconcile',
  });
  if (!ok) return;
  try {
    const res = await api.post(`/v1/replicator/links/${encodeURIComponent(l.name)}:reconcile`, {});
    notify(`Reconciled ${l.name}: ` + (res.reports || []).map((r) => `${r.target}: ${counts(r.actions)}`).join('; '));
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

function holdsView(holds, reload) {
  if (!holds.length) return h('p', { class: 'empty', id: 'no-holds' }, 'No deletion is waiting for approval.');
  return h('div', {}, holds.map((hold) => h('article', { class: 'card wide hold', 'data-hold': hold.id },
    h('header', {}, h('h3', {}, `${(hold.actions || []).length} held in ${hold.target}`), h('span', { class: 'muted' }, `link ${hold.link} · held `, ago(hold.createdAt))),
    h('p', {}, hold.reason),
    plannedTable(hold.actions || [], 'Nothing in this hold.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', onclick: () => approve(hold, reload) }, 'Approve deletions…'),
      h('button', { type: 'button', class: 'secondary', onclick: () => reject(hold, reload) }, 'Reject…')))));
}

function holdLines(hold) {
  return h('ul', { class: 'confirm-list' }, (hold.actions || []).map((a) =>
    h('li', {}, h('code', {}, a.kind), ` ${a.entity} ${a.name || a.targetId}`, a.memberName ? ` (member ${a.memberName})` : '', a.targetId ? h('span', { class: 'muted' }, ` id ${a.targetId}`) : '')));
}

async function approve(hold, reload) {
  const ok = await confirmAction({
    title: `Apply ${(hold.actions || []).length} deletions in ${hold.target}?`,
    lines: [`This applies exactly these actions in ${hold.target} (link ${hold.link}) now. They cannot be undone from iamflow.`],
    detail: holdLines(hold), confirmLabel: 'Apply deletions', danger: true,
  });
  if (!ok) return;
  try {
    const res = await api.post(`/v1/replicator/holds/${encodeURIComponent(hold.id)}:approve`, {});
    const failed = res.failed || [];
    notify(`Applied ${num(res.applied)} deletions in ${hold.target}` + (failed.length ? `; ${failed.length} failed: ${failed.join('; ')}` : '.'), failed.length ? 'bad' : 'ok');
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

async function reject(hold, reload) {
  const ok = await confirmAction({
    title: `Reject the hold in ${hold.target}?`,
    lines: [`Nothing listed is deleted; the hold is discarded. A later reconcile finds the same deletions again if the source still lacks these objects.`],
    detail: holdLines(hold), confirmLabel: 'Reject hold',
  });
  if (!ok) return;
  try {
    await api.post(`/v1/replicator/holds/${encodeURIComponent(hold.id)}:reject`, {});
    notify(`Rejected the hold in ${hold.target}: nothing was deleted.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

const KINDS = ['', 'create_user', 'update_user', 'deactivate_user', 'delete_user', 'create_group', 'update_group', 'delete_group',
  'add_member', 'remove_member', 'adopt', 'forget', 'skip'];

function auditFilters(onChange) {
  const link = h('select', { id: 'f-link', name: 'link' }, h('option', { value: '' }, 'every link'));
  const target = h('input', { id: 'f-target', name: 'target', placeholder: 'any target', size: 12 });
  const action = h('select', { id: 'f-action', name: 'action' }, KINDS.map((k) => h('option', { value: k }, k || 'any action')));
  const since = h('select', { id: 'f-since', name: 'since' },
    [['1h', 3600], ['24h', 86400], ['7d', 604800], ['30d', 2592000]].map(([l, s]) => h('option', { value: s, selected: l === '24h' }, `last ${l}`)));
  const limit = h('select', { id: 'f-limit', name: 'limit' }, [50, 100, 500, 1000].map((n) => h('option', { value: n, selected: n === 100 }, `${n} at most`)));
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); onChange(); } },
    h('label', {}, 'Link ', link), h('label', {}, 'Target ', target), h('label', {}, 'Action ', action),
    h('label', {}, 'Since ', since), h('label', {}, 'Show ', limit), h('button', { type: 'submit' }, 'Filter'));
  for (const el of [link, action, since, limit]) el.addEventListener('change', onChange);
  return {
    form,
    setLinks(names) {
      const have = [...link.options].map((o) => o.value);
      for (const n of names) if (!have.includes(n)) link.appendChild(h('option', { value: n }, n));
    },
    query() {
      const q = new URLSearchParams();
      if (link.value) q.set('link', link.value);
      if (target.value.trim()) q.set('target', target.value.trim());
      if (action.value) q.set('action', action.value);
      q.set('since', new Date(Date.now() - Number(since.value) * 1000).toISOString());
      q.set('limit', limit.value);
      return q.toString();
    },
  };
}

function auditView(records) {
  return table([
    { label: 'When', cell: (r) => h('time', { title: fmtTime(parseTime(r.time)) }, ago(r.time)) },
    { label: 'Action', cell: (r) => h('code', {}, r.action) },
    { label: 'What', cell: (r) => what(r) },
    { label: 'Link', cell: (r) => r.link || '' },
    { label: 'Target', cell: (r) => r.target || '' },
    { label: 'Outcome', cell: (r) => badge(r.outcome, r.outcome === 'failed' ? 'bad' : r.outcome === 'applied' ? 'ok' : 'muted') },
    { label: 'Why', cell: (r) => r.reason || '' },
    { label: 'Event', cell: (r) => (r.eventId ? h('code', { class: 'id', title: r.eventId }, r.eventId.slice(0, 10) + '…') : '—') },
    { label: 'Trace', cell: (r) => traceLink(r.traceId) },
  ], records, 'No action matches these filters.', { id: 'audit-table' });
}
