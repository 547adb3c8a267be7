// Small helpers shared by every module. Nothing here may throw into the host page.

export const now = () => Math.floor(Date.now());

// A time-ordered id: the ms clock in base 36, then n random chars from [0-9a-z] (crypto when
// there is one). Time first keeps the shard's event-id index appending at its right edge.
export function rid(n = 12) {
  let s = '';
  try {
    for (const b of crypto.getRandomValues(new Uint8Array(n))) s += (b % 36).toString(36);
  } catch (e) {
    while (s.length < n) s += Math.random().toString(36).slice(2);
  }
  return now().toString(36) + s.slice(0, n);
}

// localStorage as JSON; every access guarded (private modes, blocked storage, full quota).
export function get(k) {
  try { return JSON.parse(localStorage.getItem(k)); } catch (e) { return null; }
}
export function set(k, v) {
  try { v == null ? localStorage.removeItem(k) : localStorage.setItem(k, JSON.stringify(v)); } catch (e) { /* full or blocked */ }
}

// Wrap a function so that it never throws (event handlers, public API).
export const safe = (f) => function () {
  try { return f.apply(this, arguments); } catch (e) { /* never into the host page */ }
};

// addEventListener, guarded, passive and capturing by default.
export function on(t, type, f, opts) {
  t.addEventListener(type, safe(f), opts || { capture: true, passive: true });
}

export const visible = () => document.visibilityState != 'hidden';

// Only absolute http(s) URLs pass; anything else (javascript:, data:, garbage) gives ''.
export function httpUrl(u) {
  try {
    const x = new URL(u, location.href);
    return /^https?:$/.test(x.protocol) ? x.href : '';
  } catch (e) { return ''; }
}

// Server ids are 1-64 chars of [A-Za-z0-9_.:-]. Anything else (an e-mail address, a name) is
// refused rather than sent: merchants pass an opaque customer number.
export const asId = (v) => (/^[\w.:-]{1,64}$/.test(v) ? String(v) : null);

export const device = () => {
  const u = navigator.userAgent;
  return /iPad|Tablet/.test(u) || (/Android/.test(u) && !/Mobile/.test(u)) ? 'tablet'
    : /Mobi|iPhone|Android/.test(u) ? 'mobile' : 'desktop';
};
