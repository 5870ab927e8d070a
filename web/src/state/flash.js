// What a save changed, carried from the form to the function's page.

import { signal } from '@preact/signals';

/** Shown on the page `path` only (it goes away when the user moves on). @type {import('@preact/signals').Signal<null | {path: string, title: string, lines: string[]}>} */
export const flash = signal(null);
