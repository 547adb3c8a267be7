import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom, setVisibility, T0 } from './dom.js';
import { createImpressions, DWELL } from '../src/impressions.js';

let fired, imp, el;
beforeEach(() => {
  setupDom();
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  fired = [];
  imp = createImpressions((e) => fired.push(e));
  el = document.createElement('li');
  imp.observe(el);
});
afterEach(() => mock.timers.reset());

test('an item 50% in view for one continuous second is an impression', () => {
  imp.seen(el, 0.5);
  mock.timers.tick(DWELL - 1);
  assert.equal(fired.length, 0);
  mock.timers.tick(1);
  assert.deepEqual(fired, [el]);
});

test('less than half in view never counts', () => {
  imp.seen(el, 0.49);
  mock.timers.tick(10 * DWELL);
  assert.equal(fired.length, 0);
});

test('the second must be continuous: leaving the view restarts it', () => {
  imp.seen(el, 1);
  mock.timers.tick(900);
  imp.seen(el, 0.2);
  mock.timers.tick(500);
  imp.seen(el, 0.8);
  mock.timers.tick(900);
  assert.equal(fired.length, 0, '900 + 900 ms apart is not one second');
  mock.timers.tick(100);
  assert.equal(fired.length, 1);
});

test('a hidden tab pauses and restarts the second', () => {
  imp.seen(el, 1);
  mock.timers.tick(600);
  setVisibility('hidden');
  mock.timers.tick(5000);
  assert.equal(fired.length, 0);
  setVisibility('visible');
  mock.timers.tick(999);
  assert.equal(fired.length, 0);
  mock.timers.tick(1);
  assert.equal(fired.length, 1);
});

test('no impression starts in a hidden tab', () => {
  setVisibility('hidden');
  imp.seen(el, 1);
  mock.timers.tick(5000);
  assert.equal(fired.length, 0);
});

test('each element fires once', () => {
  imp.seen(el, 1);
  mock.timers.tick(DWELL);
  imp.seen(el, 0);
  imp.seen(el, 1);
  mock.timers.tick(5 * DWELL);
  assert.equal(fired.length, 1);
});

test('elements never observed are ignored', () => {
  const other = document.createElement('li');
  imp.seen(other, 1);
  mock.timers.tick(5 * DWELL);
  assert.equal(fired.length, 0);
});
