// A function's sandboxes one by one (`GET …/functions/{name}/sandboxes`),
// the "last call" of a function (summary and live stream), and the
// per-backend counts a key limited to some namespaces does not get.

/** The states a function's sandbox can be in, in the order the console shows them. */
export const SANDBOX_STATES = ['booting', 'initializing', 'idle', 'busy', 'draining'];

/**
 * @typedef {object} SandboxInfo
 * @property {string} id `sb-...`, as the invocation records' `sandbox_id`
 * @property {number} version
 * @property {string} backend
 * @property {string} state
 * @property {number} memory_mb
 * @property {number} age_ms
 * @property {number} in_state_ms
 * @property {number} calls
 */

/**
 * The sandboxes as the tab shows them, now: ages and times in state moved
 * on by the time since the list was fetched (the list is refreshed every
 * few seconds; in between a state is shown as it was, so its time goes
 * on). Keeps the server's order (newest first); unknown fields stay.
 * @param {SandboxInfo[] | null | undefined} list
 * @param {number} fetchedAtMs when the list was received
 * @param {number} nowMs
 * @returns {SandboxInfo[]}
 */
export function sandboxesNow(list, fetchedAtMs, nowMs) {
  const d = Math.max(0, nowMs - fetchedAtMs);
  return (list ?? []).map((s) => ({ ...s, age_ms: s.age_ms + d, in_state_ms: s.in_state_ms + d }));
}

/**
 * Counts by state (every state of SANDBOX_STATES present, 0 when none;
 * a state the console does not know is counted under its own name).
 * @param {{state: string}[] | null | undefined} list
 * @returns {Record<string, number>}
 */
export function countByState(list) {
  /** @type {Record<string, number>} */
  const out = Object.fromEntries(SANDBOX_STATES.map((s) => [s, 0]));
  for (const s of list ?? []) out[s.state] = (out[s.state] ?? 0) + 1;
  return out;
}

/**
 * The invocation records a sandbox served (`sandbox_id`); all of them
 * without an id.
 * @template {{sandbox_id?: string | null}} R
 * @param {R[]} records
 * @param {string | null | undefined} sandboxId
 * @returns {R[]}
 */
export function recordsOfSandbox(records, sandboxId) {
  return sandboxId ? records.filter((r) => r.sandbox_id === sandboxId) : records;
}

/**
 * When a function was last called, Unix ms, or null: the newest of what
 * the summary says (`last_call_at_ms`, refreshed every few seconds) and
 * what the live stream's latest snapshot says (every second).
 * @param {...(number | null | undefined)} candidates
 * @returns {number | null}
 */
export function lastCallAt(...candidates) {
  let best = null;
  for (const t of candidates) {
    if (typeof t === 'number' && Number.isFinite(t) && (best === null || t > best)) best = t;
  }
  return best;
}

/**
 * Whether the stream's `resources.sandboxes` (counts by backend and state)
 * has anything to show: the server leaves it empty (`{}`) for a key limited
 * to some namespaces, since the counts cover every namespace. A key for
 * every namespace with no sandbox anywhere gets `{}` too; its zeros are
 * true, so the caller says which case it is from the session.
 * @param {Record<string, Record<string, number>> | null | undefined} bySandbox
 * @param {boolean} seesAll whether the key sees every namespace
 * @returns {'counts' | 'zeros' | 'withheld'}
 */
export function backendCounts(bySandbox, seesAll) {
  if (bySandbox && Object.keys(bySandbox).length > 0) return 'counts';
  return seesAll ? 'zeros' : 'withheld';
}
