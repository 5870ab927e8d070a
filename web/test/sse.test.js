import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, parseSse } from '../src/lib/sse.js';

test('parses named events with JSON data, as the server sends them', () => {
  const text = 'event: snapshot\ndata: {"at_ms":1}\n\nevent: snapshot\ndata: {"at_ms":2}\n\n';
  const events = parseSse(text);
  assert.equal(events.length, 2);
  assert.equal(events[0].event, 'snapshot');
  assert.deepEqual(JSON.parse(events[1].data), { at_ms: 2 });
});

test('joins multi-line data, defaults the event name, ignores comments', () => {
  const events = parseSse(': keep-alive\n\ndata: a\ndata: b\n\n');
  assert.deepEqual(
    events.map((e) => [e.event, e.data]),
    [['message', 'a\nb']],
  );
});

test('handles chunks split anywhere, CRLF and CR line ends', () => {
  const out = [];
  const p = new SseParser((e) => out.push(e));
  const text = 'event: snapshot\r\ndata: {"x":\r\n\r\nevent: other\rdata: 2\r\r';
  for (const ch of text) p.feed(ch);
  assert.deepEqual(
    out.map((e) => [e.event, e.data]),
    [
      ['snapshot', '{"x":'],
      ['other', '2'],
    ],
  );
});

test('a CRLF split between two chunks is one line end', () => {
  const out = [];
  const p = new SseParser((e) => out.push(e));
  p.feed('data: 1\r');
  p.feed('\n\r');
  p.feed('\n');
  assert.equal(out.length, 1);
  assert.equal(out[0].data, '1');
});

test('an event without data is not dispatched; id and retry are kept', () => {
  const events = parseSse('event: x\n\nid: 7\nretry: 1500\ndata:no-space\n\n');
  assert.equal(events.length, 1);
  assert.equal(events[0].data, 'no-space');
  assert.equal(events[0].id, '7');
  assert.equal(events[0].retry, 1500);
});

test('an incomplete event stays buffered until its blank line', () => {
  const out = [];
  const p = new SseParser((e) => out.push(e));
  p.feed('data: partial');
  assert.equal(out.length, 0);
  p.feed('\n\n');
  assert.equal(out.length, 1);
});
