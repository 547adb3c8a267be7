// The built bundle (dist/funnelrec.min.js) in a happy-dom window: the command queue, privacy,
// consent, identity, a broken storage, loading twice, and a failing backend — the wiring that
// the module tests do not reach. The fetch and sendBeacon of the window are fakes.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Window } from 'happy-dom';

const BUNDLE = readFileSync(new URL('../dist/funnelrec.min.js', import.meta.url), 'utf8');
const STUB = 'window.funnelrec=window.funnelrec||function(){(funnelrec.q=funnelrec.q||[]).push(arguments)};';
let windows = [];

function shop({ attrs = '', body = '', before = () => {}, fetchReply = () => ({ status: 200, body: { ok: true } }) } = {}) {
  const w = new Window({ url: 'https://shop.example/p/1', width: 1024, height: 768 });
  windows.push(w);
  const sent = [], recs = [], beacons = [];
  w.fetch = async (url, init) => {
    const body = JSON.parse(init.body);
    (url.endsWith('/v1/recommend') ? recs : sent).push(body);
    const r = fetchReply(url, body);
    if (r === 'net') throw new TypeError('Failed to fetch');
    return { status: r.status, ok: r.status < 300, headers: { get: () => null }, json: async () => r.body };
  };
  w.navigator.sendBeacon = (url, body) => { beacons.push(JSON.parse(body)); return true; };
  w.document.head.innerHTML = `<meta name="funnelrec:page" content="detail"><meta name="funnelrec:product" content="p1">
    <script data-site-key="pk_test" data-endpoint="https://api.example/" ${attrs}></script>`;
  w.document.body.innerHTML = body;
  w.eval(STUB);
  before(w);
  const errors = [];
  w.addEventListener('error', (e) => errors.push(e));
  return { w, sent, recs, beacons, errors, load() { w.eval(BUNDLE); }, events: () => sent.flatMap((b) => b.events) };
}
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  for (const w of windows) { await w.happyDOM.abort(); w.close(); }
  windows = [];
});

test('queued calls run in order after load; the first page view takes the queued context', async () => {
  const s = shop();
  s.w.funnelrec('page', { category: 'Mugs' });
  s.w.funnelrec('track', 'add_to_cart', { product: 7, quantity: 2, id: 'not-overridable' });
  s.load();
  s.w.funnelrec('flush');
  await tick();
  const ev = s.events();
  assert.deepEqual(ev.map((e) => e.type), ['visit_start', 'page_view', 'add_to_cart', 'engagement']);
  const pv = ev[1], cart = ev[2];
  assert.equal(pv.page, 'detail');
  assert.equal(pv.product, 'p1');
  assert.equal(pv.category, 'Mugs');
  assert.equal(cart.product, '7');
  assert.notEqual(cart.id, 'not-overridable');
  assert.ok(ev.every((e) => /^[\w.:-]{1,64}$/.test(e.id) && e.visitor === ev[0].visitor && e.session === ev[0].session));
  const body = s.sent[0];
  assert.equal(body.site_key, 'pk_test');
  assert.equal(typeof body.sent_at, 'number');
  assert.equal(typeof body.ctx.webdriver, 'boolean');
  assert.equal(s.w.funnelrec.v.length > 0, true);
});

test('identify takes opaque ids and refuses e-mail addresses', async () => {
  const s = shop();
  s.load();
  s.w.funnelrec('identify', 'jane@example.com');
  s.w.funnelrec('track', 'search', { query: 'a' });
  s.w.funnelrec('identify', 'C-42');
  s.w.funnelrec('track', 'search', { query: 'b' });
  s.w.funnelrec('flush');
  await tick();
  const searches = s.events().filter((e) => e.type == 'search');
  assert.equal(searches[0].user, undefined);
  assert.equal(searches[1].user, 'C-42');
  assert.equal(JSON.stringify(s.sent).includes('jane'), false);
});

test('Global Privacy Control: nothing sent or stored, carousels still asked for', async () => {
  const s = shop({ body: '<div data-funnelrec-slot="detail_similar"></div>', before: (w) => Object.defineProperty(w.navigator, 'globalPrivacyControl', { value: true }) });
  s.load();
  s.w.funnelrec('track', 'add_to_cart', { product: 'p1' });
  s.w.funnelrec('flush');
  await tick(20);
  assert.equal(s.sent.length, 0);
  assert.equal(s.recs.length, 1);
  assert.deepEqual(Object.keys(s.w.localStorage).filter((k) => k.startsWith('_fr')), []);
  assert.equal(s.w.document.cookie.includes('_frv'), false);
});

test('data-respect-dnt="false" tracks despite Do-Not-Track, and says so in the context', async () => {
  const s = shop({ attrs: 'data-respect-dnt="false"', before: (w) => Object.defineProperty(w.navigator, 'doNotTrack', { value: '1' }) });
  s.load();
  s.w.funnelrec('flush');
  await tick();
  assert.ok(s.sent.length > 0);
  assert.equal(s.sent[0].ctx.dnt, true);
});

test('consent required: events wait in memory, go out with stored ids on consent', async () => {
  const s = shop({ attrs: 'data-consent="required"' });
  s.load();
  s.w.funnelrec('track', 'add_to_cart', { product: 'p1' });
  s.w.funnelrec('flush');
  await tick();
  assert.equal(s.sent.length, 0);
  assert.equal(s.w.localStorage.getItem('_frv'), null);
  s.w.funnelrec('consent', true);
  s.w.funnelrec('flush');
  await tick();
  const ev = s.events();
  assert.deepEqual(ev.map((e) => e.type).slice(0, 3), ['visit_start', 'page_view', 'add_to_cart']);
  const vid = JSON.parse(s.w.localStorage.getItem('_frv'));
  assert.ok(ev.every((e) => e.visitor === vid));
  s.w.funnelrec('consent', false);
  assert.deepEqual(Object.keys(s.w.localStorage).filter((k) => k != '_frb' && k.startsWith('_fr')), []);
});

test('a storage that throws on every access does not break anything', async () => {
  const s = shop({
    before: (w) => Object.defineProperty(w, 'localStorage', { get() { throw new Error('SecurityError'); } }),
  });
  s.load();
  s.w.funnelrec('track', 'add_to_cart', { product: 'p1' });
  s.w.funnelrec('flush');
  await tick();
  assert.ok(s.events().some((e) => e.type == 'add_to_cart'));
  assert.deepEqual(s.errors, []);
});

test('loading the script twice makes one page view', async () => {
  const s = shop();
  s.load();
  s.load();
  s.w.funnelrec('flush');
  await tick();
  assert.equal(s.events().filter((e) => e.type == 'page_view').length, 1);
});

test('a failing backend: no exception, the slot is given up, one recommendation request', async () => {
  const s = shop({ body: '<div data-funnelrec-slot="main"></div>', fetchReply: () => 'net' });
  s.load();
  s.w.funnelrec('flush');
  await tick(20);
  assert.equal(s.recs.length, 1);
  assert.deepEqual(s.errors, []);
  assert.ok(s.w.localStorage.getItem('_frq'), 'events kept for later');
  assert.ok(JSON.parse(s.w.localStorage.getItem('_frb')).n >= 1, 'backing off');
});

test('pagehide hands the rest to sendBeacon', async () => {
  const s = shop({ fetchReply: () => 'net' });
  s.load();
  s.w.dispatchEvent(new s.w.Event('pagehide'));
  assert.ok(s.beacons.length >= 1);
  assert.ok(s.beacons.flatMap((b) => b.events).some((e) => e.type == 'page_view'));
  assert.equal(s.w.localStorage.getItem('_frq'), null);
});

test('a prerendered page counts only once it is shown', async () => {
  const s = shop({ before: (w) => Object.defineProperty(w.document, 'prerendering', { value: true, configurable: true }) });
  s.load();
  s.w.funnelrec('flush');
  await tick();
  assert.equal(s.sent.length, 0);
  Object.defineProperty(s.w.document, 'prerendering', { value: false, configurable: true });
  s.w.document.dispatchEvent(new s.w.Event('prerenderingchange'));
  s.w.funnelrec('flush');
  await tick();
  assert.equal(s.events().filter((e) => e.type == 'page_view').length, 1);
});
