// A resumable follow of one job as Server-Sent Events (docs/API.md,
// "Resuming a follow, and Server-Sent Events").
//
// EventSource cannot send an Authorization header, so the stream is read
// with fetch() and parsed here, as the HTML standard's event stream
// interpretation says. On a dropped connection, a stream the server
// ended early ("end") or one silent for too long, it connects again with
// Last-Event-ID: the number of the last event it received, so the server
// sends every later event once and none twice.

import { APIError, headers, messageOf, token, url, waitForToken } from './api.js';

// The server sends a comment at least every 15 s of silence
// (StreamKeepAlive): a stream silent for three times that is dead.
const silenceLimit = 45000;
const maxDelay = 30000;

export class Follow {
  // handlers: job(job), host(host, event, id), done(job), status(text),
  // fatal(error). host is called once per event, in order.
  constructor(jid, handlers) {
    this.jid = jid;
    this.h = handlers;
    this.lastId = 0; // the number of the last event received
    this.retry = 2000; // ms; the server's "retry" field replaces it
    this.reconnects = 0;
    this.duplicates = 0; // events at or below lastId: never expected
    this.stopped = false;
    this.ctl = null;
  }

  stop() {
    this.stopped = true;
    if (this.ctl) this.ctl.abort();
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      const before = this.lastId;
      try {
        const how = await this.connect();
        if (how === 'done' || this.stopped) return;
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof APIError && e.status !== 401 && e.status < 500 && e.status !== 429) {
          this.h.fatal(e);
          return;
        }
        if (e instanceof APIError && e.status === 401) {
          await waitForToken(token() ? 'The server refused this token: ' + e.message : '');
          continue;
        }
      }
      failures = this.lastId > before ? 1 : failures + 1;
      // Exponential back-off from the server's retry, with jitter, so that
      // many pages do not come back at the same instant.
      const delay = Math.min(maxDelay, this.retry * 2 ** (failures - 1)) * (0.8 + 0.4 * Math.random());
      this.reconnects++;
      this.h.status(`connection lost; reconnecting in ${Math.round(delay / 100) / 10} s`);
      await sleep(delay);
    }
  }

  // connect reads one stream; it returns 'done' when the job ended, and
  // 'end' or 'eof' when the stream ended first.
  async connect() {
    const ctl = new AbortController();
    this.ctl = ctl;
    const h = headers({ Accept: 'text/event-stream' });
    if (this.lastId > 0) h['Last-Event-ID'] = String(this.lastId);
    const res = await fetch(url('jobs/' + encodeURIComponent(this.jid) + '?follow=1'), {
      headers: h, cache: 'no-store', signal: ctl.signal,
    });
    if (!res.ok) throw new APIError(res.status, await messageOf(res));
    if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      ctl.abort();
      throw new APIError(415, 'the server does not serve event streams');
    }
    this.h.status(this.reconnects ? 'live (resumed)' : 'live');
    let timer = 0;
    const watchdog = () => {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(), silenceLimit);
    };
    watchdog();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new Parser((type, data, id) => this.dispatch(type, data, id), (ms) => { this.retry = ms; });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'eof';
        watchdog();
        const how = parser.push(value);
        if (how) {
          ctl.abort();
          return how;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // dispatch handles one message; it returns 'done' or 'end' when the
  // stream is over.
  dispatch(type, data, id) {
    // A read that completed just before stop() must not reach the page,
    // which may show another job by now.
    if (this.stopped) return 'done';
    switch (type) {
      case 'job':
        this.h.job(JSON.parse(data));
        return '';
      case 'host': {
        const n = Number(id);
        if (!(n > this.lastId)) {
          this.duplicates++;
          return '';
        }
        this.lastId = n;
        const obj = JSON.parse(data);
        for (const host in obj) this.h.host(host, obj[host], n);
        return '';
      }
      case 'done':
        this.h.done(JSON.parse(data));
        return 'done';
      case 'end':
        this.h.job(JSON.parse(data));
        return 'end';
    }
    return '';
  }
}

// Parser is the event stream interpretation of the HTML standard
// (9.2.6): lines end with CR, LF or CRLF; a blank line dispatches the
// message; a line starting with ':' is a comment; "field: value" sets
// data (joined by LF), event, id or retry.
export class Parser {
  constructor(onMessage, onRetry) {
    this.onMessage = onMessage;
    this.onRetry = onRetry;
    this.buf = '';
    this.reset();
  }

  reset() {
    this.data = [];
    this.type = '';
    this.id = null;
  }

  // push takes decoded text; it returns what the last message's
  // handler returned ('done', 'end') or ''.
  push(text) {
    this.buf += text;
    let start = 0;
    for (;;) {
      let i = start;
      while (i < this.buf.length && this.buf[i] !== '\n' && this.buf[i] !== '\r') i++;
      if (i >= this.buf.length) break;
      // A CR at the end of the text may be the first half of a CRLF.
      if (this.buf[i] === '\r' && i + 1 === this.buf.length) break;
      const line = this.buf.slice(start, i);
      start = i + (this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1);
      const how = this.line(line);
      if (how) {
        this.buf = this.buf.slice(start);
        return how;
      }
    }
    this.buf = this.buf.slice(start);
    return '';
  }

  line(line) {
    if (line === '') {
      const data = this.data;
      const type = this.type || 'message';
      const id = this.id;
      this.reset();
      if (data.length === 0) return '';
      return this.onMessage(type, data.join('\n'), id) || '';
    }
    if (line[0] === ':') return '';
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'data': this.data.push(value); break;
      case 'event': this.type = value; break;
      case 'id': if (!value.includes('\0')) this.id = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.onRetry(Number(value)); break;
    }
    return '';
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
