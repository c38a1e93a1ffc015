// Overview: every service of this process, its consumers' lag and dead
// letters, each replication link and database, and the latest replicated
// changes; refreshed every 5 seconds.
import { h, api, ago, badge, num, table, section, refresher, durationText, traceLink } from '../lib.js';

const EVERY = 5000;

export default {
  title: 'Overview',
  render(root, ctx) {
    const body = h('div', { id: 'overview' });
    const { fresh, load } = refresher(EVERY, body, async () => {
      const [status, dl, links, dbs, actions] = await Promise.all([
        api.get('/v1/status'),
        api.optional('/v1/deadletters?limit=1'),
        api.optional('/v1/replicator/links'),
        api.optional('/v1/dbprovisioner/databases'),
        api.optional('/v1/replicator/actions?limit=8'),
      ]);
      body.replaceChildren(...view(status, dl, links, dbs, actions));
    });
    root.append(fresh, body);
    ctx.every(EVERY, load);
  },
};

function view(status, dl, links, dbs, actions) {
  const services = status.services || [];
  const depth = {};
  for (const c of (dl && dl.counts) || []) depth[c.consumer] = num(c.count);
  const consumers = [];
  for (const s of services) for (const c of s.consumers || []) consumers.push({ service: s.name, ...c });
  const totalDLQ = Object.values(depth).reduce((a, b) => a + b, 0);

  const out = [];
  out.push(h('div', { class: 'summary' },
    stat('Services', services.length, services.every((s) => s.state === 'STATE_RUNNING') ? 'ok' : 'warn'),
    stat('Events waiting', consumers.reduce((a, c) => a + num(c.pending) + num(c.ackPending), 0)),
    stat('Dead letters', totalDLQ, totalDLQ > 0 ? 'bad' : 'ok', '#/deadletters'),
    stat('Held deletions', ((links && links.links) || []).flatMap((l) => l.directions || []).reduce((a, d) => a + num(d.heldDeletions), 0),
      null, '#/replication')));

  out.push(section('Services',
    h('div', { class: 'cards' }, services.map((s) => h('article', { class: 'card', 'data-service': s.name },
      h('header', {}, h('h3', {}, s.name), badge(s.state)),
      h('dl', {},
        h('dt', {}, 'Version'), h('dd', {}, s.version || '—'),
        h('dt', {}, 'Up'), h('dd', {}, durationText(s.uptime)),
        h('dt', {}, 'Last event'), h('dd', {}, s.lastEventId ? [ago(s.lastEventTime), ' ', h('code', { class: 'id', title: s.lastEventId }, short(s.lastEventId))] : h('span', { class: 'muted', text: 'none yet' })),
        h('dt', {}, 'Last error'), h('dd', {}, s.lastError ? h('span', { class: 'error-text' }, s.lastError, ' (', ago(s.lastErrorTime), ')') : h('span', { class: 'muted', text: 'none' }))),
      Object.keys(s.counters || {}).length ? h('details', {}, h('summary', {}, 'Counters'),
        h('dl', { class: 'counters' }, Object.entries(s.counters).sort().flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]))) : null)))));

  out.push(section('Consumers',
    h('p', { class: 'hint' }, 'Lag is what is stored and not yet handled. Replicas of a service share one consumer.'),
    table([
      { label: 'Service', cell: (c) => c.service },
      { label: 'Consumer', cell: (c) => h('code', {}, c.name) },
      { label: 'Waiting', class: 'num', cell: (c) => String(num(c.pending)) },
      { label: 'In flight', class: 'num', cell: (c) => String(num(c.ackPending)) },
      { label: 'Redelivered', class: 'num', cell: (c) => String(num(c.redelivered)) },
      { label: 'Dead letters', class: 'num', cell: (c) => (depth[c.name] ? h('a', { href: `#/deadletters?consumer=${encodeURIComponent(c.name)}`, class: 'bad-text' }, String(depth[c.name])) : '0') },
    ], consumers, 'No consumer runs in this process.', { id: 'consumers' })));

  // A target's consumer is "<durable>-<target>" (replicator.consumer.durable).
  const replicatorConsumers = consumers.filter((c) => c.service === 'replicator').map((c) => c.name);
  const dlqOf = (name) => (name && depth[name] ? h('a', { href: `#/deadletters?consumer=${encodeURIComponent(name)}`, class: 'bad-text' }, String(depth[name])) : '0');
  if (links) {
    const rows = [];
    for (const l of links.links || []) for (const d of l.directions || []) {
      rows.push({ link: l.name, consumer: replicatorConsumers.find((n) => n.endsWith('-' + d.target)), ...d });
    }
    out.push(section('Replication links', table([
      { label: 'Link', cell: (r) => h('a', { href: '#/replication' }, r.link) },
      { label: 'Direction', cell: (r) => `${r.source} → ${r.target}` },
      { label: 'Waiting', class: 'num', cell: (r) => String(num(r.pending) + num(r.ackPending)) },
      { label: 'Last success', cell: (r) => ago(r.lastSuccess) },
      { label: 'Circuit', cell: (r) => badge(r.circuit || 'closed') },
      { label: 'Held', class: 'num', cell: (r) => (num(r.heldDeletions) ? h('a', { href: '#/replication', class: 'warn-text' }, String(r.heldDeletions)) : '0') },
      { label: 'Dead letters', class: 'num', cell: (r) => dlqOf(r.consumer) },
      { label: 'Last error', cell: (r) => (r.lastError ? h('span', { class: 'error-text' }, r.lastError) : '—') },
    ], rows, 'No link configured.', { id: 'links' })));
  }
  if (dbs) {
    out.push(section('Databases', table([
      { label: 'Database', cell: (d) => h('a', { href: '#/databases' }, d.name) },
      { label: 'Domain', cell: (d) => d.domain },
      { label: 'Waiting', class: 'num', cell: (d) => String(num(d.consumer && d.consumer.pending) + num(d.consumer && d.consumer.ackPending)) },
      { label: 'Last reconcile', cell: (d) => (d.lastReconcile ? [ago(d.lastReconcile.finishedAt), d.lastReconcile.dryRun ? ' (dry run)' : '', ` · ${num(d.lastReconcile.changed)} changed, ${num(d.lastReconcile.failed)} failed`] : h('span', { class: 'muted', text: 'not yet' })) },
      { label: 'Refused users', class: 'num', cell: (d) => String((d.refused || []).length) },
      { label: 'Dead letters', class: 'num', cell: (d) => dlqOf(d.consumer && d.consumer.name) },
      { label: 'Last error', cell: (d) => (d.lastError ? h('span', { class: 'error-text' }, d.lastError) : '—') },
    ], dbs.databases || [], 'No database configured.', { id: 'databases' })));
  }
  if (actions) {
    out.push(section('Latest replicated changes', table([
      { label: 'When', cell: (r) => ago(r.time) },
      { label: 'Action', cell: (r) => h('code', {}, r.action) },
      { label: 'What', cell: (r) => what(r) },
      { label: 'Where', cell: (r) => `${r.link || ''} → ${r.target || ''}` },
      { label: 'Outcome', cell: (r) => badge(r.outcome, r.outcome === 'failed' ? 'bad' : r.outcome === 'applied' ? 'ok' : 'muted') },
      { label: 'Trace', cell: (r) => traceLink(r.traceId) },
    ], actions.records || [], 'Nothing replicated in the last 24 hours.', { id: 'recent' })));
  }
  return out;
}

function stat(label, value, kind, href) {
  const v = h('span', { class: `value ${kind || ''}` }, String(value));
  return h('div', { class: 'stat' }, href ? h('a', { href }, v) : v, h('span', { class: 'label' }, label));
}

function short(id) {
  return id.length > 18 ? id.slice(0, 8) + '…' + id.slice(-6) : id;
}

export function what(r) {
  const res = r.resource ? (r.resource.name || r.resource.id) : '';
  const rel = r.related ? (r.related.name || r.related.id) : '';
  return rel ? `${res} ← ${rel}` : res;
}
