// Who is logged in. `session.value` is undefined while the console asks
// the server, null when logged out, else the session (key name, role,
// namespaces, csrf).

import { signal, computed } from '@preact/signals';
import * as api from '../api.js';
import { can } from '../lib/roles.js';

/** @type {import('@preact/signals').Signal<any>} */
export const session = signal(undefined);
/** What the server says of itself (/health: backends, version). */
export const health = signal(null);
/** The namespaces the key may use. @type {import('@preact/signals').Signal<string[] | null>} */
export const namespaces = signal(null);

/** Whether the session may `action` (in `namespace`). */
export function allowed(action, namespace) {
  return can(session.value, action, namespace);
}

export const role = computed(() => session.value?.role ?? null);

function adopt(who) {
  api.setCsrf(who?.csrf ?? null);
  session.value = who;
  namespaces.value = null;
  if (who) loadNamespaces();
}

export async function loadSession() {
  api.get('/health').then(
    (h) => (health.value = h),
    () => {},
  );
  try {
    adopt(await api.get('/session', { quiet401: true }));
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) adopt(null);
    else throw e;
  }
}

export async function loadNamespaces() {
  try {
    const r = await api.get('/namespaces');
    namespaces.value = r.namespaces.map((n) => n.name);
  } catch {
    namespaces.value = session.value?.namespaces === '*' ? ['default'] : (session.value?.namespaces ?? []);
  }
}

/** Logs in with a key: the server sets the session cookie; the key is not kept. @param {string} key */
export async function login(key) {
  const who = await api.post('/session', { key: key.trim() }, { quiet401: true });
  adopt(who);
  return who;
}

export async function logout() {
  try {
    await api.del('/session', { quiet401: true });
  } finally {
    adopt(null);
  }
}

/** The session ended on the server (a 401 somewhere). */
export function sessionLost() {
  if (session.value) adopt(null);
}
