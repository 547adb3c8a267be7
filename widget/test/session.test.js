import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom, T0 } from './dom.js';
import { visit, bump, readVisitor, storeVisitor, forget, VISIT_GAP } from '../src/session.js';

beforeEach(() => { setupDom(); forget(); });

test('a visit goes on while activity is less than 30 minutes apart', () => {
  const a = visit(T0, true);
  assert.equal(a.fresh, true);
  assert.equal(a.ended, null);
  const b = visit(T0 + VISIT_GAP - 1, true);
  assert.equal(b.fresh, false);
  assert.equal(b.s.id, a.s.id);
  const c = visit(T0 + 2 * VISIT_GAP - 2, true); // 30 min after the last activity, not the start
  assert.equal(c.s.id, a.s.id);
});

test('30 idle minutes end the visit and report its summary', () => {
  const a = visit(T0, true);
  bump((s) => { s.p += 2; s.e += 5000; }, true);
  visit(T0 + 60000, true);
  const b = visit(T0 + 60000 + VISIT_GAP + 1, true);
  assert.equal(b.fresh, true);
  assert.notEqual(b.s.id, a.s.id);
  assert.equal(b.ended.id, a.s.id);
  assert.equal(b.ended.l - b.ended.s, 60000); // duration: first to last activity
  assert.equal(b.ended.p, 2);
  assert.equal(b.ended.e, 5000);
});

test('the visit is shared through storage (other tabs, next page)', () => {
  const a = visit(T0, true);
  assert.equal(JSON.parse(localStorage.getItem('_frs')).id, a.s.id);
  localStorage.setItem('_frs', JSON.stringify({ id: 'othertab', s: T0, l: T0 + 1000, p: 3, e: 0 }));
  assert.equal(visit(T0 + 2000, true).s.id, 'othertab');
});

test('without consent nothing is stored', () => {
  const a = visit(T0, false);
  assert.equal(localStorage.getItem('_frs'), null);
  assert.equal(visit(T0 + 1000, false).s.id, a.s.id);
});

test('the visitor id lives in localStorage and a first-party cookie; forget() clears both', () => {
  assert.equal(readVisitor(), null);
  storeVisitor('vabcdefghij');
  assert.equal(readVisitor(), 'vabcdefghij');
  assert.match(document.cookie, /_frv=vabcdefghij/);
  localStorage.clear(); // storage cleared: the cookie still knows
  assert.equal(readVisitor(), 'vabcdefghij');
  forget();
  assert.equal(readVisitor(), null);
});
