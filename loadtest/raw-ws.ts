// A minimal WebSocket client on node:net, for the load generator's hot path. Why not the `ws` package:
// it costs a write (and a mask) per frame, and at tens of thousands of frames a second on a box the
// switch shares, the generator would measure itself. This client
//
//   - does the HTTP/1.1 upgrade by hand (Authorization: Bearer <vendor API key>) and checks
//     Sec-WebSocket-Accept;
//   - lets the caller stamp many frames into one outgoing slab and sends them with ONE socket.write
//     per flush (the caller flushes once per tick or per batch of replies);
//   - parses server frames across TCP chunk boundaries (7-, 16- and 64-bit lengths, continuation
//     frames), answers ping with pong, answers close with close, and hands each data message to
//     onMessage as (buffer, start, end) without copying it when it sits whole in one chunk.
//
// Outgoing slab: frames are written at `pos`; flush() writes [flushed, pos) and moves on. The slab is
// never rewritten under a pending write: when it runs low a new one is allocated and the old one is
// left to the socket (and then the garbage collector).
//
//   slab  [ written to socket ... | staged, not yet flushed | free ............ ]
//                                 ^flushed                  ^pos

import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const wsGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Outgoing slab size; a new slab is taken when less than slabReserveBytes is left. */
const slabBytes = 1 << 20;
const slabReserveBytes = 64 * 1024;
/** Largest message accepted from the server: far above any reply, small enough to stop a runaway. */
const messageBytesMax = 16 * 1024 * 1024;
/** How long the upgrade may take. */
const handshakeTimeoutMs = 10_000;

export type MessageHandler = (buf: Buffer, start: number, end: number, isBinary: boolean) => void;

export class RawWsClient {
  private socket: Socket | null = null;
  private slab = Buffer.allocUnsafe(slabBytes);
  private pos = 0;
  private flushed = 0;
  private rest: Buffer | null = null;
  private fragments: Buffer[] = [];
  private fragmentBinary = false;
  private closeSent = false;
  /** Set when the connection is gone, with the reason. */
  closedReason: string | null = null;
  /** Bytes handed to the socket, frames parsed, and socket writes, for the report. */
  stats = { bytesOut: 0, bytesIn: 0, writes: 0, messages: 0, pings: 0 };

  onMessage: MessageHandler = () => {};
  /** Called after all the complete messages of one TCP chunk were handed to onMessage. */
  onChunkDone: () => void = () => {};
  onClose: (reason: string) => void = () => {};

  /** Open the connection and complete the upgrade. */
  async open(host: string, port: number, path: string, bearer: string): Promise<void> {
    const key = randomBytes(16).toString('base64');
    const expectAccept = createHash('sha1').update(key + wsGuid).digest('base64');
    const socket = connect({ host, port, noDelay: true });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error(`WebSocket upgrade timed out after ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const endOfHead = head.indexOf('\r\n\r\n');
        if (endOfHead < 0) {
          if (head.length > 16_384) fail(new Error('upgrade response headers too large'));
          return;
        }
        const text = head.subarray(0, endOfHead).toString('latin1');
        const [statusLine, ...lines] = text.split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) {
          return fail(new Error(`upgrade refused: ${statusLine} ${head.subarray(endOfHead + 4).toString('utf8').slice(0, 200)}`));
        }
        const accept = lines.find((l) => l.toLowerCase().startsWith('sec-websocket-accept:'));
        if (!accept || accept.slice(accept.indexOf(':') + 1).trim() !== expectAccept) {
          return fail(new Error('upgrade response has a wrong Sec-WebSocket-Accept'));
        }
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', fail);
        socket.on('data', (c: Buffer) => this.onData(c));
        socket.on('error', (err) => this.gone(`socket error: ${err.message}`));
        socket.on('close', () => this.gone('socket closed'));
        const leftover = head.subarray(endOfHead + 4);
        resolve();
        if (leftover.length > 0) this.onData(Buffer.from(leftover));
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${bearer}\r\n\r\n`,
        );
      });
    });
  }

  /** Reserve `n` bytes in the slab; returns the slab and the offset (control frames). */
  private reserve(n: number): { buf: Buffer; at: number } {
    if (this.slab.length - this.pos < Math.max(n, slabReserveBytes)) this.newSlab(n);
    const at = this.pos;
    this.pos += n;
    return { buf: this.slab, at };
  }

  /** The slab to stamp a frame of up to `n` bytes into, at writePos; call advance(n) after writing.
   * (Three calls instead of one returning an object: no allocation per frame.) */
  slabFor(n: number): Buffer {
    if (this.slab.length - this.pos < Math.max(n, slabReserveBytes)) this.newSlab(n);
    return this.slab;
  }

  get writePos(): number {
    return this.pos;
  }

  advance(n: number): void {
    this.pos += n;
  }

  /** Bytes staged and not yet flushed. */
  get staged(): number {
    return this.pos - this.flushed;
  }

  /** The socket's own buffer (bytes accepted by write() that the kernel has not taken yet). */
  get socketBuffered(): number {
    return this.socket?.writableLength ?? 0;
  }

  /** Send everything staged with one socket.write. */
  flush(): void {
    if (this.pos === this.flushed || this.socket === null || this.closedReason !== null) return;
    const chunk = this.slab.subarray(this.flushed, this.pos);
    this.flushed = this.pos;
    this.stats.bytesOut += chunk.length;
    this.stats.writes++;
    this.socket.write(chunk);
  }

  /** Send a close frame (1000) and end our side; the server's close or the socket's end follows. */
  close(): void {
    if (this.closeSent || this.socket === null) return;
    this.sendControl(0x8, Buffer.from([0x03, 0xe8]));
    this.closeSent = true;
    this.socket.end();
  }

  /** Stop reading from the socket (the kernel's buffers fill, then the server's): a vendor that
   * does not read its replies. Writing goes on. */
  stopReading(): void {
    this.socket?.pause();
  }

  destroy(reason: string): void {
    this.socket?.destroy();
    this.gone(reason);
  }

  private newSlab(n: number): void {
    // Anything staged moves to the new slab; the old one stays with the socket's pending writes.
    const staged = this.slab.subarray(this.flushed, this.pos);
    const next = Buffer.allocUnsafe(Math.max(slabBytes, n + staged.length + slabReserveBytes));
    staged.copy(next, 0);
    this.slab = next;
    this.flushed = 0;
    this.pos = staged.length;
  }

  private sendControl(opcode: number, payload: Buffer): void {
    // Control payloads are at most 125 bytes (RFC 6455 §5.5); masked with the all-zero key (see wire.ts).
    const n = Math.min(payload.length, 125);
    const { buf, at } = this.reserve(6 + n);
    buf[at] = 0x80 | opcode;
    buf[at + 1] = 0x80 | n;
    buf.writeUInt32BE(0, at + 2);
    payload.copy(buf, at + 6, 0, n);
    this.flush();
  }

  private gone(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.onClose(reason);
  }

  private onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let p = 0;
    const end = buf.length;
    while (end - p >= 2) {
      const b0 = buf[p];
      const b1 = buf[p + 1];
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (end - p < 4) break;
        len = buf.readUInt16BE(p + 2);
        h = 4;
      } else if (len === 127) {
        if (end - p < 10) break;
        const hi = buf.readUInt32BE(p + 2);
        len = hi * 4294967296 + buf.readUInt32BE(p + 6);
        h = 10;
      }
      if (len > messageBytesMax) return this.protocolError(`server frame of ${len} bytes`);
      const maskAt = p + h;
      if (masked) h += 4;
      if (end - p < h + len) break;
      const start = p + h;
      const stop = start + len;
      if (masked) {
        // Servers must not mask (RFC 6455 §5.1), but undoing it costs nothing here.
        for (let i = start; i < stop; i++) buf[i] ^= buf[maskAt + ((i - start) & 3)];
      }
      p = stop;
      switch (opcode) {
        case 0x1: case 0x2:
          if (fin) {
            this.stats.messages++;
            this.onMessage(buf, start, stop, opcode === 0x2);
          } else {
            this.fragments = [Buffer.from(buf.subarray(start, stop))];
            this.fragmentBinary = opcode === 0x2;
          }
          break;
        case 0x0: {
          if (this.fragments.length === 0) return this.protocolError('continuation frame without a start');
          this.fragments.push(Buffer.from(buf.subarray(start, stop)));
          if (fin) {
            const whole = Buffer.concat(this.fragments);
            this.fragments = [];
            this.stats.messages++;
            this.onMessage(whole, 0, whole.length, this.fragmentBinary);
          }
          break;
        }
        case 0x9: // ping: answer with a pong carrying the same payload
          this.stats.pings++;
          this.sendControl(0xa, Buffer.from(buf.subarray(start, stop)));
          break;
        case 0xa: // pong: nothing to do
          break;
        case 0x8: {
          const code = len >= 2 ? buf.readUInt16BE(start) : 1005;
          const why = buf.toString('utf8', Math.min(start + 2, stop), stop);
          if (!this.closeSent) {
            this.sendControl(0x8, Buffer.from(buf.subarray(start, Math.min(stop, start + 2))));
            this.closeSent = true;
            this.socket?.end();
          }
          this.gone(`server closed the session: ${code} ${why}`);
          break;
        }
        default:
          return this.protocolError(`unknown opcode ${opcode}`);
      }
    }
    if (p < end) this.rest = Buffer.from(buf.subarray(p));
    this.onChunkDone();
  }

  private protocolError(why: string): void {
    this.socket?.destroy();
    this.gone(`protocol error: ${why}`);
  }
}
