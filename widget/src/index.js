// funnelrec widget entry: configuration, the command queue, page views, engagement, visits,
// privacy and consent, recommendation slots. Everything runs inside guards: the host page never
// sees an exception from here.
//
// Script tag attributes: data-site-key (required), data-endpoint (default: the script's origin),
// data-locale (default: <html lang>, then the browser), data-consent="required" (track nothing until
// funnelrec('consent', true)), data-respect-dnt="false" (ignore GPC and Do-Not-Track, for tenants
// whose legal basis allows it), data-spa="off" (no automatic page views on history navigation),
// data-nonce (nonce for the fallback <style> where constructable stylesheets are missing).
import { now, rid, get, set, safe, on, visible, asId, device } from './util.js';
import { visit, bump, readVisitor, storeVisitor, forget } from './session.js';
import { createTransport } from './transport.js';
import { createMeter, createScroll, SECTIONS } from './meter.js';
import { readContext, normalize } from './context.js';
import { createImpressions } from './impressions.js';
import { root, render, collapse, STATE } from './carousel.js';

const VERSION = typeof __VERSION__ == 'string' ? __VERSION__ : 'dev';
const HEARTBEAT = 20e3, REC_TIMEOUT = 5000, ACTIVITY = ['mousemove', 'mousedown', 'keydown', 'touchstart', 'wheel'];
const UK = '_fru';
const SELECT = {
  description: '[itemprop=description],#description,.product-description,.description',
  reviews: '#reviews,.reviews,[itemprop=review]',
  images: '.product-gallery,.product-images,.gallery',
};

function main() {
  const W = window, D = document, N = navigator;
  if (W.funnelrec && W.funnelrec.v) return; // loaded twice
  const sc = D.currentScript || D.querySelector('script[data-site-key]');
  const attr = (n) => (sc && sc.getAttribute('data-' + n)) || '';
  const key = attr('site-key');
  if (!key) return;
  const base = (attr('endpoint') || new URL(sc.src, location.href).origin).replace(/\/+$/, '');
  const locale = attr('locale') || D.documentElement.lang || N.language || 'en';
  const lang = locale.slice(0, 2).toLowerCase();
  const nonce = attr('nonce') || sc.nonce || '';
  const dnt = N.globalPrivacyControl === true || N.doNotTrack == '1' || W.doNotTrack == '1';
  const signals = dnt && attr('respect-dnt') != 'false';
  // consent: true = track, false = never, null = waiting for funnelrec('consent', ...)
  let consent = signals ? false : attr('consent') == 'required' ? null : true;
  let visitor = consent ? readVisitor() : null;
  let user = consent ? get(UK) : null;
  let pend = []; // events made while consent is pending (memory only)
  const vid = () => visitor || (visitor = (consent && readVisitor()) || 'v' + rid(20));

  const T = createTransport(base + '/v1/events', (events) => ({
    site_key: key,
    sent_at: now(),
    ctx: { webdriver: !!N.webdriver, dnt, lang: N.language, tz: tz() },
    events,
  }));
  if (consent) { storeVisitor(vid()); T.start(); }

  function emit(ev) {
    if (consent) T.push(ev);
    else if (consent === null && pend.length < 200) pend.push(ev);
  }

  // The current visit, starting a new one (and ending the old one) after 30 idle minutes.
  function sess(t) {
    const r = visit(t, !!consent);
    if (r.ended) {
      const x = r.ended;
      emit({ id: rid(), type: 'visit_end', visitor: vid(), session: x.id, ts: x.l, duration_ms: x.l - x.s, engaged_ms: Math.round(x.e), pages: x.p });
    }
    if (r.fresh) emit(base_({ id: rid(), type: 'visit_start', ts: t, referrer: D.referrer || null, landing: location.href.slice(0, 2048), device: device() }, r.s.id));
    return r.s.id;
  }
  function base_(ev, s) {
    ev.visitor = vid();
    ev.session = s;
    if (user) ev.user = user;
    return ev;
  }

  function track(type, f, t) {
    if (consent === false || !type) return;
    t = t || now();
    const ev = base_({ id: rid(), type: String(type) }, sess(t));
    ev.ts = t;
    for (const k in f || {}) if (f[k] !== undefined && ['id', 'type', 'visitor', 'session', 'ts'].indexOf(k) < 0) ev[k] = f[k];
    for (const k of ['product', 'order']) if (ev[k] != null) ev[k] = String(ev[k]);
    if (Array.isArray(ev.lines)) ev.lines = ev.lines.map((l) => ({ product: String(l.product != null ? l.product : l.id), quantity: +l.quantity || 1, price: l.price == null ? null : +l.price }));
    emit(ev);
  }

  // ---- page views, engagement, scroll, content sections ----
  let page = null, M = null, S = null, io = null, pageUrl = '', sentPct = -1, overrides = {}, started = false;

  function engagement() {
    if (!M) return;
    const t = now(), d = M.take(t);
    S.at(null);
    const sms = S.ms;
    S.ms = 0;
    const content = {};
    let any = 0;
    SECTIONS.forEach((k) => { if (d[k]) { content[k] = d[k]; any = 1; } });
    if (!d.e && !d.v && !sms && S.pct == sentPct) return;
    sentPct = S.pct;
    track('engagement', { page: page.page, product: page.product, engaged_ms: d.e, visible_ms: d.v, scroll_pct: S.pct, scroll_ms: sms, content_ms: any ? content : undefined }, t);
    bump((s) => { s.e += d.e; }, !!consent);
  }

  function pageView(ctx) {
    engagement();
    const t = now();
    const ref = pageUrl || D.referrer || null;
    page = normalize(Object.assign(readContext(), overrides, ctx || {}));
    overrides = {};
    pageUrl = location.href;
    M = createMeter(t, visible(), D.hasFocus());
    S = createScroll();
    S.at(null);
    sentPct = -1;
    if (io) io.disconnect();
    try {
      io = new IntersectionObserver((es) => es.forEach((e) => {
        const k = e.target.__fr;
        M.set(now(), (st) => { st.view[k] = e.isIntersecting; });
      }), { rootMargin: '-25% 0px' });
      SECTIONS.forEach((k) => {
        const x = D.querySelector('[data-funnelrec-content~="' + k + '"]') || D.querySelector(SELECT[k]);
        if (x) { x.__fr = k; io.observe(x); }
      });
    } catch (e) { /* no IntersectionObserver */ }
    track('page_view', {
      page: page.page, url: pageUrl.slice(0, 2048), referrer: ref && ref.slice(0, 2048), title: D.title.slice(0, 512) || undefined,
      product: page.product, category: page.category, query: page.query, device: device(),
    }, t);
    bump((s) => { s.p++; }, !!consent);
    if (page.page == 'search' && page.query) track('search', { query: page.query, results: page.results != null && page.results !== '' && !isNaN(page.results) ? +page.results : undefined }, t);
    slots();
  }

  function activity(t) {
    M.set(t, (st) => { st.last = t; });
  }
  let lastTouch = 0, lastAct = 0;
  ACTIVITY.concat('scroll').forEach((type) => on(D, type, (e) => {
    if (!M) return;
    const t = now();
    if (type == 'scroll') {
      if (e.target != D && e.target != D.documentElement) return;
      S.at(t);
    }
    if (t - lastAct < 500) return;
    lastAct = t;
    activity(t);
    if (consent && t - lastTouch > 10e3) { lastTouch = t; sess(t); }
  }));
  on(W, 'focus', () => { if (M) { const t = now(); M.set(t, (st) => { st.foc = true; st.last = t; }); } });
  on(W, 'blur', () => { if (M) M.set(now(), (st) => { st.foc = D.hasFocus(); }); });
  on(D, 'visibilitychange', () => {
    if (!M) return;
    const t = now(), v = visible();
    M.set(t, (st) => { st.vis = v; if (v) st.last = t; });
    if (!v) { engagement(); T.send(); }
  });
  on(W, 'pagehide', () => { engagement(); T.beacon(); });
  on(W, 'online', () => T.online());
  on(W, 'pageshow', (e) => { if (e.persisted) pageView(); }); // back from the bfcache
  // While the visitor is active, engaged time also goes out every HEARTBEAT ms (real-time recs).
  let beat = 0;
  setInterval(safe(() => { if (M && visible() && M.st.last > beat) { beat = now(); engagement(); } }), HEARTBEAT);

  // Single-page apps: history navigation to a new URL is a new page view.
  let navTimer = 0;
  const nav = () => {
    const strip = (u) => u.split('#')[0];
    if (strip(location.href) == strip(pageUrl)) return;
    clearTimeout(navTimer);
    navTimer = setTimeout(safe(() => pageView()), 100);
  };
  if (attr('spa') != 'off') {
    ['pushState', 'replaceState'].forEach((m) => {
      const o = history[m];
      if (typeof o == 'function') {
        history[m] = function () { const r = o.apply(this, arguments); safe(nav)(); return r; };
      }
    });
    on(W, 'popstate', nav);
  }

  // ---- recommendation slots: one request for every slot on the page ----
  const seen = {};
  let recSeq = 0;
  const imp = createImpressions((li) => {
    const x = li.__fr;
    const k = x.rec + '|' + x.slot + '|' + x.item;
    if (seen[k]) return;
    seen[k] = 1;
    track('rec_impression', { rec_id: x.rec, product: x.item, slot: x.slot, position: x.pos });
  });

  function slots() {
    const hosts = [].slice.call(D.querySelectorAll('[data-funnelrec-slot]'));
    if (!hosts.length) return;
    const req = [], by = {};
    hosts.forEach((h, i) => {
      const placement = h.getAttribute('data-funnelrec-slot');
      const id = (h.getAttribute('data-slot-id') || h.id || placement + '-' + i).slice(0, 64);
      if (by[id]) return;
      h.removeAttribute(STATE);
      by[id] = { h, placement, sr: root(h, nonce) };
      req.push({ id, placement, count: Math.min(+h.getAttribute('data-count') || 8, 50) });
    });
    const fail = () => req.forEach((r) => collapse(by[r.id].h));
    if (T.down()) return fail(); // the server is failing: do not add to its load
    const seq = ++recSeq; // a reply for an earlier page view (SPA) is ignored
    let ac = null, to = 0;
    try { ac = new AbortController(); to = setTimeout(() => ac.abort(), REC_TIMEOUT); } catch (e) { /* old browser */ }
    const body = {
      site_key: key, visitor: vid(), session: visit(now(), !!consent).s.id, user: user || null, locale: lang,
      page: { type: page.page, product: page.product, category: page.category, query: page.query, cart: page.cart, order: page.order },
      slots: req,
    };
    fetch(base + '/v1/recommend', { method: 'POST', body: JSON.stringify(body), credentials: 'omit', headers: { 'Content-Type': 'text/plain' }, signal: ac && ac.signal })
      .then((r) => (r.ok ? r.json() : null))
      .then(safe((j) => {
        clearTimeout(to);
        if (seq != recSeq) return;
        req.forEach((r) => {
          const s = by[r.id], data = j && j.slots && j.slots[r.id];
          const n = data ? render(s.h, s.sr, data, s.placement, {
            lang, locale, currency: j.currency, nonce,
            onItem: (li, it, pos) => { li.__fr = { rec: data.rec_id, slot: r.id, item: String(it.id), pos }; imp.observe(li); },
            onClick: (it, pos) => { track('rec_click', { rec_id: data.rec_id, product: String(it.id), slot: r.id, position: pos }); engagement(); },
          }) : 0;
          if (!n) collapse(s.h);
        });
      }))
      .catch(safe(() => { clearTimeout(to); fail(); }));
  }

  // ---- the public API and the command queue ----
  function setConsent(v) {
    v = !!v;
    if (v && !consent) {
      consent = true;
      visitor = readVisitor() || vid();
      storeVisitor(visitor);
      const sid = visit(now(), true).s.id;
      if (user) set(UK, user);
      T.start();
      // Events made while waiting take the stored ids; a waiting visit's start/end is moot
      // when a stored visit goes on.
      pend.forEach((e) => {
        if (e.session != sid && /^visit_/.test(e.type)) return;
        e.visitor = visitor;
        e.session = sid;
        T.push(e);
      });
    } else if (!v) {
      consent = false;
      T.stop();
      forget();
      set(UK);
      visitor = null;
    }
    pend = [];
  }

  const api = safe(function (cmd, a, b) {
    if (cmd == 'track') track(a, b);
    else if (cmd == 'page') { if (started) { clearTimeout(navTimer); pageView(a); } else Object.assign(overrides, a); }
    else if (cmd == 'identify') { user = asId(a); if (consent) set(UK, user); }
    else if (cmd == 'consent') setConsent(a);
    else if (cmd == 'flush') { engagement(); T.send(); }
  });
  api.v = VERSION;
  const queued = (W.funnelrec && W.funnelrec.q) || [];
  W.funnelrec = api;
  // Consent and identity first, so that the first page view already honours them.
  queued.forEach((c) => { if (c[0] == 'consent' || c[0] == 'identify' || c[0] == 'page') api.apply(null, c); });
  const start = safe(() => {
    if (started) return;
    started = true;
    pageView();
    queued.forEach((c) => { if (c[0] != 'consent' && c[0] != 'identify' && c[0] != 'page') api.apply(null, c); });
  });
  // A prerendered page (speculation rules) is not a page view until the visitor opens it.
  const go = () => (D.readyState == 'loading' ? on(D, 'DOMContentLoaded', start) : start());
  if (D.prerendering) on(D, 'prerenderingchange', go); else go();
}

function tz() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return undefined; }
}

safe(main)();
