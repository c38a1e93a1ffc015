// The console's shell: session, navigation between pages (#/<page>), the
// clock that keeps every "… ago" and countdown current.
import { loadSession, session, signOut, tick, h, errorBox } from './lib.js';
import overview from './pages/overview.js';
import replication from './pages/replication.js';
import access from './pages/access.js';
import deadletters from './pages/deadletters.js';
import databases from './pages/databases.js';

const pages = { overview, replication, access, deadletters, databases };
let cleanup = null;

function route() {
  const [name, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const page = pages[name] || overview;
  const key = pages[name] ? name : 'overview';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === key) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.getElementById('main');
  main.replaceChildren(h('h1', {}, page.title));
  document.title = `${page.title} · iamflow`;
  const timers = [];
  const ctx = {
    params: new URLSearchParams(query),
    // every runs fn now and every ms while the page is shown and visible.
    every(ms, fn) {
      fn();
      timers.push(setInterval(() => { if (!document.hidden) fn(); }, ms));
    },
  };
  try {
    page.render(main, ctx);
  } catch (e) {
    main.appendChild(errorBox(e));
  }
  cleanup = () => timers.forEach(clearInterval);
}

async function start() {
  if (!(await loadSession())) return;
  document.getElementById('who').textContent = session.principal.name;
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', () => { route(); document.getElementById('main').focus(); });
  setInterval(tick, 1000);
  route();
}

start();
