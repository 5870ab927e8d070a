// Server-Sent Events wire format (text/event-stream), as the HTML spec
// parses it. The browser's EventSource does this itself; this parser is for
// the places that read the stream with fetch (the e2e and live-cost scripts
// in Node), and is the reference the tests pin the format with.

/**
 * @typedef {{event: string, data: string, id: string | undefined, retry: number | undefined}} SseEvent
 */

export class SseParser {
  /** @param {(e: SseEvent) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
    /** @type {string | undefined} */
    this.lastId = undefined;
    this.sawCr = false;
  }

  reset() {
    this.event = '';
    /** @type {string[]} */
    this.data = [];
    this.hasData = false;
    /** @type {number | undefined} */
    this.retry = undefined;
  }

  /** Feeds a chunk of decoded text (chunks may split lines anywhere). @param {string} chunk */
  feed(chunk) {
    let text = chunk;
    // A CRLF split across chunks: the LF was already a line end.
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = text.endsWith('\r');
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c === '\n' || c === '\r') {
        this.line(this.buffer.slice(start, i));
        if (c === '\r' && this.buffer[i + 1] === '\n') i++;
        start = i + 1;
      }
    }
    this.buffer = this.buffer.slice(start);
  }

  /** @param {string} line */
  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
      // unknown fields are ignored
    }
  }

  dispatch() {
    if (this.hasData) {
      this.onEvent({
        event: this.event || 'message',
        data: this.data.join('\n'),
        id: this.lastId,
        retry: this.retry,
      });
    }
    this.reset();
  }
}

/**
 * All the events of a complete stream text.
 * @param {string} text
 * @returns {SseEvent[]}
 */
export function parseSse(text) {
  /** @type {SseEvent[]} */
  const out = [];
  const p = new SseParser((e) => out.push(e));
  p.feed(text);
  return out;
}
