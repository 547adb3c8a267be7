// Viewable impressions by the MRC rule: at least 50% of the element in view, in a visible tab,
// for one continuous second. Each element fires once. `seen(el, ratio)` is what the
// IntersectionObserver feeds; it is exported so that tests can drive it with a fake clock.
import { on, visible } from './util.js';

export const DWELL = 1000, MIN_RATIO = 0.5;

export function createImpressions(cb) {
  const ratio = new Map(), timers = new Map();
  let io = null;
  try {
    io = new IntersectionObserver((es) => es.forEach((e) => seen(e.target, e.isIntersecting ? e.intersectionRatio : 0)), { threshold: [0, MIN_RATIO, 1] });
  } catch (e) { /* no IntersectionObserver: no impressions */ }

  function update(el) {
    const ok = ratio.get(el) >= MIN_RATIO - 1e-3 && visible();
    if (ok && !timers.has(el)) {
      timers.set(el, setTimeout(() => {
        timers.delete(el); ratio.delete(el);
        if (io) io.unobserve(el);
        cb(el);
      }, DWELL));
    } else if (!ok && timers.has(el)) {
      clearTimeout(timers.get(el));
      timers.delete(el);
    }
  }
  function seen(el, r) {
    if (!ratio.has(el)) return;
    ratio.set(el, r);
    update(el);
  }
  on(document, 'visibilitychange', () => ratio.forEach((_, el) => update(el)));

  return {
    observe(el) { ratio.set(el, 0); if (io) io.observe(el); },
    seen,
  };
}
