// Self-test of the generator's own protocol code, without a switch: `node --import tsx loadtest/selftest.ts`.
// (vitest.config.ts does not include loadtest/, so this is a plain script with node:assert.)
//
//   1. wire.ts: the authorize template decodes to the intended request; scanReply agrees with
//      msgpackr's unpack on every reply shape the switch sends (and a few it might).
//   2. raw-ws.ts against a hand-written server on 127.0.0.1 that trickles its frames a few bytes per
//      TCP write: 7-, 16- and 64-bit payload lengths, a fragmented message, a ping (a pong must come
//      back with the same payload), and a close (a close must come back). It also decodes the
//      client's frames: masked, batched into few writes, each a msgpack authorize request.

import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { Packr, unpack } from 'msgpackr';
import { RawWsClient } from './raw-ws.ts';
import {
  checkAuthorizeTemplate, scanReply, newReplyScan, Status, writeAuthorize, authorizeFrameBytes,
} from './wire.ts';

const packr = new Packr({ useRecords: false });

// --- 1. wire ------------------------------------------------------------------------------------

checkAuthorizeTemplate();

const approval = {
  authId: 'au_01570000000001', vendorId: 'vd_0178ceb4c5379a653658', amount: 1250, currency: 'USD',
  approvedAt: '2026-11-23T12:00:00.000Z', expiresAt: '2026-11-30T12:00:00.000Z', idLast4: '8903',
  kid: 'k1', root: 'a'.repeat(64), index: 3, size: 117, path: Array.from({ length: 7 }, (_, i) => String(i).repeat(64)), sig: 'b'.repeat(128),
};
const replies: Array<[Record<string, unknown>, { rid: number; status: number; code: string | null; amount: number; hasAuthId: boolean }]> = [
  [{ rid: 7, status: 'approved', authId: 'au_01570000000001', amount: 1250, currency: 'USD', expiresAt: approval.expiresAt, approval },
    { rid: 7, status: Status.approved, code: null, amount: 1250, hasAuthId: true }],
  [{ rid: 4294967295, status: 'declined', code: 'ID_USED' }, { rid: 4294967295, status: Status.declined, code: 'ID_USED', amount: -1, hasAuthId: false }],
  [{ rid: 2 ** 40, status: 'declined', code: 'INSUFFICIENT_FUNDS' }, { rid: 2 ** 40, status: Status.declined, code: 'INSUFFICIENT_FUNDS', amount: -1, hasAuthId: false }],
  [{ rid: null, status: 'error', code: 'BAD_REQUEST', message: 'frame is not valid msgpack' }, { rid: -1, status: Status.error, code: 'BAD_REQUEST', amount: -1, hasAuthId: false }],
  [{ rid: 300, status: 'error', code: 'A_VERY_LONG_ERROR_CODE_OF_MORE_THAN_31_CHARS', message: 'x'.repeat(300), extra: { a: [1, -2, 3.5, true, null, new Uint8Array(3)] } },
    { rid: 300, status: Status.error, code: 'A_VERY_LONG_ERROR_CODE_OF_MORE_THAN_31_CHARS', amount: -1, hasAuthId: false }],
  [{ status: 'approved', rid: 65535, amount: 2 ** 33, authId: 'au_x' }, { rid: 65535, status: Status.approved, code: null, amount: 2 ** 33, hasAuthId: true }],
  // Many keys: msgpackr writes a map16.
  [Object.fromEntries([['rid', 9], ['status', 'declined'], ['code', 'ID_UNKNOWN'], ...Array.from({ length: 20 }, (_, i) => [`k${i}`, i])]),
    { rid: 9, status: Status.declined, code: 'ID_UNKNOWN', amount: -1, hasAuthId: false }],
];
const scan = newReplyScan();
for (const [reply, want] of replies) {
  const bytes = packr.pack(reply);
  const buf = Buffer.concat([Buffer.from([1, 2, 3]), bytes, Buffer.from([4, 5])]); // offsets inside a larger buffer
  assert.equal(scanReply(buf, 3, 3 + bytes.length, scan), true);
  const code = scan.codeAt >= 0 ? buf.toString('latin1', scan.codeAt, scan.codeAt + scan.codeLen) : null;
  assert.deepEqual({ rid: scan.rid, status: scan.status, code, amount: scan.amount, hasAuthId: scan.hasAuthId }, want, JSON.stringify(reply).slice(0, 80));
}
assert.equal(scanReply(Buffer.from(packr.pack([1, 2])), 0, packr.pack([1, 2]).length, scan), false, 'an array is not a reply');
assert.throws(() => {
  const b = packr.pack({ rid: 1, status: 'approved', approval });
  scanReply(b, 0, b.length - 5, scan);
}, /truncated|trailing/);
console.log('selftest: wire ok');

// --- 2. raw-ws ----------------------------------------------------------------------------------

/** A server frame (unmasked) with the right length encoding. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, n])
    : n < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 126, n >> 8, n & 255])
      : (() => {
        const h = Buffer.alloc(10);
        h[0] = (fin ? 0x80 : 0) | opcode;
        h[1] = 127;
        h.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
        h.writeUInt32BE(n >>> 0, 6);
        return h;
      })();
  return Buffer.concat([head, payload]);
}

/** Parse the client's (masked) frames out of a byte stream. */
function clientFrames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let p = 0;
  while (p < bytes.length) {
    const opcode = bytes[p] & 0x0f;
    assert.equal(bytes[p + 1] & 0x80, 0x80, 'client frames must be masked');
    let n = bytes[p + 1] & 0x7f;
    let h = 2;
    if (n === 126) {
      n = bytes.readUInt16BE(p + 2);
      h = 4;
    }
    const mask = bytes.subarray(p + h, p + h + 4);
    const payload = Buffer.from(bytes.subarray(p + h + 4, p + h + 4 + n));
    for (let i = 0; i < n; i++) payload[i] ^= mask[i & 3];
    out.push({ opcode, payload });
    p += h + 4 + n;
  }
  return out;
}

const big = Buffer.alloc(200_000, 7); // 64-bit length
const mid = Buffer.alloc(1000, 8); // 16-bit length
const toClient = Buffer.concat([
  serverFrame(0x2, packr.pack({ rid: 1, status: 'declined', code: 'ID_USED' })),
  serverFrame(0x9, Buffer.from('are you there')),
  serverFrame(0x2, mid),
  serverFrame(0x2, big),
  serverFrame(0x2, Buffer.from('frag-'), false), serverFrame(0x0, Buffer.from('ment-'), false), serverFrame(0x0, Buffer.from('ed')),
  serverFrame(0x8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
]);

let received = Buffer.alloc(0);
let clientWrites = 0;
let authorization = '';
const server = createServer((sock: Socket) => {
  let head = Buffer.alloc(0);
  let upgraded = false;
  sock.on('data', (d: Buffer) => {
    if (upgraded) {
      clientWrites++;
      received = Buffer.concat([received, d]);
      return;
    }
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    upgraded = true;
    const text = head.subarray(0, end).toString('latin1');
    authorization = /\r\nauthorization: (.*)/i.exec(text)?.[1] ?? '';
    const key = /\r\nsec-websocket-key: (.*)/i.exec(text)?.[1]?.trim() ?? '';
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    // Trickle everything in small, uneven pieces so that headers and payloads split across chunks.
    // Before the trickle, wait for the client's batch so the test can count its writes.
    setTimeout(async () => {
      // 1..13 bytes at a time, except 60 KB pieces through the middle of the 200 KB message.
      for (let p = 0, step = 1; p < toClient.length; step = (step % 13) + 1) {
        const n = Math.min(p > 2000 && p < toClient.length - 200 ? 60_000 : step, toClient.length - p);
        sock.write(toClient.subarray(p, p + n));
        p += n;
        await new Promise((r) => setImmediate(r));
      }
    }, 50);
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;

const client = new RawWsClient();
const messages: Array<{ len: number; first: number; binary: boolean; text: string }> = [];
let closed = '';
client.onMessage = (buf, start, end, isBinary) => {
  messages.push({ len: end - start, first: buf[start], binary: isBinary, text: end - start < 64 ? buf.toString('latin1', start, end) : '' });
};
const closedP = new Promise<void>((r) => {
  client.onClose = (reason) => {
    closed = reason;
    r();
  };
});
await client.open('127.0.0.1', port, '/v1/vendor', 'ovk_test');
assert.equal(authorization, 'Bearer ovk_test');

// A batch of 50 authorize frames in one write.
const record = Buffer.from('9870000112345678903417', 'latin1');
for (let i = 0; i < 50; i++) {
  const buf = client.slabFor(authorizeFrameBytes);
  writeAuthorize(buf, client.writePos, i, record, 0, -1, 100 + i, 0x6e, i);
  client.advance(authorizeFrameBytes);
}
client.flush();
await closedP;
await new Promise((r) => setTimeout(r, 50));
server.close();

assert.equal(messages.length, 4, JSON.stringify(messages.map((m) => m.len)));
assert.equal(messages[1].len, 1000);
assert.equal(messages[2].len, 200_000);
assert.equal(messages[3].text, 'frag-ment-ed');
assert.equal(messages[3].binary, true);
assert.match(closed, /server closed the session: 1000 bye/);

const frames = clientFrames(received);
const authorizes = frames.filter((f) => f.opcode === 0x2);
assert.equal(authorizes.length, 50);
assert.equal(clientWrites <= 3, true, `the batch of 50 frames took ${clientWrites} TCP reads`);
authorizes.forEach((f, i) => assert.deepEqual(unpack(f.payload), {
  op: 'authorize', rid: i, id: '9870000112345678903', code: '417', amount: 100 + i, currency: 'USD', idem: `n${String(i).padStart(11, '0')}`,
}));
const pong = frames.find((f) => f.opcode === 0xa);
assert.equal(pong?.payload.toString(), 'are you there');
const close = frames.find((f) => f.opcode === 0x8);
assert.equal(close?.payload.readUInt16BE(0), 1000);
console.log('selftest: raw-ws ok');
