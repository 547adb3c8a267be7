// Visitor and visit (session) ids.
//
// The visitor id is first-party: localStorage, mirrored to a first-party cookie so that it
// survives where one of the two is cleared or blocked. A visit ends after 30 minutes without
// activity; the next activity starts a new one. The visit record lives in localStorage, so all
// tabs of the shop share it: {id, s: start ms, l: last activity ms, p: pages, e: engaged ms}.
import { get, set, rid } from './util.js';

export const VISIT_GAP = 30 * 60e3;
const VK = '_frv', SK = '_frs', CK = '_frv';

let mem = null; // the visit when storage is not allowed (no consent) or not available

export function readVisitor() {
  let v = get(VK);
  if (!v) {
    try { const m = document.cookie.match(/(?:^|; )_frv=([\w-]{8,64})/); v = m && m[1]; } catch (e) { /* blocked */ }
  }
  return v || null;
}

export function storeVisitor(v) {
  set(VK, v);
  try {
    document.cookie = CK + '=' + v + ';path=/;max-age=31536000;SameSite=Lax' + (location.protocol == 'https:' ? ';Secure' : '');
  } catch (e) { /* blocked */ }
}

// Forget everything this widget stored (consent withdrawn).
export function forget() {
  set(VK); set(SK); mem = null;
  try { document.cookie = CK + '=;path=/;max-age=0'; } catch (e) { /* blocked */ }
}

// The visit at time t. Returns {s: visit, ended: the visit that just timed out or null,
// fresh: true when this call started a new visit}. `persist` decides whether storage is used.
export function visit(t, persist) {
  let s = (persist && get(SK)) || mem, ended = null, fresh = false;
  if (!s || !s.id || t - s.l > VISIT_GAP) {
    ended = s && s.id ? s : null;
    s = { id: rid(), s: t, l: t, p: 0, e: 0 };
    fresh = true;
  }
  if (t > s.l) s.l = t;
  mem = s;
  if (persist) set(SK, s);
  return { s, ended, fresh };
}

// Record something on the current visit (pages, engaged ms) without touching its activity time.
export function bump(f, persist) {
  const s = (persist && get(SK)) || mem;
  if (s) { f(s); mem = s; if (persist) set(SK, s); }
}
