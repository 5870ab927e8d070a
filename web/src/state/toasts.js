// Short messages that confirm an action ("Deployed version 3"). Errors are
// shown where they happen, not here.

import { signal } from '@preact/signals';

let next = 1;
/** @type {import('@preact/signals').Signal<{id: number, text: string, kind: string}[]>} */
export const toasts = signal([]);

/** @param {string} text @param {'ok' | 'info' | 'error'} [kind] */
export function toast(text, kind = 'ok') {
  const id = next++;
  toasts.value = [...toasts.value, { id, text, kind }];
  setTimeout(() => dismiss(id), 5000);
}

export function dismiss(id) {
  toasts.value = toasts.value.filter((t) => t.id !== id);
}
