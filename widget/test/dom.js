// Test setup: a happy-dom window as the global DOM, and helpers for fake time.
import { Window } from 'happy-dom';

export const T0 = 1_800_000_000_000; // a fixed "now" (2027-01-15)

export function setupDom(url = 'https://shop.example/products/p1') {
  const window = new Window({ url, width: 1024, height: 768 });
  const g = globalThis;
  for (const k of ['window', 'document', 'localStorage', 'location', 'history', 'HTMLElement', 'CSSStyleSheet', 'matchMedia', 'innerHeight', 'innerWidth', 'getComputedStyle', 'Node']) {
    Object.defineProperty(g, k, { value: window[k], configurable: true, writable: true });
  }
  Object.defineProperty(g, 'navigator', { value: window.navigator, configurable: true, writable: true });
  Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true, writable: true });
  return window;
}

export function setVisibility(state) {
  Object.defineProperty(document, 'visibilityState', { value: state, configurable: true, writable: true });
  document.dispatchEvent(new window.Event('visibilitychange'));
}

// Let pending promise callbacks run (fetch replies) without advancing the fake clock.
export const settle = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };
