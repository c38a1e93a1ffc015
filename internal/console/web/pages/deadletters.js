// Dead letters: what each consumer could not do, why, and the event; replay
// one or all of a consumer's.
import { h, api, ago, table, section, refresher, traceLink, confirmAction, notify, num } from '../lib.js';

const EVERY = 10000;

export default {
  title: 'Dead letters',
  render(root, ctx) {
    const countsBox = h('div', { id: 'dlq-counts' });
    const listBox = h('div', { id: 'dlq-list' });
    const pick = h('select', { id: 'dlq-consumer', name: 'consumer' }, h('option', { value: '' }, 'every consumer'));
    pick.value = ctx.params.get('consumer') || '';
    pick.addEventListener('change', () => { history.replaceState(null, '', '#/deadletters' + (pick.value ? `?consumer=${encodeURIComponent(pick.value)}` : '')); load(); });
    const { fresh, load } = refresher(EVERY, listBox, async () => {
      const q = pick.value ? `consumer=${encodeURIComponent(pick.value)}&limit=200` : 'limit=200';
      const [status, res] = await Promise.all([api.get('/v1/status'), api.get('/v1/deadletters?' + q)]);
      const serviceOf = {};
      for (const s of status.services || []) for (const c of s.consumers || []) serviceOf[c.name] = s.name;
      const counts = res.counts || [];
      const have = [...pick.options].map((o) => o.value);
      for (const c of counts) if (!have.includes(c.consumer)) pick.appendChild(h('option', { value: c.consumer }, c.consumer));
      countsBox.replaceChildren(countsView(counts, serviceOf, load));
      listBox.replaceChildren(listView(res.deadLetters || [], serviceOf, load), res.truncated ? h('p', { class: 'hint' }, 'More dead letters exist than are listed (the oldest 200 are).') : '');
    });
    root.append(fresh,
      h('p', { class: 'hint' }, 'A dead letter is something a consumer gave up on: a person must act. Fix the cause (the reason says what), then replay: the event goes back to its subject and every consumer of it sees it again, which is harmless because events are triggers.'),
      section('Per consumer', countsBox),
      section('Dead letters', h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, h('label', {}, 'Consumer ', pick)), listBox));
    ctx.every(EVERY, load);
  },
};

function service(serviceOf, consumer) {
  return serviceOf[consumer] || consumer.split('-')[0];
}

function countsView(counts, serviceOf, reload) {
  return table([
    { label: 'Service', cell: (c) => service(serviceOf, c.consumer) },
    { label: 'Consumer', cell: (c) => h('a', { href: `#/deadletters?consumer=${encodeURIComponent(c.consumer)}` }, c.consumer) },
    { label: 'Dead letters', class: 'num', cell: (c) => String(num(c.count)) },
    { label: '', class: 'row-actions', cell: (c) => h('button', { type: 'button', class: 'small', 'data-action': 'replay-all', onclick: () => replayAll(c, reload) }, `Replay all ${num(c.count)}…`) },
  ], counts, 'No dead letters: every consumer did what it was given.', { id: 'dlq-counts-table' });
}

function summary(dl) {
  const ev = dl.event;
  if (!ev) return h('code', { class: 'payload' }, dl.payload || '');
  const res = ev.resource ? (ev.resource.name || ev.resource.id) : '';
  const rel = ev.related ? ` ← ${ev.related.name || ev.related.id}` : '';
  return h('span', {}, h('code', {}, ev.type), ` ${res}${rel} in ${ev.domain}`);
}

function listView(list, serviceOf, reload) {
  return table([
    { label: '#', class: 'num', cell: (d) => String(d.seq) },
    { label: 'Consumer', cell: (d) => [d.consumer, h('span', { class: 'muted' }, ` (${service(serviceOf, d.consumer)})`)] },
    { label: 'When', cell: (d) => ago(d.time) },
    { label: 'Reason', cell: (d) => h('span', { class: 'error-text' }, d.reason) },
    { label: 'Event', cell: (d) => h('details', {}, h('summary', {}, summary(d)),
      h('pre', { class: 'json' }, JSON.stringify(d.event || { payload: d.payload }, null, 2)),
      h('p', { class: 'hint' }, `${d.subject} · stream ${d.stream} #${d.streamSeq} · delivered ${num(d.deliveries)}×`)) },
    { label: 'Trace', cell: (d) => traceLink(d.traceId) },
    { label: '', class: 'row-actions', cell: (d) => h('button', { type: 'button', class: 'small', 'data-action': 'replay', 'data-seq': d.seq, onclick: () => replayOne(d, reload) }, 'Replay…') },
  ], list, 'No dead letters here.', { id: 'dlq-table' });
}

async function replayOne(d, reload) {
  const ok = await confirmAction({
    title: `Replay dead letter #${d.seq}?`,
    lines: [h('p', {}, 'This republishes ', summary(d), ` to ${d.subject} and removes it from the dead letters. Every consumer of that subject handles it again.`),
      `It failed because: ${d.reason}`],
    confirmLabel: 'Replay',
  });
  if (!ok) return;
  try {
    await api.post(`/v1/deadletters/${d.seq}:replay`, {});
    notify(`Dead letter #${d.seq} replayed.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

async function replayAll(c, reload) {
  const ok = await confirmAction({
    title: `Replay all ${num(c.count)} dead letters of ${c.consumer}?`,
    lines: [`This republishes every dead letter of ${c.consumer}, oldest first, to its original subject and removes it from the dead letters. Those whose cause is not fixed come back here.`],
    confirmLabel: `Replay ${num(c.count)}`,
  });
  if (!ok) return;
  try {
    const res = await api.post(`/v1/deadletters/consumers/${encodeURIComponent(c.consumer)}:replay`, {});
    notify(`Replayed ${num(res.replayed)} dead letters of ${c.consumer}.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}
