// Time meters for one page view, driven by state changes with explicit timestamps (so they are
// testable with a fake clock and cost nothing between events).
//
//   v            visible time: the tab is visible
//   e            engaged time: visible, focused, and the visitor was active in the last IDLE ms
//   description, reviews, images: engaged time while that section is in view
//
// `set(t, f)` closes the running intervals under the old state, applies f to the state, and
// reopens them under the new one. `take(t)` returns the time accrued since the last take.
export const IDLE = 15e3;
export const SECTIONS = ['description', 'reviews', 'images'];
const KEYS = ['v', 'e'].concat(SECTIONS);

export function createMeter(t, vis, foc) {
  const st = { vis, foc, last: t, view: {} }, acc = {}, since = {};
  const on = (k, t) => st.vis && (k == 'v' || (st.foc && t - st.last < IDLE && (k == 'e' || st.view[k])));

  function settle(t) {
    for (const k of KEYS) {
      if (since[k] != null) {
        const end = k == 'v' ? t : Math.min(t, st.last + IDLE);
        if (end > since[k]) acc[k] = (acc[k] || 0) + end - since[k];
      }
      since[k] = on(k, t) ? t : null;
    }
  }
  settle(t);

  return {
    st,
    set(t, f) { settle(t); f(st); settle(t); },
    take(t) {
      settle(t);
      const o = {};
      for (const k of KEYS) { o[k] = Math.round(acc[k] || 0); acc[k] = 0; }
      return o;
    },
  };
}

// Scroll depth (max % of the document seen) and scroll time (sum of the gaps between scroll
// events that follow each other within GAP ms: the time spent actually scrolling).
export const GAP = 1000;
export function createScroll() {
  let last = -1e15;
  const s = { pct: 0, ms: 0 };
  s.at = (t) => {
    const d = document.documentElement, b = document.body;
    const h = Math.max(d.scrollHeight, b ? b.scrollHeight : 0), vh = innerHeight;
    const y = window.scrollY || d.scrollTop || 0;
    const p = h <= vh ? 100 : Math.min(100, Math.round(((y + vh) / h) * 100));
    if (p > s.pct) s.pct = p;
    if (t != null) {
      if (t - last < GAP && t > last) s.ms += t - last;
      last = t;
    }
  };
  return s;
}
