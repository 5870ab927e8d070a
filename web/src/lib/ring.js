// A fixed-capacity ring buffer: the live charts keep the last N snapshots
// (one a second) without reallocating an array every second.

/** @template T */
export class Ring {
  /** @param {number} capacity */
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    /** @type {(T | undefined)[]} */
    this.items = new Array(capacity);
    this.start = 0; // index of the oldest item
    this.size = 0;
  }

  /**
   * Builds a ring holding the last `capacity` items of `items`.
   * @template T
   * @param {T[]} items
   * @param {number} capacity
   * @returns {Ring<T>}
   */
  static from(items, capacity) {
    const r = new Ring(capacity);
    for (const it of items.slice(-capacity)) r.push(it);
    return r;
  }

  get length() {
    return this.size;
  }

  /** Appends `item`, dropping the oldest one when full. @param {T} item */
  push(item) {
    if (this.size < this.capacity) {
      this.items[(this.start + this.size) % this.capacity] = item;
      this.size++;
    } else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** The i-th item, 0 the oldest; negative counts from the newest. @param {number} i */
  at(i) {
    if (i < 0) i += this.size;
    if (i < 0 || i >= this.size) return undefined;
    return this.items[(this.start + i) % this.capacity];
  }

  /** The newest item. */
  last() {
    return this.at(-1);
  }

  /** Oldest first. @returns {T[]} */
  toArray() {
    const out = new Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.items[(this.start + i) % this.capacity];
    return out;
  }

  clear() {
    this.items = new Array(this.capacity);
    this.start = 0;
    this.size = 0;
  }
}

/**
 * Merges time-stamped points (`t`, seconds) into one list sorted by `t`,
 * newer duplicates winning: how a backfill from the series API and the
 * live snapshots already received become one history.
 * @template {{t: number}} P
 * @param {P[]} older
 * @param {P[]} newer
 * @param {number} capacity
 * @returns {P[]}
 */
export function mergeByTime(older, newer, capacity) {
  const byT = new Map();
  for (const p of older) byT.set(p.t, p);
  for (const p of newer) byT.set(p.t, p);
  const all = [...byT.values()].sort((a, b) => a.t - b.t);
  return all.slice(-capacity);
}
