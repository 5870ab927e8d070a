// A clock for relative times ("3 s ago") that re-render as time passes.

import { signal } from '@preact/signals';

export const now = signal(Date.now());
setInterval(() => {
  now.value = Date.now();
}, 1000);
