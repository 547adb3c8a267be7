// Recommendation carousels, rendered into a Shadow DOM on the merchant's placeholder.
//
// - Style isolation both ways: the styles live in a constructable stylesheet adopted by the
//   shadow root (a <style nonce> when the browser lacks them), the inner root resets every
//   inherited property (`all: initial`), and the host box is pinned with !important rules,
//   which beat the page's own in the cascade. Theming goes through CSS custom properties
//   (--funnelrec-*), which do cross the boundary.
// - CSP-clean: no eval, no innerHTML, no style="" attributes; product data only as text,
//   URLs only when http(s).
// - Zero layout shift: the placeholder reserves --funnelrec-height (the snippet's one CSS rule)
//   and the carousel is exactly that tall. With nothing to show it collapses only once it is below
//   the viewport, where collapsing moves nothing the visitor sees.
// - Accessible: a labelled region, a real list, prev/next buttons, arrow keys, visible focus,
//   scroll-snap, and no smooth scrolling under prefers-reduced-motion.
import { httpUrl, on } from './util.js';

const CSS = `:host{display:block!important;padding:0!important;border:0!important;min-height:var(--funnelrec-height,360px)!important;contain:layout paint}
:host([data-funnelrec-state=empty]){display:none!important}
.r{all:initial;display:flex;flex-direction:column;box-sizing:border-box;height:var(--funnelrec-height,360px);overflow:hidden;padding:8px 0;font:400 14px/1.4 var(--funnelrec-font,system-ui,-apple-system,"Apple SD Gothic Neo","Malgun Gothic",sans-serif);color:var(--funnelrec-color,#222);background:var(--funnelrec-bg,transparent)}
.h{display:flex;align-items:center;justify-content:space-between;gap:8px;height:40px;padding:0 4px}
h2{all:unset;font-size:var(--funnelrec-title-size,18px);font-weight:700;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
button{all:unset;cursor:pointer;width:32px;height:32px;border-radius:50%;text-align:center;font-size:20px;line-height:30px;border:1px solid var(--funnelrec-border,#ccc);background:var(--funnelrec-button-bg,#fff)}
button:disabled{opacity:.35;cursor:default}
button:focus-visible,a:focus-visible{outline:2px solid var(--funnelrec-focus,#1a73e8);outline-offset:2px}
ul{all:unset;flex:1;min-height:0;display:flex;gap:var(--funnelrec-gap,12px);overflow-x:auto;overflow-y:hidden;scroll-snap-type:x mandatory;scroll-behavior:smooth;padding:4px;scroll-padding:0 4px}
li{all:unset;display:block;flex:0 0 var(--funnelrec-item-width,160px);scroll-snap-align:start}
a{all:unset;display:block;cursor:pointer;border-radius:var(--funnelrec-radius,8px)}
img{display:block;width:100%;height:auto;aspect-ratio:1;object-fit:cover;border-radius:var(--funnelrec-radius,8px);background:var(--funnelrec-image-bg,#f2f2f2)}
img.x{visibility:hidden}
.n{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:2;overflow:hidden;margin-top:6px;height:2.8em;word-break:break-word}
.p{display:block;margin-top:2px;font-weight:700;color:var(--funnelrec-price-color,inherit)}
@media (prefers-reduced-motion:reduce){ul{scroll-behavior:auto}}`;

export const TITLES = {
  en: {
    main: 'Recommended for you', category: 'Popular in this category', search: 'You may be looking for',
    detail_similar: 'Similar products', detail_complements: 'Goes well with', cart: 'Complete your order',
    checkout: 'Customers also bought', prev: 'Previous', next: 'Next',
  },
  ko: {
    main: '회원님을 위한 추천 상품', category: '이 카테고리 인기 상품', search: '이런 상품을 찾으세요?',
    detail_similar: '비슷한 상품', detail_complements: '함께 사면 좋은 상품', cart: '함께 담으면 좋은 상품',
    checkout: '다른 고객이 함께 구매한 상품', prev: '이전', next: '다음',
  },
};
export const STATE = 'data-funnelrec-state';

let sheet = null;
const fmts = {};

export function price(v, cur, loc) {
  if (v == null || v === '' || isNaN(v)) return '';
  const k = loc + cur;
  try {
    if (!fmts[k]) fmts[k] = new Intl.NumberFormat(loc, cur ? { style: 'currency', currency: cur } : {});
    return fmts[k].format(+v);
  } catch (e) { return String(v); }
}

const sa = (e, k, v) => e.setAttribute(k, v);
const el = (tag, cls, parent, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
};

// The shadow root of a placeholder, with our styles, emptied.
export function root(host, nonce) {
  let sr = host.shadowRoot;
  if (!sr) sr = host.attachShadow({ mode: 'open' });
  while (sr.firstChild) sr.removeChild(sr.firstChild);
  try {
    if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
    sr.adoptedStyleSheets = [sheet];
  } catch (e) {
    const s = el('style', '', sr, CSS);
    if (nonce) sa(s, 'nonce', nonce);
  }
  return sr;
}

// Nothing to show: collapse, but only while the slot is below the viewport (no visible shift).
export function collapse(host) {
  try {
    const io = new IntersectionObserver(([e]) => {
      // (still empty: a later page view of a single-page app may have filled it meanwhile)
      if (!e.isIntersecting && e.boundingClientRect.top > 0) { if (!host.shadowRoot.querySelector('li')) sa(host, STATE, 'empty'); io.disconnect(); }
    });
    io.observe(host);
  } catch (e) { sa(host, STATE, 'empty'); }
}

// Render one slot. o: {lang, locale, currency, nonce, onItem(li, item, i), onClick(item, i)}.
// Returns the number of items shown.
export function render(host, sr, data, placement, o) {
  const T = TITLES[o.lang] || TITLES.en;
  const title = host.getAttribute('data-title') || T[placement == 'purchase' ? 'checkout' : placement] || T.main;
  const reduce = matchMedia('(prefers-reduced-motion: reduce)').matches;
  const wrap = el('section', 'r');
  sa(wrap, 'role', 'region');
  sa(wrap, 'aria-roledescription', 'carousel');
  sa(wrap, 'aria-label', title);
  const head = el('div', 'h', wrap);
  el('h2', '', head, title);
  const nav = el('div', '', head);
  const list = el('ul', 'l');
  sa(list, 'role', 'list');
  const btn = (label, txt, dir) => {
    const b = el('button', '', nav, txt);
    b.type = 'button';
    sa(b, 'aria-label', label);
    on(b, 'click', () => list.scrollBy({ left: dir * list.clientWidth * 0.9, behavior: reduce ? 'auto' : 'smooth' }), false);
    return b;
  };
  const prev = btn(T.prev, '\u2039', -1), next = btn(T.next, '\u203a', 1);
  wrap.appendChild(list);
  const items = (data && data.items) || [];
  const links = [];
  items.forEach((it) => {
    const url = httpUrl(it && it.url);
    if (!url || it.id == null) return;
    const i = links.length;
    const li = el('li', '', list);
    const a = el('a', '', li);
    a.href = url;
    const src = httpUrl(it.image);
    const img = el('img', '', a);
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.width = img.height = 160;
    on(img, 'error', () => img.classList.add('x'), false);
    if (src) img.src = src; else img.classList.add('x');
    el('span', 'n', a, String(it.title == null ? '' : it.title));
    const p = price(it.price, it.currency || o.currency, o.locale);
    if (p) el('span', 'p', a, p);
    const click = () => o.onClick(it, i);
    on(a, 'click', click, false);
    on(a, 'auxclick', click, false);
    links.push(a);
    o.onItem(li, it, i);
  });
  // Arrow keys move the focus between items.
  on(list, 'keydown', (e) => {
    const i = links.indexOf(sr.activeElement);
    if (i < 0) return;
    const j = i + (e.key == 'ArrowRight') - (e.key == 'ArrowLeft');
    if (j == i || !links[j]) return;
    e.preventDefault();
    links[j].focus({ preventScroll: true });
    links[j].parentNode.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: reduce ? 'auto' : 'smooth' });
  }, false);
  const upd = () => {
    prev.disabled = list.scrollLeft < 2;
    next.disabled = list.scrollLeft + list.clientWidth >= list.scrollWidth - 2;
  };
  on(list, 'scroll', upd, { passive: true });
  sr.appendChild(wrap);
  upd();
  return links.length;
}
