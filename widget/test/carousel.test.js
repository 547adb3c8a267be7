import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom } from './dom.js';
import { root, render, price, TITLES } from '../src/carousel.js';

const opts = (extra = {}) => ({ lang: 'en', locale: 'en-US', currency: 'USD', onItem() {}, onClick() {}, ...extra });
let host;
beforeEach(() => {
  setupDom();
  document.body.innerHTML = '<div id="s" data-funnelrec-slot="detail_similar"></div>';
  host = document.getElementById('s');
});

test('a hostile title is text, and only http(s) URLs are used', () => {
  const sr = root(host);
  const n = render(host, sr, {
    rec_id: 'r1',
    items: [
      { id: 'p1', title: '<img src=x onerror=alert(1)>', url: 'https://shop.example/p1', image: 'javascript:alert(1)', price: 10 },
      { id: 'p2', title: 'bad link', url: 'javascript:alert(1)' },
      { id: 'p3', title: 'data', url: 'data:text/html,<script>alert(1)</script>' },
      { id: 'p4', title: 'ok', url: '/p4', image: 'https://cdn.example/p4.jpg' },
    ],
  }, 'detail_similar', opts());
  assert.equal(n, 2);
  assert.equal(sr.querySelectorAll('img[src]').length, 1, 'javascript: image is not loaded');
  assert.equal(sr.querySelector('.n').textContent, '<img src=x onerror=alert(1)>');
  assert.equal(sr.querySelectorAll('.n img').length, 0);
  const hrefs = [...sr.querySelectorAll('a')].map((a) => a.getAttribute('href'));
  assert.deepEqual(hrefs, ['https://shop.example/p1', 'https://shop.example/p4']);
  assert.equal(sr.querySelectorAll('[style]').length, 0, 'no style attributes');
});

test('region, label, list semantics and buttons', () => {
  const sr = root(host);
  render(host, sr, { items: [{ id: 'a', title: 'A', url: 'https://x/a' }] }, 'detail_similar', opts());
  const region = sr.querySelector('[role=region]');
  assert.equal(region.getAttribute('aria-label'), TITLES.en.detail_similar);
  assert.equal(region.getAttribute('aria-roledescription'), 'carousel');
  assert.equal(sr.querySelector('ul').getAttribute('role'), 'list');
  assert.deepEqual([...sr.querySelectorAll('button')].map((b) => b.getAttribute('aria-label')), ['Previous', 'Next']);
  assert.equal(sr.querySelector('img').getAttribute('loading'), 'lazy');
});

test('Korean titles built in; the merchant data-title wins', () => {
  let sr = root(host);
  render(host, sr, { items: [{ id: 'a', title: 'A', url: 'https://x/a' }] }, 'cart', opts({ lang: 'ko' }));
  assert.equal(sr.querySelector('h2').textContent, '함께 담으면 좋은 상품');
  host.setAttribute('data-title', 'Merchant title');
  sr = root(host);
  render(host, sr, { items: [{ id: 'a', title: 'A', url: 'https://x/a' }] }, 'cart', opts({ lang: 'ko' }));
  assert.equal(sr.querySelector('h2').textContent, 'Merchant title');
  assert.equal(sr.querySelectorAll('section').length, 1, 're-rendering replaces the old carousel');
});

test('prices in the tenant currency and locale', () => {
  assert.equal(price(12000, 'KRW', 'ko-KR'), '₩12,000');
  assert.equal(price(19.5, 'USD', 'en-US'), '$19.50');
  assert.equal(price(null, 'USD', 'en-US'), '');
  assert.equal(price(5, 'NOT-A-CURRENCY', 'en'), '5');
});

test('clicks report the item and its position', () => {
  const clicks = [];
  const sr = root(host);
  render(host, sr, { items: [{ id: 'a', title: 'A', url: 'https://x/a' }, { id: 'b', title: 'B', url: 'https://x/b' }] }, 'main', opts({ onClick: (it, i) => clicks.push([it.id, i]) }));
  const a = sr.querySelectorAll('a')[1];
  a.addEventListener('click', (e) => e.preventDefault());
  a.click();
  assert.deepEqual(clicks, [['b', 1]]);
});
