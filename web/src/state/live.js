// The live view: one EventSource on /api/v1/metrics/stream for the whole
// console (never a polling loop per chart). Each snapshot becomes a
// compact point in a ring buffer of the last five minutes; charts redraw
// from it when `tick` changes. The stream is closed while the tab is
// hidden (it costs the server a snapshot a second per listener) and the
// gap is backfilled from the series API when it comes back.

import { signal } from '@preact/signals';
import { Ring } from '../lib/ring.js';
import { snapshotPoint, seriesPoints, mergePoint } from '../lib/snapshot.js';
import * as api from '../api.js';

export const LIVE_SECONDS = 300;

let ring = new Ring(LIVE_SECONDS);
/** Bumped on every snapshot: components that read it re-render each second. */
export const tick = signal(0);
/** The latest snapshot as the server sent it (last_minute stats, resources). */
export const latest = signal(/** @type {any} */ (null));
/** 'off' | 'connecting' | 'live' | 'retrying' */
export const liveStatus = signal('off');
/** Whether system-wide history could be loaded (needs a key for every namespace). */
export const systemHistory = signal(/** @type {boolean | null} */ (null));

/** @type {EventSource | null} */
let source = null;
let wanted = false;
let canBackfill = false;
/** @type {Set<(snap: any) => void>} */
const listeners = new Set();

/** The live points, oldest first. */
export function livePoints() {
  return ring.toArray();
}

/** Runs `fn` on every snapshot; returns the unsubscribe function. */
export function onSnapshot(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Folds `points` into the ring, keeping what live points already know. */
function merge(points) {
  const byT = new Map(ring.toArray().map((p) => [p.t, p]));
  for (const p of points) byT.set(p.t, mergePoint(p, byT.get(p.t)));
  const sorted = [...byT.values()].sort((a, b) => a.t - b.t);
  ring = Ring.from(sorted, LIVE_SECONDS);
  tick.value++;
}

async function backfillSystem() {
  if (!canBackfill) return;
  try {
    const s = await api.get('/metrics/series?window=5m&step=1s');
    merge(seriesPoints(s));
    systemHistory.value = true;
  } catch (e) {
    // 403: a key limited to some namespaces sees no system-wide history.
    systemHistory.value = false;
  }
}

/**
 * Backfills one function's last five minutes (the monitor tab opened
 * before the stream had them).
 */
export async function backfillFunction(namespace, name, label) {
  const s = await api.get(api.fnPath(namespace, name, 'metrics?window=5m&step=1s'));
  const have = new Set(
    ring
      .toArray()
      .filter((p) => p.fns?.[label]?.s)
      .map((p) => p.t),
  );
  merge(seriesPoints(s, label).filter((p) => !have.has(p.t)));
}

function open() {
  if (source || !wanted || document.hidden) return;
  liveStatus.value = 'connecting';
  const es = new EventSource('/api/v1/metrics/stream');
  source = es;
  let first = true;
  es.addEventListener('snapshot', (ev) => {
    let snap;
    try {
      snap = JSON.parse(/** @type {MessageEvent} */ (ev).data);
    } catch {
      return;
    }
    liveStatus.value = 'live';
    if (!performance.getEntriesByName('ignis:first-snapshot').length) performance.mark('ignis:first-snapshot');
    const p = snapshotPoint(snap);
    const last = ring.last();
    if (last && p.t <= last.t) merge([p]);
    else ring.push(p);
    latest.value = snap;
    if (first) {
      // The window's history before this connection (the first one, or after a gap).
      first = false;
      backfillSystem();
    }
    tick.value++;
    for (const fn of listeners) fn(snap);
  });
  es.onerror = () => {
    // EventSource reconnects by itself; a CLOSED source (e.g. 401) does not.
    if (es.readyState === EventSource.CLOSED) {
      close();
      liveStatus.value = 'retrying';
      // A lost session shows up on the next API call; retry the stream later.
      api.get('/session', { quiet401: false }).then(
        () => setTimeout(open, 3000),
        () => {},
      );
    } else {
      liveStatus.value = 'retrying';
    }
  };
}

function close() {
  if (source) {
    source.close();
    source = null;
  }
}

function onVisibility() {
  if (document.hidden) {
    close();
    liveStatus.value = 'off';
  } else {
    open();
  }
}

/**
 * Starts (or stops) the stream for a session that may read metrics.
 * @param {boolean} on
 * @param {boolean} seesAll whether system-wide history can be backfilled
 */
export function setLive(on, seesAll) {
  canBackfill = seesAll;
  // The system-wide series needs a key for every namespace: do not ask otherwise.
  if (on && !seesAll) systemHistory.value = false;
  if (on === wanted) return;
  wanted = on;
  if (on) {
    document.addEventListener('visibilitychange', onVisibility);
    open();
  } else {
    document.removeEventListener('visibilitychange', onVisibility);
    close();
    ring = new Ring(LIVE_SECONDS);
    latest.value = null;
    liveStatus.value = 'off';
    systemHistory.value = null;
  }
}
