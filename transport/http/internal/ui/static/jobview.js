// The job page: the job's state, one cell per target host coloured by its
// status, filled in as the follow stream brings events, each host's
// output on click, and a cancel button.
//
// Events only change the model; the page is updated once per animation
// frame, and then only the cells of the hosts that changed, so a burst of
// 1,000 events costs one style pass, not 1,000.

import { APIError, call, hostStates, jobStates } from './api.js';
import { duration, when } from './format.js';
import { Follow } from './sse.js';

// rank orders a host's statuses: its cell shows the worst of its events
// (a deploy has one per step), as Ansible's recap counts a host that
// failed a step as failed.
const rank = { SKIPPED: 1, OK: 2, CHANGED: 3, FAILED: 4, UNREACHABLE: 5 };
const shown = ['OK', 'CHANGED', 'FAILED', 'UNREACHABLE', 'SKIPPED', 'PENDING'];

const $ = (id) => document.getElementById(id);

export class JobView {
  constructor(root, conn) {
    this.root = root;
    this.conn = conn;
    this.grid = $('grid');
    this.counts = $('job-counts');
    this.cancelButton = $('cancel');
    this.message = $('job-message');
    this.output = $('output');
    this.follow = null;
    this.grid.addEventListener('click', (e) => {
      const cell = e.target.closest('.cell');
      if (cell) this.select(cell.dataset.host);
    });
    this.counts.addEventListener('click', (e) => {
      const chip = e.target.closest('button');
      if (!chip) return;
      const f = this.grid.dataset.filter === chip.dataset.status ? '' : chip.dataset.status;
      this.grid.dataset.filter = f;
      for (const b of this.counts.children) b.setAttribute('aria-pressed', String(b.dataset.status === f));
    });
    this.cancelButton.addEventListener('click', () => this.cancel());
    this.hostFilter = $('host-filter');
    let filtering = 0;
    this.hostFilter.addEventListener('input', () => {
      clearTimeout(filtering);
      filtering = setTimeout(() => this.filterHosts(), 100);
    });
    $('output-close').addEventListener('click', () => this.select(''));
    this.chips = {};
    for (const s of shown) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.status = s;
      b.setAttribute('aria-pressed', 'false');
      this.counts.appendChild(b);
      this.chips[s] = b;
    }
  }

  open(jid) {
    this.close();
    this.jid = jid;
    this.job = null;
    this.final = false;
    this.marked = false;
    this.hosts = new Map(); // host -> {name, cell, events, status}
    this.tally = { OK: 0, CHANGED: 0, FAILED: 0, UNREACHABLE: 0, SKIPPED: 0 };
    this.dirty = new Set();
    this.jobDirty = true;
    this.selected = '';
    this.frame = 0;
    this.grid.replaceChildren();
    this.grid.dataset.filter = '';
    this.hostFilter.value = '';
    this.output.hidden = true;
    this.showMessage('');
    this.disarm();
    $('job-jid').textContent = jid;
    this.root.dataset.state = '';
    this.root.dataset.rendered = '';
    performance.clearMarks('exed:job-rendered');
    this.follow = new Follow(jid, {
      // A stream's first message (and an early "end") is the job as it
      // stood when the stream began: it may have ended by then while its
      // last events are still to come on this stream, or on the next one
      // after a cut. Only "done" comes after every event, so until then
      // the page shows the job as still running rather than "Done" beside
      // hosts without their results.
      job: (job) => this.setJob({ ...job, state: 1, endat: 0, error: '' }),
      host: (host, ev, id) => this.addEvent(host, ev, id),
      done: (job) => {
        this.final = true;
        this.setJob(job);
        this.setConn('');
      },
      status: (text) => this.setConn(text),
      fatal: (e) => {
        this.setConn('');
        this.showMessage(e instanceof APIError && e.status === 404 ? 'No such job: ' + e.message : e.message);
      },
    });
    this.follow.run();
    this.clock = setInterval(() => {
      if (this.job && this.job.state === 1) {
        this.jobDirty = true;
        this.schedule();
      }
    }, 1000);
  }

  close() {
    if (this.follow) this.follow.stop();
    this.follow = null;
    clearInterval(this.clock);
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.setConn('');
  }

  setConn(text) {
    this.conn.textContent = text;
    if (this.follow) {
      this.root.dataset.reconnects = String(this.follow.reconnects);
      this.root.dataset.duplicates = String(this.follow.duplicates);
    }
  }

  setJob(job) {
    const first = !this.job;
    // The stream's first message: what follows it is the page's own work
    // (bench: the dashboard's render time, less the page load).
    if (first) performance.mark('exed:job-stream');
    this.job = job;
    if (first) {
      const frag = document.createDocumentFragment();
      for (const name of job.targets || []) frag.appendChild(this.newHost(name).cell);
      this.grid.appendChild(frag);
    }
    this.jobDirty = true;
    this.schedule();
  }

  // filterHosts shows only the cells whose host name holds the filter's
  // text.
  filterHosts() {
    const q = this.hostFilter.value.trim().toLowerCase();
    for (const h of this.hosts.values()) h.cell.hidden = q !== '' && !h.name.toLowerCase().includes(q);
  }

  newHost(name) {
    const cell = document.createElement('button');
    cell.type = 'button';
    cell.className = 'cell';
    cell.setAttribute('role', 'listitem');
    cell.dataset.host = name;
    cell.dataset.status = 'PENDING';
    cell.dataset.events = '0';
    cell.textContent = name;
    cell.title = name;
    const h = { name, cell, events: [], status: '' };
    this.hosts.set(name, h);
    return h;
  }

  addEvent(host, ev, id) {
    if (host === '__ANNOUNCE__') return; // marks a step's start; no host's
    let h = this.hosts.get(host);
    if (!h) {
      h = this.newHost(host);
      this.grid.appendChild(h.cell);
    }
    ev.seq = id;
    h.events.push(ev);
    const st = hostStates[ev.status] || 'FAILED';
    if (st in rank && (!h.status || rank[st] > rank[h.status])) {
      if (h.status) this.tally[h.status]--;
      this.tally[st]++;
      h.status = st;
    }
    this.dirty.add(h);
    this.schedule();
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.flush();
      });
    }
  }

  // flush writes what changed since the last frame into the page.
  flush() {
    for (const h of this.dirty) {
      h.cell.dataset.status = h.status || 'PENDING';
      h.cell.dataset.events = String(h.events.length);
      h.cell.title = h.name + ': ' + (h.status || 'pending');
    }
    const selectedChanged = this.selected && this.dirty.has(this.hosts.get(this.selected));
    this.dirty.clear();
    if (this.jobDirty) this.renderJob();
    if (this.follow) {
      this.root.dataset.reconnects = String(this.follow.reconnects);
      this.root.dataset.duplicates = String(this.follow.duplicates);
    }
    if (selectedChanged) this.renderOutput();
    if (this.final && !this.marked) {
      this.marked = true;
      for (const h of this.hosts.values()) {
        if (!h.status) h.cell.dataset.status = 'NONE';
      }
      // How long the page took, from navigation, to show the job ended
      // with every host's final status (bench: the dashboard's render
      // time).
      performance.mark('exed:job-rendered');
      this.root.dataset.rendered = 'true';
    }
  }

  renderJob() {
    this.jobDirty = false;
    const job = this.job;
    if (!job) return;
    const state = jobStates[job.state] || String(job.state);
    this.root.dataset.state = state;
    $('job-state').textContent = state;
    $('job-op').textContent = job.operate;
    $('job-args').textContent = args(job);
    $('job-user').textContent = job.user || '—';
    $('job-start').textContent = when(job.startat);
    const end = job.endat || Date.now() / 1000;
    $('job-duration').textContent = duration(end - job.startat);
    $('job-error').textContent = job.error || '—';
    let done = 0;
    for (const s in this.tally) {
      done += this.tally[s];
      this.chips[s].textContent = s + ' ' + this.tally[s];
    }
    const pending = Math.max(0, this.hosts.size - done);
    this.chips.PENDING.textContent = (this.final ? 'NO RESULT ' : 'PENDING ') + pending;
    this.chips.PENDING.hidden = this.final && pending === 0;
    this.cancelButton.hidden = job.state !== 1;
    if (job.state !== 1) this.disarm();
    document.title = `exed ${job.operate} ${state} — ${job.jid}`;
  }

  select(host) {
    this.selected = host;
    for (const c of this.grid.querySelectorAll('.cell[aria-current]')) c.removeAttribute('aria-current');
    if (!host) {
      this.output.hidden = true;
      return;
    }
    const h = this.hosts.get(host);
    if (h) h.cell.setAttribute('aria-current', 'true');
    this.output.hidden = false;
    this.renderOutput();
  }

  renderOutput() {
    const h = this.hosts.get(this.selected);
    $('output-host').textContent = this.selected + (h && h.status ? ' | ' + h.status : ' | pending');
    const box = $('output-events');
    const frag = document.createDocumentFragment();
    for (const ev of h ? h.events : []) {
      const div = document.createElement('div');
      div.className = 'event';
      div.dataset.status = hostStates[ev.status] || String(ev.status);
      const head = document.createElement('div');
      head.className = 'event-head';
      const parts = [hostStates[ev.status] || String(ev.status)];
      if (ev.name) parts.push(ev.name);
      if (typeof ev.rtc === 'number') parts.push('rc=' + ev.rtc);
      if (ev.truncated) parts.push('truncated');
      parts.push('#' + ev.seq);
      head.textContent = parts.join(' | ');
      div.appendChild(head);
      for (const [label, text] of [['msg', ev.msg], ['stdout', ev.stdout], ['stderr', ev.stderr],
        ['facts', ev.facts ? JSON.stringify(ev.facts, null, 2) : '']]) {
        if (!text) continue;
        const pre = document.createElement('pre');
        pre.className = label;
        pre.dataset.label = label;
        pre.textContent = text;
        div.appendChild(pre);
      }
      frag.appendChild(div);
    }
    if (!h || h.events.length === 0) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'No result yet.';
      frag.appendChild(p);
    }
    box.replaceChildren(frag);
  }

  // cancel asks for a second click before it cancels: a cancel stops the
  // commands of every host of the job.
  async cancel() {
    const b = this.cancelButton;
    if (b.dataset.armed !== 'true') {
      b.dataset.armed = 'true';
      b.textContent = 'Confirm: cancel job';
      this.disarmTimer = setTimeout(() => this.disarm(), 5000);
      return;
    }
    this.disarm();
    b.disabled = true;
    try {
      await call('POST', 'jobs/' + encodeURIComponent(this.jid) + '/cancel');
      this.showMessage('');
    } catch (e) {
      if (!(e instanceof APIError && e.status === 409)) this.showMessage('Cancel: ' + e.message);
    } finally {
      b.disabled = false;
    }
  }

  disarm() {
    clearTimeout(this.disarmTimer);
    this.cancelButton.dataset.armed = 'false';
    this.cancelButton.textContent = 'Cancel job';
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }
}

// args shows an operation's arguments: a command as it is, anything else
// as JSON.
function args(job) {
  const a = job.operate_args || {};
  if (job.operate === 'execute' && typeof a.cmd === 'string') return a.cmd;
  const keys = Object.keys(a);
  return keys.length ? JSON.stringify(a) : '—';
}
