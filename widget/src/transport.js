// Delivery of events: batches, a bounded localStorage queue, backoff, beacons.
//
// - Events are queued in memory and mirrored to localStorage (at most MAX_Q, oldest dropped), so
//   that nothing is lost when the page closes or the server is down; the next page sends them.
//   Tabs share the stored queue: a tab writes back what it has not sent plus what other tabs
//   stored and it did not send itself. Event ids make repeats harmless (the server stores once).
// - A batch is sent DELAY ms after the first queued event (at once when BATCH are waiting) with
//   fetch (text/plain: no CORS preflight; keepalive so it survives a closing tab).
// - 2xx: done. 4xx (but 408/429): the batch can never succeed: dropped. 413: split in halves.
//   5xx, 408, 429, network error: exponential backoff with jitter, at least Retry-After; the
//   backoff is stored too, so new pages do not hammer a server that is down. Offline: wait for
//   the `online` event.
// - On pagehide the rest goes with sendBeacon, split in halves when the browser refuses a batch.
import { get, set, now } from './util.js';

export const MAX_Q = 300, BATCH = 50, DELAY = 1000, BASE = 2000, MAX_BACKOFF = 5 * 60e3, MAX_BYTES = 60000;
const QK = '_frq', BK = '_frb';

export function createTransport(url, wrap) {
  let q = get(QK) || [], busy = 0, timer = 0, max = BATCH, persist = false;
  const done = {};
  let bo = get(BK) || { n: 0, at: 0 };

  function save() {
    if (!persist) return;
    const mine = {};
    q.forEach((e) => { mine[e.id] = 1; });
    const other = (get(QK) || []).filter((e) => e && !mine[e.id] && !done[e.id]);
    const all = other.concat(q);
    set(QK, all.length ? all.slice(-MAX_Q) : null);
  }

  function schedule(d, now_) {
    if (now_) { clearTimeout(timer); timer = 0; }
    if (timer || !q.length) return;
    timer = setTimeout(() => { timer = 0; send(); }, Math.max(d, bo.at - now(), 0));
  }

  // The next batch: at most `n` events and about MAX_BYTES of body.
  function take(n) {
    const b = [];
    let size = 300;
    for (const e of q) {
      size += JSON.stringify(e).length + 1;
      if (b.length >= n || (b.length && size > MAX_BYTES)) break;
      b.push(e);
    }
    return b;
  }

  function remove(b) {
    b.forEach((e) => { done[e.id] = 1; });
    q = q.filter((e) => !done[e.id]);
  }

  function backoff(r, ra) {
    bo.n = Math.min(bo.n + 1, 20);
    let d = Math.min(MAX_BACKOFF, BASE * 2 ** (bo.n - 1)) * (0.5 + Math.random() / 2);
    if (ra > 0) d = Math.max(d, Math.min(ra * 1000, 3600e3));
    bo.at = now() + Math.round(d);
    set(BK, bo);
  }

  async function send() {
    if (busy || !q.length) return;
    if (navigator.onLine === false) return; // the `online` listener resumes
    if (bo.at > now()) return schedule(0);
    const b = take(max), body = JSON.stringify(wrap(b));
    busy = 1;
    let r = null, st = 0, ra = 0;
    try {
      r = await fetch(url, { method: 'POST', body, keepalive: body.length < MAX_BYTES, credentials: 'omit', headers: { 'Content-Type': 'text/plain' } });
      st = r.status;
      if (st == 429 || st == 503) {
        ra = +r.headers.get('Retry-After');
        if (!ra) { try { ra = +(await r.json()).retry_after; } catch (e) { /* no body */ } }
      }
    } catch (e) { /* network error, blocked, offline */ }
    busy = 0;
    if (st == 413 && b.length > 1) max = Math.ceil(b.length / 2);
    else if ((st >= 200 && st < 300) || (st >= 400 && st < 500 && st != 408 && st != 429)) {
      remove(b);
      if (bo.n) { bo = { n: 0, at: 0 }; set(BK, null); }
      if (st < 300) max = BATCH;
    } else backoff(r, ra);
    save();
    schedule(0);
  }

  // The page is going away: hand everything not in flight to sendBeacon.
  function beacon() {
    if (!persist) return;
    let n = BATCH;
    while (q.length) {
      const b = take(n);
      let ok = false;
      try { ok = navigator.sendBeacon(url, JSON.stringify(wrap(b))); } catch (e) { /* no beacon */ }
      if (ok) remove(b); else if (b.length > 1) n = Math.ceil(b.length / 2);
      else break; // refused even alone: stays stored for the next page
    }
    save();
  }

  return {
    push(e) {
      q.push(e);
      if (q.length > MAX_Q) q.splice(0, q.length - MAX_Q);
      save();
      schedule(q.length >= BATCH ? 0 : DELAY, q.length >= BATCH);
    },
    // Start storing and sending (consent given). Sends anything left by earlier pages.
    start() { persist = true; save(); schedule(0); },
    // Stop and forget (consent withdrawn).
    stop() { persist = false; q = []; set(QK, null); },
    // Send now (tab hidden, flush): the fetch starts before this returns.
    send() { clearTimeout(timer); timer = 0; send(); },
    beacon,
    online() { bo.at = 0; schedule(0); },
    // True while the server is backing us off (used to skip recommendation requests).
    down: () => bo.at > now(),
    get bo() { return bo; },
  };
}
