import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom, T0 } from './dom.js';
import { createMeter, createScroll, IDLE, GAP } from '../src/meter.js';

beforeEach(() => setupDom());

test('engaged time counts only while visible, focused and recently active', () => {
  const m = createMeter(T0, true, true);
  // active for 10 s (activity every 5 s)
  m.set(T0 + 5000, (s) => { s.last = T0 + 5000; });
  m.set(T0 + 10000, (s) => { s.last = T0 + 10000; });
  // hidden for a minute
  m.set(T0 + 10000, (s) => { s.vis = false; });
  m.set(T0 + 70000, (s) => { s.vis = true; s.last = T0 + 70000; });
  const d = m.take(T0 + 73000);
  assert.equal(d.e, 13000);
  assert.equal(d.v, 13000);
});

test('engaged time stops IDLE ms after the last activity; visible time does not', () => {
  const m = createMeter(T0, true, true);
  const d = m.take(T0 + 60000);
  assert.equal(d.e, IDLE);
  assert.equal(d.v, 60000);
  // activity resumes
  m.set(T0 + 60000, (s) => { s.last = T0 + 60000; });
  assert.equal(m.take(T0 + 62000).e, 2000);
});

test('losing focus stops engaged time but not visible time', () => {
  const m = createMeter(T0, true, true);
  m.set(T0 + 3000, (s) => { s.foc = false; });
  m.set(T0 + 8000, (s) => { s.foc = true; s.last = T0 + 8000; });
  const d = m.take(T0 + 10000);
  assert.equal(d.e, 5000);
  assert.equal(d.v, 10000);
});

test('take() returns deltas', () => {
  const m = createMeter(T0, true, true);
  assert.equal(m.take(T0 + 4000).e, 4000);
  assert.equal(m.take(T0 + 4000).e, 0);
  assert.equal(m.take(T0 + 5000).e, 1000);
});

test('a page opened in a background tab accrues nothing until shown', () => {
  const m = createMeter(T0, false, false);
  m.set(T0 + 30000, (s) => { s.vis = true; s.foc = true; s.last = T0 + 30000; });
  const d = m.take(T0 + 31000);
  assert.equal(d.e, 1000);
  assert.equal(d.v, 1000);
});

test('content time counts engaged time while a section is in view', () => {
  const m = createMeter(T0, true, true);
  m.set(T0 + 1000, (s) => { s.view.reviews = true; s.last = T0 + 1000; });
  m.set(T0 + 4000, (s) => { s.view.reviews = false; s.view.description = true; s.last = T0 + 4000; });
  m.set(T0 + 6000, (s) => { s.vis = false; });          // hidden: nothing counts
  m.set(T0 + 20000, (s) => { s.vis = true; s.last = T0 + 20000; });
  const d = m.take(T0 + 21000);
  assert.equal(d.reviews, 3000);
  assert.equal(d.description, 3000);
  assert.equal(d.images, 0);
});

test('scroll depth is the max seen; scroll time sums gaps shorter than GAP', () => {
  document.body.style.height = '4000px';
  Object.defineProperty(document.documentElement, 'scrollHeight', { value: 4000, configurable: true });
  const s = createScroll();
  s.at(null);
  assert.equal(s.pct, Math.round((768 / 4000) * 100));
  Object.defineProperty(window, 'scrollY', { value: 1232, configurable: true }); // (1232 + 768) / 4000 = 50%
  s.at(T0);
  s.at(T0 + 200);
  s.at(T0 + 400);
  assert.equal(s.pct, 50);
  assert.equal(s.ms, 400);
  s.at(T0 + 400 + GAP + 1); // a new burst: the pause is not scroll time
  assert.equal(s.ms, 400);
  Object.defineProperty(window, 'scrollY', { value: 0, configurable: true });
  s.at(T0 + 5000);
  assert.equal(s.pct, 50, 'depth is a maximum');
});

test('a page shorter than the viewport is fully seen', () => {
  Object.defineProperty(document.documentElement, 'scrollHeight', { value: 500, configurable: true });
  const s = createScroll();
  s.at(null);
  assert.equal(s.pct, 100);
});
