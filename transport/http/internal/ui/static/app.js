// The dashboard's entry point: routes (#/ the job list, #/jobs/JID a
// job), the token prompt and the form that runs ping or execute.

import { call, onUnauthorized, setToken, token } from './api.js';
import { JobList } from './joblist.js';
import { JobView } from './jobview.js';

const $ = (id) => document.getElementById(id);
const conn = $('conn');

// The token prompt: a modal dialog whose promise settles once a token is
// entered. The token is kept in sessionStorage (api.js).
const login = $('login');
let signedIn = null;
onUnauthorized((message) => new Promise((resolve) => {
  $('login-error').textContent = message || '';
  setToken('');
  signedIn = resolve;
  if (!login.open) login.showModal();
  login.querySelector('input').focus();
}));
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.elements.token;
  const t = input.value.trim();
  if (!t) return;
  setToken(t);
  input.value = '';
  login.close();
  showSignOut();
  if (signedIn) signedIn();
  signedIn = null;
});
// Escape would close the dialog with every call still waiting on it.
login.addEventListener('cancel', (e) => e.preventDefault());

function showSignOut() {
  $('signout').hidden = !token();
}
$('signout').addEventListener('click', () => {
  setToken('');
  location.reload();
});
showSignOut();

const list = new JobList($('jobs'), $('jobs-count'), (text) => { conn.textContent = text; });
const view = new JobView($('view-job'), conn);

function route() {
  const m = /^#\/jobs\/(.+)$/.exec(location.hash);
  const jobs = $('view-jobs');
  const job = $('view-job');
  if (m) {
    list.stop();
    jobs.hidden = true;
    job.hidden = false;
    view.open(decodeURIComponent(m[1]));
  } else {
    view.close();
    job.hidden = true;
    jobs.hidden = false;
    list.start();
  }
}
window.addEventListener('hashchange', route);
route();

// The run form: the pattern is resolved with GET /target (the count is
// shown as it is typed), then the job is submitted with the host names.
const form = $('run');
const match = $('run-match');
let resolving = 0;
form.elements.op.addEventListener('change', () => {
  form.elements.cmd.disabled = form.elements.op.value !== 'execute';
  form.elements.cmd.required = !form.elements.cmd.disabled;
});
form.elements.pattern.addEventListener('input', () => {
  clearTimeout(resolving);
  resolving = setTimeout(async () => {
    const pattern = form.elements.pattern.value.trim();
    if (!pattern) {
      match.value = '';
      return;
    }
    try {
      const hosts = await resolve(pattern);
      if (form.elements.pattern.value.trim() === pattern) match.value = matchText(hosts);
    } catch (e) {
      match.value = e.message;
    }
  }, 300);
});

async function resolve(pattern) {
  return call('GET', 'target?pattern=' + encodeURIComponent(pattern));
}

function matchText(hosts) {
  if (hosts.length === 0) return 'no hosts match';
  const some = hosts.slice(0, 3).join(', ');
  return `${hosts.length} host${hosts.length === 1 ? '' : 's'}: ${some}${hosts.length > 3 ? ', …' : ''}`;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const op = form.elements.op.value;
  const pattern = form.elements.pattern.value.trim();
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const hosts = await resolve(pattern);
    if (hosts.length === 0) {
      match.value = 'no hosts match ' + pattern;
      return;
    }
    const body = { targets: hosts };
    if (op === 'execute') body.cmd = form.elements.cmd.value;
    const { jid } = await call('POST', op, body);
    match.value = '';
    location.hash = '#/jobs/' + encodeURIComponent(jid);
  } catch (err) {
    match.value = err.message;
  } finally {
    button.disabled = false;
  }
});
