import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupDom } from './dom.js';
import { readContext, normalize } from '../src/context.js';

test('data- attributes on the element carrying data-funnelrec-page', () => {
  setupDom();
  document.body.innerHTML = '<div data-funnelrec-page="cart" data-funnelrec-cart="p1, p2,p3"></div>';
  assert.deepEqual(readContext(), { page: 'cart', cart: ['p1', 'p2', 'p3'] });
});

test('meta tags fill what attributes leave empty', () => {
  setupDom();
  document.head.innerHTML = '<meta name="funnelrec:page" content="category"><meta name="funnelrec:category" content="Home > Mugs">';
  document.body.innerHTML = '<div data-funnelrec-page="category" data-funnelrec-category="Kitchen"></div>';
  assert.deepEqual(readContext(), { page: 'category', category: 'Kitchen' });
});

test('schema.org Product JSON-LD (in @graph, @type array) makes a detail page', () => {
  setupDom();
  const ld = { '@context': 'https://schema.org', '@graph': [{ '@type': 'WebPage' }, { '@type': ['Product', 'Thing'], sku: 'SKU-9', category: 'Mugs', offers: { price: 12000, priceCurrency: 'KRW' } }] };
  document.head.innerHTML = '<script type="application/ld+json">{bad json</script><script type="application/ld+json">' + JSON.stringify(ld) + '</script>';
  assert.deepEqual(readContext(), { page: 'detail', product: 'SKU-9', category: 'Mugs' });
});

test('a search URL gives the query', () => {
  setupDom('https://shop.example/product/search.html?keyword=%EB%A8%B8%EA%B7%B8%EC%BB%B5');
  assert.deepEqual(readContext(), { page: 'search', query: '머그컵' });
});

test('unknown page types become other (or detail with a product)', () => {
  assert.equal(normalize({ page: 'weird' }).page, 'other');
  assert.deepEqual(normalize({ page: 'x', product: 42 }), { page: 'detail', product: '42' });
  assert.deepEqual(normalize({ page: 'purchase', order: 'p1' }), { page: 'purchase', order: ['p1'] });
});
