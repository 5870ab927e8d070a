// Dark or light, following the system. Charts read their colors from the
// CSS custom properties, so they are rebuilt when the scheme changes.

import { signal } from '@preact/signals';

const query = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;
export const dark = signal(Boolean(query?.matches));
query?.addEventListener('change', (e) => {
  dark.value = e.matches;
});

/** The value of a CSS custom property of the page (e.g. "--c1"). */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
