// The page context: page type, product, category, search query, cart and order contents.
//
// Sources, later ones filling only what earlier ones left empty:
//   1. the element carrying data-funnelrec-page (with data-funnelrec-product, -category, -query,
//      -results, -cart, -order on the same element);
//   2. <meta name="funnelrec:page|product|category|query|results|cart|order" content="...">;
//   3. schema.org Product JSON-LD (sku or productID; category): a product detail page;
//   4. a search URL (path containing "search" with q / query / keyword / s / search).
// Values given to funnelrec('page', {...}) override all of these (see index.js).
const FIELDS = ['page', 'product', 'category', 'query', 'results', 'cart', 'order'];

function ldProduct(x, depth) {
  if (!x || typeof x != 'object' || depth > 4) return null;
  if ([].concat(x['@type']).indexOf('Product') >= 0) return x;
  for (const y of [].concat(Array.isArray(x) ? x : x['@graph'] || x.mainEntity || [])) {
    const p = ldProduct(y, depth + 1);
    if (p) return p;
  }
  return null;
}

export function readContext() {
  const c = {};
  const el = document.querySelector('[data-funnelrec-page]');
  for (const k of FIELDS) {
    const m = document.querySelector('meta[name="funnelrec:' + k + '"]');
    const v = (el && el.getAttribute('data-funnelrec-' + k)) || (m && m.getAttribute('content'));
    if (v) c[k] = v.trim();
  }
  if (!c.product) {
    for (const s of document.querySelectorAll('script[type="application/ld+json"]')) {
      let p = null;
      try { p = ldProduct(JSON.parse(s.textContent), 0); } catch (e) { /* bad JSON-LD */ }
      const id = p && (p.sku || p.productID || p.productId);
      if (id) {
        c.product = String(id);
        if (!c.page) c.page = 'detail';
        if (!c.category && typeof p.category == 'string') c.category = p.category;
        break;
      }
    }
  }
  if (!c.page && /search/i.test(location.pathname)) {
    const u = new URLSearchParams(location.search);
    const q = u.get('q') || u.get('query') || u.get('keyword') || u.get('s') || u.get('search');
    if (q) { c.page = 'search'; if (!c.query) c.query = q; }
  }
  return normalize(c);
}

export const PAGES = ['main', 'category', 'search', 'detail', 'cart', 'checkout', 'purchase', 'other'];

// Lists may be given as "a,b,c" strings; page types outside the list become "other".
export function normalize(c) {
  for (const k of ['cart', 'order']) {
    if (typeof c[k] == 'string') c[k] = c[k].split(',').map((s) => s.trim()).filter(Boolean);
    if (c[k] && !Array.isArray(c[k])) c[k] = [c[k]];
    if (c[k]) c[k] = c[k].map(String);
  }
  if (c.product != null) c.product = String(c.product);
  if (PAGES.indexOf(c.page) < 0) c.page = c.product ? 'detail' : 'other';
  return c;
}
