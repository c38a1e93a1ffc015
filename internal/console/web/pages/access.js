// Temporary access: access requests (ask, approve, deny, cancel;
// requests.js), open grants counting down to their deadline, extend and
// revoke, a new grant, and the history of ended ones.
import { h, api, ago, badge, table, section, refresher, countdown, confirmAction, notify, fmtTime, parseTime, fmtDuration } from '../lib.js';
import { requestsSections } from './requests.js';

const EVERY = 5000;
const OPEN = new Set(['GRANT_STATE_PENDING', 'GRANT_STATE_ACTIVE']);
const DURATIONS = [['15 minutes', 900], ['30 minutes', 1800], ['1 hour', 3600], ['2 hours', 7200], ['4 hours', 14400], ['8 hours', 28800]];

export default {
  title: 'Temporary access',
  render(root, ctx) {
    const openBox = h('div', { id: 'grants' });
    const histBox = h('div', { id: 'history' });
    const { fresh, load } = refresher(EVERY, openBox, async () => {
      await requests.load();
      const res = await api.optional('/v1/grants?pageSize=500');
      if (!res) {
        openBox.replaceChildren(h('p', { class: 'empty' }, 'The expiry service does not run in this process (no temporary group is configured).'));
        return;
      }
      const grants = res.grants || [];
      openBox.replaceChildren(openView(grants.filter((g) => OPEN.has(g.state)), load));
      histBox.replaceChildren(historyView(grants.filter((g) => !OPEN.has(g.state))));
    });
    const requests = requestsSections(() => load());
    root.append(fresh, ...requests.sections,
      section('Active grants', openBox),
      section('Grant temporary membership', grantForm(load)),
      section('History', h('p', { class: 'hint' }, 'Grants that ended, newest first, with every change and who made it.'), histBox));
    ctx.every(EVERY, load);
  },
};

function who(g) {
  return `${g.userName || g.userId} in ${g.groupName || g.groupId} (${g.domain})`;
}

function openView(grants, reload) {
  return table([
    { label: 'User', cell: (g) => g.userName || g.userId },
    { label: 'Group', cell: (g) => `${g.groupName || g.groupId} (${g.domain})` },
    { label: 'State', cell: (g) => [badge(g.state), g.overdue ? badge('overdue', 'bad') : null] },
    { label: 'Time left', cell: (g) => countdown(g.expiresAt) },
    { label: 'Ends', cell: (g) => fmtTime(parseTime(g.expiresAt)) },
    { label: 'Reason', cell: (g) => g.reason || '' },
    { label: 'By', cell: (g) => [g.requester || '', g.source && g.source !== 'api' ? h('span', { class: 'muted' }, ` (${g.source})`) : ''] },
    { label: '', class: 'row-actions', cell: (g) => h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary small', 'data-action': 'extend', 'aria-label': `Extend ${who(g)}`, onclick: () => extend(g, reload) }, 'Extend…'),
      h('button', { type: 'button', class: 'danger small', 'data-action': 'revoke', 'aria-label': `Revoke ${who(g)}`, onclick: () => revoke(g, reload) }, 'Revoke…')) },
  ], grants, 'No temporary membership is active.', { id: 'grants-table' });
}

function durationSelect(id, selected = 3600) {
  return h('select', { id, name: 'duration' }, DURATIONS.map(([l, s]) => h('option', { value: s, selected: s === selected }, l)));
}

async function extend(g, reload) {
  const sel = durationSelect('extend-duration');
  const when = h('p', { class: 'hint', id: 'extend-when' });
  const show = () => { when.textContent = `New deadline: ${fmtTime(new Date(Date.now() + Number(sel.value) * 1000))}.`; };
  sel.addEventListener('change', show);
  show();
  const ok = await confirmAction({
    title: 'Extend this grant?',
    lines: [`${who(g)} now ends ${fmtTime(parseTime(g.expiresAt))}. The new deadline is counted from now, within the group's maximum; the membership is removed then.`],
    input: h('div', {}, h('label', { for: 'extend-duration' }, 'Keep the membership for '), sel, when),
    confirmLabel: 'Extend',
  });
  if (!ok) return;
  try {
    const res = await api.post(`/v1/grants/${encodeURIComponent(g.id)}:extend`, { duration: `${sel.value}s`, reason: 'extended in the console' });
    notify(`${who(g)} now ends ${fmtTime(parseTime(res.grant.expiresAt))}.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

async function revoke(g, reload) {
  const reason = h('input', { id: 'revoke-reason', name: 'reason', placeholder: 'why (kept in the grant history)', size: 30 });
  const ok = await confirmAction({
    title: 'Revoke this grant now?',
    lines: [`This removes ${g.userName || g.userId} from ${g.groupName || g.groupId} in ${g.domain} now, ${fmtDuration(parseTime(g.expiresAt) - Date.now())} before its deadline.`],
    input: h('div', {}, h('label', { for: 'revoke-reason' }, 'Reason '), reason),
    confirmLabel: 'Revoke now', danger: true,
  });
  if (!ok) return;
  try {
    await api.post(`/v1/grants/${encodeURIComponent(g.id)}:revoke`, { reason: reason.value.trim() || 'revoked in the console' });
    notify(`${who(g)}: revoked.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

function grantForm(reload) {
  const domain = h('input', { id: 'g-domain', name: 'domain', required: true, placeholder: 'src', size: 10 });
  const group = h('input', { id: 'g-group', name: 'group', required: true, placeholder: 'OCI-Temp-Admins', size: 16 });
  const user = h('input', { id: 'g-user', name: 'user', required: true, placeholder: 'jane.doe@example.com', size: 24 });
  const dur = durationSelect('g-duration');
  const reason = h('input', { id: 'g-reason', name: 'reason', required: true, placeholder: 'incident 4711', size: 20 });
  const form = h('form', { class: 'filters', id: 'grant-form', onsubmit: async (e) => {
    e.preventDefault();
    const until = new Date(Date.now() + Number(dur.value) * 1000);
    const ok = await confirmAction({
      title: 'Grant temporary membership?',
      lines: [`This adds ${user.value} to ${group.value} in ${domain.value} now, until ${fmtTime(until)}; iamflow removes the membership then.`, `Reason: ${reason.value}`],
      confirmLabel: 'Grant',
    });
    if (!ok) return;
    try {
      await api.post('/v1/grants', { domain: domain.value.trim(), group: group.value.trim(), user: user.value.trim(), duration: `${dur.value}s`, reason: reason.value.trim() });
      notify(`${user.value} is in ${group.value} until ${fmtTime(until)}.`);
      form.reset();
    } catch (err) { notify(err.message, 'bad'); }
    reload();
  } },
  h('label', {}, 'Domain ', domain), h('label', {}, 'Group ', group), h('label', {}, 'User ', user),
  h('label', {}, 'For ', dur), h('label', {}, 'Reason ', reason), h('button', { type: 'submit' }, 'Grant…'));
  return form;
}

function historyView(grants) {
  return table([
    { label: 'User', cell: (g) => g.userName || g.userId },
    { label: 'Group', cell: (g) => `${g.groupName || g.groupId} (${g.domain})` },
    { label: 'State', cell: (g) => badge(g.state) },
    { label: 'Ended', cell: (g) => ago(g.endedAt) },
    { label: 'Reason', cell: (g) => g.reason || '' },
    { label: 'History', cell: (g) => h('details', {}, h('summary', {}, `${(g.history || []).length} changes`),
      h('ol', { class: 'history' }, (g.history || []).map((t) => h('li', {}, fmtTime(parseTime(t.time)), ': ',
        `${label(t.from)} → ${label(t.to)}`, t.actor ? ` by ${t.actor}` : '', t.note ? ` — ${t.note}` : '')))) },
  ], grants, 'No grant has ended yet.', { id: 'history-table' });
}

function label(state) {
  return String(state || '').replace('GRANT_STATE_', '').toLowerCase() || 'new';
}
