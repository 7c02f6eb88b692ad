// Calls to the exed HTTP API (docs/API.md) from the dashboard.
//
// The dashboard is served at <prefix>/ui/ and the API at <prefix>/, so
// every call is relative to the page's parent path and needs no
// configuration. The bearer token lives in sessionStorage: this tab only,
// gone when it closes, and only ever sent in the Authorization header
// (never in a URL, where logs and Referer headers would keep it).

export const base = new URL('../', location.href);

const tokenKey = 'exed.token';

export function token() {
  return sessionStorage.getItem(tokenKey) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t);
  else sessionStorage.removeItem(tokenKey);
}

// APIError is a non-2xx answer: its status and the API's "message".
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// unauthorized is called on every 401, so that the page asks for a token;
// it returns a promise that settles once a new token has been entered.
let unauthorized = () => Promise.reject(new Error('no sign-in handler'));

export function onUnauthorized(fn) {
  unauthorized = fn;
}

// waitForToken asks for a token (once for all callers waiting at the
// same time).
let asking = null;
export function waitForToken(message) {
  if (!asking) {
    asking = unauthorized(message).finally(() => { asking = null; });
  }
  return asking;
}

export function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

export function url(path) {
  return new URL(path, base);
}

// messageOf reads the {"message"} of an error answer.
export async function messageOf(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === 'string') return body.message;
  } catch (e) {
    // not JSON: a proxy's page
  }
  return res.status + ' ' + res.statusText;
}

// call sends one request and returns the decoded JSON answer (null for
// 204). A 401 asks for a token and sends the request again with it.
export async function call(method, path, body, { signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: headers(), cache: 'no-store', signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(url(path), init);
    if (res.status === 401 && attempt < 5) {
      const msg = await messageOf(res);
      await waitForToken(token() ? 'The server refused this token: ' + msg : '');
      continue;
    }
    if (!res.ok) throw new APIError(res.status, await messageOf(res));
    if (res.status === 204) return null;
    return res.json();
  }
}

// The per-host states of docs/API.md, by number.
export const hostStates = ['ANNOUNCE', 'OK', 'SKIPPED', 'FAILED', 'UNREACHABLE', 'CHANGED'];
export const jobStates = ['Done', 'Running', 'Failure'];
