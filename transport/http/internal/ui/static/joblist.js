// The job list: every job of GET /jobs, newest first, in a virtualised
// list. Only the rows in view exist in the page (a few dozen, whatever
// the history holds: 10,000 jobs are 10,000 IDs and one tall spacer), and
// only their details are fetched (GET /jobs/{jid}, a few at a time), again
// while they run. The ID list is polled while the list is shown and the
// tab visible.

import { APIError, call, jobStates } from './api.js';
import { age } from './format.js';

const rowHeight = 32; // px; .jobs .row in app.css has the same height
const overscan = 6; // rows rendered beyond each edge of the view
const pollEvery = 2000; // ms between two GET /jobs
const refreshEvery = 3000; // ms between two GET /jobs/{jid} of a running job in view
const parallel = 6; // GET /jobs/{jid} in flight at once: a browser's connections per server

const columns = ['state', 'jid', 'op', 'user', 'targets', 'age', 'error'];

export class JobList {
  constructor(scroller, count, onError) {
    this.scroller = scroller;
    this.spacer = scroller.querySelector('.spacer');
    this.count = count;
    this.onError = onError;
    this.ids = [];
    this.details = new Map(); // jid -> {job, at} (job null: gone)
    this.rows = [];
    this.inflight = new Set();
    this.queue = [];
    this.frame = 0;
    this.active = false;
    scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(scroller);
    document.addEventListener('visibilitychange', () => {
      if (this.active && document.visibilityState === 'visible') this.poll();
    });
  }

  start() {
    if (this.active) return;
    this.active = true;
    this.poll();
    this.tick = setInterval(() => this.schedule(), 1000);
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
    clearInterval(this.tick);
  }

  // refresh polls now (after a job was submitted, say).
  refresh() {
    if (this.active) this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    if (document.visibilityState === 'visible') {
      try {
        this.setIds(await call('GET', 'jobs'));
        this.onError('');
      } catch (e) {
        this.onError('jobs: ' + e.message);
      }
    }
    if (this.active) this.timer = setTimeout(() => this.poll(), pollEvery);
  }

  setIds(ids) {
    if (!this.loaded || !sameList(ids, this.ids)) {
      this.loaded = true;
      this.ids = ids;
      if (this.details.size > ids.length + 1000) {
        const keep = new Set(ids);
        for (const jid of this.details.keys()) if (!keep.has(jid)) this.details.delete(jid);
      }
      this.spacer.style.height = ids.length * rowHeight + 'px';
      this.count.textContent = '(' + ids.length.toLocaleString('en') + ')';
      this.scroller.dataset.count = String(ids.length);
    }
    this.schedule();
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  render() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight;
    const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
    const last = Math.min(this.ids.length, Math.ceil((top + height) / rowHeight) + overscan);
    while (this.rows.length < last - first) this.rows.push(this.newRow());
    const now = Date.now();
    const wanted = [];
    let complete = this.loaded;
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i];
      const idx = first + i;
      if (idx >= last) {
        row.hidden = true;
        continue;
      }
      const jid = this.ids[idx];
      const d = this.details.get(jid);
      row.hidden = false;
      this.fill(row, idx, jid, d ? d.job : undefined, now);
      if (!d) complete = false;
      if ((!d || (d.job && d.job.state === 1 && now - d.at > refreshEvery)) && !this.inflight.has(jid)) {
        wanted.push(jid);
      }
    }
    this.queue = wanted;
    this.pump();
    if (complete && !this.marked) {
      // How long the page took, from navigation, to show the rows in view
      // with their details (bench: the job list's render time).
      this.marked = true;
      performance.mark('exed:jobs-rendered');
      this.scroller.dataset.rendered = 'true';
    }
  }

  newRow() {
    const row = document.createElement('a');
    row.className = 'row';
    row.setAttribute('role', 'listitem');
    row.cells = {};
    for (const c of columns) {
      const span = document.createElement('span');
      span.className = 'c-' + c;
      row.appendChild(span);
      row.cells[c] = span;
    }
    row.shown = {};
    this.scroller.appendChild(row);
    return row;
  }

  fill(row, idx, jid, job, now) {
    const y = idx * rowHeight + 'px';
    if (row.shown.y !== y) {
      row.style.transform = 'translateY(' + y + ')';
      row.shown.y = y;
    }
    const v = {
      jid,
      state: job ? jobStates[job.state] || String(job.state) : job === null ? 'gone' : '…',
      op: job ? job.operate : '',
      user: job ? job.user || '' : '',
      targets: job ? String((job.targets || []).length) : '',
      age: job ? age(now / 1000 - job.startat) : '',
      error: job ? job.error || '' : '',
    };
    if (row.shown.jid !== jid) {
      row.href = '#/jobs/' + encodeURIComponent(jid);
      row.dataset.jid = jid;
    }
    for (const c of columns) {
      if (row.shown[c] !== v[c]) {
        row.cells[c].textContent = v[c];
        row.shown[c] = v[c];
      }
    }
    if (row.shown.stateClass !== v.state) {
      row.dataset.state = v.state;
      row.shown.stateClass = v.state;
    }
    if (job && row.cells.error.title !== v.error) row.cells.error.title = v.error;
  }

  pump() {
    while (this.inflight.size < parallel && this.queue.length > 0) {
      const jid = this.queue.shift();
      if (this.inflight.has(jid)) continue;
      this.inflight.add(jid);
      call('GET', 'jobs/' + encodeURIComponent(jid))
        .then((job) => this.details.set(jid, { job, at: Date.now() }))
        .catch((e) => {
          if (e instanceof APIError && e.status === 404) this.details.set(jid, { job: null, at: Date.now() });
        })
        .finally(() => {
          this.inflight.delete(jid);
          this.schedule();
        });
    }
  }
}

function sameList(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
