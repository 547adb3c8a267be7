import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom, settle, T0 } from './dom.js';
import { createTransport, DELAY, BASE, BATCH, MAX_Q, MAX_BACKOFF } from '../src/transport.js';

let calls, replies, beacons, beaconOk;
const wrap = (events) => ({ site_key: 'pk_test', events });
const ev = (i) => ({ id: 'e' + i, type: 'page_view', visitor: 'v', session: 's', ts: T0, page: 'main' });
const reply = (status, headers = {}, body = {}) => ({ status, ok: status < 300, headers: { get: (k) => headers[k] ?? null }, json: async () => body });

beforeEach(() => {
  setupDom();
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  calls = []; replies = []; beacons = []; beaconOk = () => true;
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init, events: JSON.parse(init.body).events });
    const r = replies.shift() || 200;
    if (r === 'net') throw new TypeError('Failed to fetch');
    return typeof r == 'number' ? reply(r) : r;
  };
  navigator.sendBeacon = (url, body) => { const ok = beaconOk(JSON.parse(body).events); if (ok) beacons.push(JSON.parse(body).events); return ok; };
  Object.defineProperty(navigator, 'onLine', { value: true, configurable: true });
});
afterEach(() => mock.timers.reset());

async function tick(ms) { mock.timers.tick(ms); await settle(); }
const stored = () => JSON.parse(localStorage.getItem('_frq') || '[]').map((e) => e.id);

test('events are batched and sent DELAY ms after the first one, as text/plain', async () => {
  const t = createTransport('https://api/v1/events', wrap);
  t.start();
  t.push(ev(1)); t.push(ev(2));
  await tick(DELAY - 1);
  assert.equal(calls.length, 0);
  await tick(1);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].events.map((e) => e.id), ['e1', 'e2']);
  assert.equal(calls[0].init.headers['Content-Type'], 'text/plain');
  assert.equal(calls[0].init.keepalive, true);
  assert.equal(calls[0].init.credentials, 'omit');
  assert.deepEqual(stored(), [], 'sent events leave the stored queue');
});

test('a full batch goes at once; more than BATCH events take several requests', async () => {
  const t = createTransport('u', wrap);
  t.start();
  for (let i = 0; i < BATCH + 5; i++) t.push(ev(i));
  await tick(0);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].events.length, BATCH);
  await tick(0);
  assert.equal(calls.length, 2);
  assert.equal(calls[1].events.length, 5);
});

test('5xx and network errors back off exponentially with jitter, then deliver', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = [500, 'net', 503, 200];
  t.push(ev(1));
  await tick(DELAY);
  assert.equal(calls.length, 1);
  const delays = [];
  for (let k = 1; k <= 3; k++) {
    const wait = t.bo.at - Date.now();
    const nominal = BASE * 2 ** (k - 1);
    assert.ok(wait >= nominal / 2 && wait <= nominal, `attempt ${k}: ${wait} within [${nominal / 2}, ${nominal}]`);
    delays.push(wait);
    await tick(wait - 1);
    assert.equal(calls.length, k, 'no retry before the backoff ends');
    await tick(1);
    assert.equal(calls.length, k + 1);
  }
  assert.deepEqual(stored(), []);
  assert.equal(t.bo.n, 0, 'success resets the backoff');
  assert.equal(localStorage.getItem('_frb'), null);
  assert.deepEqual(calls.map((c) => c.events[0].id), ['e1', 'e1', 'e1', 'e1'], 'the same event ids are retried');
});

test('the backoff is capped at MAX_BACKOFF', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = Array(30).fill(500);
  t.push(ev(1));
  await tick(DELAY);
  for (let i = 0; i < 15; i++) await tick(t.bo.at - Date.now());
  assert.ok(t.bo.at - Date.now() <= MAX_BACKOFF);
});

test('429 honours Retry-After (header or JSON body)', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = [reply(429, { 'Retry-After': '30' }), reply(429, {}, { retry_after: 45 }), 200];
  t.push(ev(1));
  await tick(DELAY);
  assert.ok(t.bo.at - Date.now() >= 30000);
  await tick(29999);
  assert.equal(calls.length, 1);
  await tick(t.bo.at - Date.now());
  assert.equal(calls.length, 2);
  assert.ok(t.bo.at - Date.now() >= 45000);
  await tick(t.bo.at - Date.now());
  assert.equal(calls.length, 3);
  assert.deepEqual(stored(), []);
});

test('4xx drops the batch without retrying', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = [400];
  t.push(ev(1));
  await tick(DELAY);
  await tick(MAX_BACKOFF);
  assert.equal(calls.length, 1);
  assert.deepEqual(stored(), []);
});

test('413 splits the batch in halves', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = [413, 200, 200];
  for (let i = 0; i < 10; i++) t.push(ev(i));
  await tick(DELAY);
  await tick(0); await tick(0);
  assert.deepEqual(calls.map((c) => c.events.length), [10, 5, 5]);
  assert.deepEqual(stored(), []);
});

test('offline: nothing is sent until the online event', async () => {
  const t = createTransport('u', wrap);
  t.start();
  Object.defineProperty(navigator, 'onLine', { value: false, configurable: true });
  t.push(ev(1));
  await tick(DELAY * 10);
  assert.equal(calls.length, 0);
  Object.defineProperty(navigator, 'onLine', { value: true, configurable: true });
  t.online();
  await tick(0);
  assert.equal(calls.length, 1);
});

test('the stored queue is bounded (oldest dropped) and survives to the next page', async () => {
  replies = Array(10).fill('net');
  const t = createTransport('u', wrap);
  t.start();
  for (let i = 0; i < MAX_Q + 20; i++) t.push(ev(i));
  await tick(0);
  const s = stored();
  assert.equal(s.length, MAX_Q);
  assert.equal(s[0], 'e20');
  // the next page: a new transport picks the stored events up, honouring the stored backoff
  calls = []; replies = [];
  const bo = JSON.parse(localStorage.getItem('_frb'));
  assert.ok(bo.at > Date.now());
  const t2 = createTransport('u', wrap);
  t2.start();
  await tick(0);
  assert.equal(calls.length, 0, 'a new page does not skip the backoff');
  await tick(bo.at - Date.now());
  assert.ok(calls.length >= 1);
  while (stored().length) await tick(0);
  assert.equal(new Set(calls.flatMap((c) => c.events.map((e) => e.id))).size, MAX_Q);
});

test('tabs share the stored queue without losing each other\'s events', async () => {
  replies = Array(10).fill('net');
  const a = createTransport('u', wrap); a.start();
  const b = createTransport('u', wrap); b.start();
  a.push(ev('a1'));
  b.push(ev('b1'));
  a.push(ev('a2'));
  assert.deepEqual(stored().sort(), ['ea1', 'ea2', 'eb1']);
});

test('pagehide: sendBeacon, splitting a refused batch', async () => {
  const t = createTransport('u', wrap);
  t.start();
  beaconOk = (events) => events.length <= 3;
  for (let i = 0; i < 10; i++) t.push(ev(i));
  t.beacon();
  assert.deepEqual(beacons.map((b) => b.length), [3, 3, 3, 1]);
  assert.deepEqual(stored(), []);
});

test('a beacon refused even for one event leaves it stored for the next page', async () => {
  const t = createTransport('u', wrap);
  t.start();
  beaconOk = () => false;
  t.push(ev(1));
  t.beacon();
  assert.deepEqual(stored(), ['e1']);
});

test('before start() (consent pending) nothing is stored; stop() forgets', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = ['net'];
  t.push(ev(1));
  await tick(DELAY);
  assert.deepEqual(stored(), ['e1']);
  t.stop();
  assert.deepEqual(stored(), []);
});

test('down() is true while backing off', async () => {
  const t = createTransport('u', wrap);
  t.start();
  replies = ['net'];
  t.push(ev(1));
  assert.equal(t.down(), false);
  await tick(DELAY);
  assert.equal(t.down(), true);
});
