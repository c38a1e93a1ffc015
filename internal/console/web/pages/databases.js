// Databases: per database the mapping (group -> roles), the accounts as the
// last check found them against it, and the statements that repair drift.
import { h, api, ago, badge, num, table, section, refresher, confirmAction, notify } from '../lib.js';

const EVERY = 15000;

export default {
  title: 'Databases',
  render(root, ctx) {
    const box = h('div', { id: 'dbs' });
    const { fresh, load } = refresher(EVERY, box, async () => {
      const res = await api.optional('/v1/dbprovisioner/databases');
      if (!res) {
        box.replaceChildren(h('p', { class: 'empty' }, 'The DB provisioner does not run in this process.'));
      } else {
        box.replaceChildren(...(res.databases || []).map((d) => dbView(d, load)));
      }
    });
    root.append(fresh, box);
    ctx.every(EVERY, load);
  },
};

function dbView(d, reload) {
  const roles = {};
  for (const m of d.mapping || []) roles[m.group] = m.roles || [];
  const last = d.lastReconcile;
  const statements = (last && last.statements) || [];
  return section(`${d.name}`,
    h('p', { class: 'muted' }, `Domain ${d.domain} · mode ${d.mode} · on leave: ${d.onLeave} · `,
      `waiting ${num(d.consumer && d.consumer.pending) + num(d.consumer && d.consumer.ackPending)}`,
      d.reconcileRunning ? ' · reconcile running' : ''),
    d.lastError ? h('p', { class: 'alert' }, d.lastError, ' (', ago(d.lastErrorTime), ')') : null,
    h('h3', {}, 'Mapping'),
    table([
      { label: 'IAM group', cell: (m) => m.group },
      { label: 'Roles', cell: (m) => (m.roles || []).map((r) => h('code', { class: 'role' }, r)) },
    ], d.mapping || [], 'No group is mapped.', { class: 'mapping' }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => check(d, reload) }, 'Check against the mapping (dry run)'),
      h('button', { type: 'button', onclick: () => repair(d, reload) }, 'Repair now…')),
    h('h3', {}, 'Accounts'),
    last ? h('p', { class: 'hint' }, `As the ${last.dryRun ? 'check' : 'reconcile'} `, ago(last.finishedAt),
      ` found them: ${num(last.checked)} checked, ${num(last.changed)} ${last.dryRun ? 'out of step' : 'changed'}, ${num(last.failed)} failed, ${num(last.skipped)} left alone.`)
      : h('p', { class: 'hint' }, 'Not checked since this process started: run a check.'),
    last ? table([
      { label: 'Account', cell: (a) => h('code', {}, a.account) },
      { label: 'IAM user', cell: (a) => a.iamUser },
      { label: 'Groups', cell: (a) => (a.groups || []).join(', ') || h('span', { class: 'muted' }, 'none') },
      { label: 'Roles wanted', cell: (a) => wanted(a, roles).map((r) => h('code', { class: 'role' }, r)) },
      { label: 'Roles granted', cell: (a) => (a.grantedRoles || []).map((r) => h('code', { class: 'role' }, r)) },
      { label: 'Account', cell: (a) => a.status || h('span', { class: 'muted' }, 'absent') },
      { label: 'In step', cell: (a) => (a.skipped ? badge('left alone', 'muted') : a.inStep ? badge('yes', 'ok') : badge('no', 'warn')) },
    ], last.accounts || [], 'No account in scope.', { class: 'accounts' }) : null,
    last && last.dryRun ? h('h3', {}, 'Plan to repair drift') : h('h3', {}, 'Statements run by the last reconcile'),
    statements.length ? h('ol', { class: 'sql' }, statements.map((s) => h('li', {}, h('code', {}, s.sql), h('span', { class: 'muted' }, ` (${s.action}, for ${s.iamName})`))))
      : h('p', { class: 'empty' }, last ? 'None: every account matches the mapping.' : '—'),
    (last && (last.failures || []).length) ? h('ul', { class: 'alert' }, last.failures.map((f) => h('li', {}, f))) : null,
    (d.refused || []).length ? [h('h3', {}, 'Users who cannot have an account'), table([
      { label: 'User', cell: (r) => r.userName },
      { label: 'Why', cell: (r) => r.reason },
      { label: 'Since', cell: (r) => ago(r.since) },
    ], d.refused)] : null);
}

function wanted(a, roles) {
  const set = new Set();
  for (const g of a.groups || []) for (const r of roles[g] || []) set.add(r);
  return [...set].sort();
}

async function check(d, reload) {
  try {
    const res = await api.post(`/v1/dbprovisioner/databases/${encodeURIComponent(d.name)}:reconcile`, { dryRun: true });
    notify(`${d.name}: ${num(res.changed)} accounts out of step, ${(res.statements || []).length} statements would run.`);
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}

async function repair(d, reload) {
  let plan;
  try {
    plan = await api.post(`/v1/dbprovisioner/databases/${encodeURIComponent(d.name)}:reconcile`, { dryRun: true });
  } catch (e) { notify(e.message, 'bad'); return; }
  const sts = plan.statements || [];
  if (!sts.length) {
    notify(`${d.name}: every account matches the mapping; nothing to repair.`);
    reload();
    return;
  }
  const ok = await confirmAction({
    title: `Run ${sts.length} statements in ${d.name}?`,
    lines: [`These are the statements a reconcile of ${d.name} runs now (read a moment ago; the reconcile reads again and runs what is still needed):`],
    detail: h('ol', { class: 'sql confirm-list' }, sts.map((s) => h('li', {}, h('code', {}, s.sql)))),
    confirmLabel: 'Run them', danger: sts.some((s) => s.action === 'drop_user'),
  });
  if (!ok) { reload(); return; }
  try {
    const res = await api.post(`/v1/dbprovisioner/databases/${encodeURIComponent(d.name)}:reconcile`, {});
    notify(`${d.name}: ${(res.statements || []).length} statements run, ${num(res.failed)} failed.`, num(res.failed) ? 'bad' : 'ok');
  } catch (e) { notify(e.message, 'bad'); }
  reload();
}
