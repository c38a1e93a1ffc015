// Access requests on the Temporary access page: ask for a group the policy
// lets you request, the requests waiting for your decision with approve /
// deny, and your requests (every request, for operators) with their
// countdown and cancel. Everything goes through /v1/access/..., as the
// person signed in; the server applies the policy.
import { h, api, badge, table, section, countdown, confirmAction, notify, fmtTime, parseTime, durationText, session } from '../lib.js';

const STATE = (s) => String(s || '').replace('REQUEST_STATE_', '').toLowerCase();
const KIND = { pending: 'info', approved: 'info', active: 'ok', denied: 'muted', expired: 'muted', cancelled: 'muted', ended: 'muted', revoked: 'muted', failed: 'bad' };

function stateBadge(r) { const s = STATE(r.state); return badge(s, KIND[s] || 'muted'); }

function operator() { return session.principal && session.principal.kind !== 'person'; }

function what(r) { return `${r.userName} in ${r.group} (${r.domain}) for ${durationText(r.duration)}`; }

// requestsSections returns the sections and a load function the page calls
// on each refresh; null sections when this process runs no access workflow.
export function requestsSections(reload) {
  const askBox = h('div', { id: 'request-ask' });
  const waitBox = h('div', { id: 'requests-waiting' });
  const listBox = h('div', { id: 'requests-mine' });
  const sections = [
    section('Ask for access', askBox),
    section('Waiting for a decision', h('p', { class: 'hint' }, 'Requests you may approve or deny (a requester never decides their own).'), waitBox),
    section(operator() ? 'All access requests' : 'My access requests', listBox),
  ];
  let eligibility = null;
  async function load() {
    const waiting = await api.optional('/v1/access/requests?view=REQUEST_VIEW_WAITING_FOR_ME&states=REQUEST_STATE_PENDING');
    if (!waiting) {
      askBox.replaceChildren(h('p', { class: 'empty', id: 'requests-off' }, 'No access policy is configured (expiry.access.policies): nobody can request access; operators grant it below.'));
      waitBox.replaceChildren();
      listBox.replaceChildren();
      return;
    }
    const mine = await api.get(`/v1/access/requests?view=${operator() ? 'REQUEST_VIEW_ALL' : 'REQUEST_VIEW_MINE'}&limit=200`);
    if (!eligibility) {
      eligibility = (await api.get('/v1/access/eligibility')).groups || [];
      askBox.replaceChildren(askForm(eligibility, reload));
    }
    waitBox.replaceChildren(waitingView(waiting.requests || [], reload));
    listBox.replaceChildren(listView(mine.requests || [], reload));
  }
  return { sections, load };
}

function askForm(groups, reload) {
  if (groups.length === 0) return h('p', { class: 'empty' }, 'No access policy lets you request a group.');
  const group = h('select', { id: 'r-group', name: 'group' }, groups.map((g, i) => h('option', { value: i }, `${g.group} (${g.domain})`)));
  const dur = h('input', { id: 'r-duration', name: 'duration', type: 'number', min: 1, required: true, size: 5 });
  const reason = h('input', { id: 'r-reason', name: 'reason', placeholder: 'why you need it', size: 24 });
  const ticket = h('input', { id: 'r-ticket', name: 'ticket', size: 12 });
  const user = h('input', { id: 'r-user', name: 'user', placeholder: 'userName', size: 20 });
  const terms = h('p', { class: 'hint', id: 'r-terms' });
  const show = () => {
    const g = groups[Number(group.value)];
    const max = parseFloat(g.maxDuration) / 60;
    dur.max = max;
    if (!dur.value) dur.value = Math.round(parseFloat(g.defaultDuration) / 60);
    reason.required = Boolean(g.justificationRequired);
    ticket.required = Boolean(g.ticketRequired);
    ticket.placeholder = g.ticketPattern || 'ticket';
    terms.textContent = [`At most ${durationText(g.maxDuration)}.`,
      g.autoApproved ? 'You are approved at once.' : `${g.approvalsRequired || 1} approval(s) needed.`,
      g.justificationRequired ? 'A reason is required.' : '',
      g.ticketRequired ? `A ticket is required${g.ticketPattern ? ` (${g.ticketPattern})` : ''}.` : '',
      g.extensionAllowed ? 'An active grant may be extended by a new request.' : ''].filter(Boolean).join(' ');
  };
  group.addEventListener('change', () => { dur.value = ''; show(); });
  show();
  const form = h('form', { class: 'filters', id: 'request-form', onsubmit: async (e) => {
    e.preventDefault();
    const g = groups[Number(group.value)];
    const minutes = Number(dur.value);
    const forWhom = operator() ? user.value.trim() : 'you';
    const ok = await confirmAction({
      title: `Request ${g.group}?`,
      lines: [`This asks for ${forWhom} to be a member of ${g.group} in ${g.domain} for ${minutes} minutes, ${g.autoApproved ? 'approved at once by the policy' : 'once an approver agrees'}; the membership is removed then.`,
        reason.value ? `Reason: ${reason.value}` : '', ticket.value ? `Ticket: ${ticket.value}` : ''].filter(Boolean),
      confirmLabel: 'Request',
    });
    if (!ok) return;
    try {
      const res = await api.post('/v1/access/requests', { domain: g.domain, group: g.group, duration: `${minutes * 60}s`,
        reason: reason.value.trim(), ticket: ticket.value.trim(), user: operator() ? user.value.trim() : '' });
      const r = res.request;
      notify(STATE(r.state) === 'active' ? `Granted: ${what(r)}.` : `Request ${r.id} is waiting for approval.`);
      reason.value = ''; ticket.value = ''; user.value = '';
    } catch (err) { notify(err.message, 'bad'); }
    reload();
  } },
  h('label', {}, 'Group ', group), h('label', {}, 'Minutes ', dur),
  operator() ? h('label', {}, 'For user ', user) : null,
  h('label', {}, 'Reason ', reason), h('label', {}, 'Ticket ', ticket), h('button', { type: 'submit' }, 'Request…'));
  return h('div', {}, form, terms);
}

function decisions(r) {
  return (r.decisions || []).map((d) => `${d.approved ? 'approved' : 'decided'} by ${d.by}${d.reason ? ` (${d.reason})` : ''}`).join('; ');
}

function waitingView(rs, reload) {
  return table([
    { label: 'Who', cell: (r) => r.userName },
    { label: 'Group', cell: (r) => `${r.group} (${r.domain})` },
    { label: 'For', cell: (r) => durationText(r.duration) + (r.extension ? ' (extension)' : '') },
    { label: 'Reason', cell: (r) => r.reason || '' },
    { label: 'Ticket', cell: (r) => r.ticket || '' },
    { label: 'Approvals', cell: (r) => `${(r.decisions || []).filter((d) => d.approved).length} of ${r.approvalsRequired}` },
    { label: 'Decide within', cell: (r) => countdown(r.decideBy) },
    { label: '', class: 'row-actions', cell: (r) => h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'small', 'data-action': 'approve', 'aria-label': `Approve ${what(r)}`, onclick: () => decide(r, 'approve', reload) }, 'Approve…'),
      h('button', { type: 'button', class: 'danger small', 'data-action': 'deny', 'aria-label': `Deny ${what(r)}`, onclick: () => decide(r, 'deny', reload) }, 'Deny…')) },
  ], rs, 'Nothing waits for your decision.', { id: 'waiting-table' });
}

async function decide(r, verb, reload) {
  const reason = h('input', { id: 'decide-reason', name: 'reason', size: 30, placeholder: verb === 'deny' ? 'required: the requester is told why' : 'optional' });
  const ok = await confirmAction({
    title: verb === 'approve' ? 'Approve this request?' : 'Deny this request?',
    lines: [verb === 'approve'
      ? `${what(r)}. With enough approvals the membership is added now and removed when it ends.`
      : `${what(r)}. Nothing is granted; ${r.requester} is told your reason.`,
    r.reason ? `Their reason: ${r.reason}` : '', r.ticket ? `Ticket: ${r.ticket}` : ''].filter(Boolean),
    input: h('div', {}, h('label', { for: 'decide-reason' }, 'Your reason '), reason),
    confirmLabel: verb === 'approve' ? 'Approve' : 'Deny', danger: verb === 'deny',
  });
  if (!ok) return;
  try {
    const res = await api.post(`/v1/access/requests/${encodeURIComponent(r.id)}:${verb}`, { reason: reason.value.trim() });
    const s = STATE(res.request.state);
    notify(s === 'active' ? `Granted: ${what(res.request)}.` : `Request ${r.id}: ${s}.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

function listView(rs, reload) {
  return table([
    { label: 'Who', cell: (r) => r.userName },
    { label: 'Group', cell: (r) => `${r.group} (${r.domain})` },
    { label: 'State', cell: (r) => stateBadge(r) },
    { label: 'For', cell: (r) => durationText(r.duration) + (r.extension ? ' (extension)' : '') },
    { label: 'Time', cell: (r) => {
      const s = STATE(r.state);
      if (s === 'pending') return ['decide within ', countdown(r.decideBy)];
      if (s === 'active') return countdown(r.expiresAt);
      return r.endedAt ? fmtTime(parseTime(r.endedAt)) : '';
    } },
    { label: 'Decisions', cell: (r) => decisions(r) || (r.lastError ? `error: ${r.lastError}` : '') },
    { label: 'Reason', cell: (r) => r.reason || '' },
    { label: '', class: 'row-actions', cell: (r) => STATE(r.state) !== 'pending' ? '' :
      h('button', { type: 'button', class: 'secondary small', 'data-action': 'cancel', 'aria-label': `Cancel ${what(r)}`, onclick: () => cancel(r, reload) }, 'Cancel…') },
  ], rs, 'No access request yet.', { id: 'requests-table' });
}

async function cancel(r, reload) {
  const ok = await confirmAction({ title: 'Cancel this request?', lines: [`${what(r)} will no longer wait for a decision.`], confirmLabel: 'Cancel request', danger: true });
  if (!ok) return;
  try {
    await api.post(`/v1/access/requests/${encodeURIComponent(r.id)}:cancel`, { reason: 'cancelled in the console' });
    notify(`Request ${r.id}: cancelled.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}
