// Reply bytes, written once by the shard into one growing buffer that is handed to the main thread
// whole (see contract.ts: meta + bytes). The main thread only copies slices of it to sockets.
//
// Approvals, the bulk of all replies, are encoded by hand as msgpack: they have a fixed shape, and
// a generic encoder spent more time walking the nested object than the shard spent deciding the
// approval (measured: reply encoding was ~35% of a shard's busy time under load). Everything else
// goes through msgpackr or JSON.stringify. A test checks that the hand-written bytes decode to the
// same object msgpackr would encode (the bytes differ only in map headers: fixmap here, map16 there).

import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const initialBytes = 1 << 20;

/** msgpack of a short ASCII key, precomputed. */
function key(s: string): Buffer {
  return packr.pack(s);
}

const K = {
  rid: key('rid'), status: key('status'), approved: key('approved'), authId: key('authId'), amount: key('amount'),
  currency: key('currency'), expiresAt: key('expiresAt'), approval: key('approval'), vendorId: key('vendorId'),
  approvedAt: key('approvedAt'), idLast4: key('idLast4'), kid: key('kid'), root: key('root'), index: key('index'),
  size: key('size'), path: key('path'), sig: key('sig'), tax: key('tax'), fx: key('fx'),
};

export interface ApprovalReply {
  rid: string | number | null;
  authId: string;
  vendorId: string;
  amount: number;
  currency: string;
  approvedAt: string;
  expiresAt: string;
  idLast4: string;
  kid: string;
  root: string;
  index: number;
  size: number;
  path: string[];
  sig: string;
  /** Sales tax: shown next to the approval, never inside it (its canonical fields are signed). */
  tax?: { country: string; basisPoints: number; amount: number };
  /** Currencies: a purchase converted from the user's primary currency (the hold and the rate used);
   * beside the approval, like tax, which stays in the purchase's currency. */
  fx?: { held: { currency: string; amount: number }; rate: string; spreadBasisPoints: number; asOf: string };
}

/** The reply object of an approval, for the encoders that take objects (JSON, HTTP, tests). */
export function approvalObject(a: ApprovalReply, withRid: boolean): Record<string, unknown> {
  const body = {
    status: 'approved',
    authId: a.authId,
    amount: a.amount,
    currency: a.currency,
    expiresAt: a.expiresAt,
    approval: {
      authId: a.authId, vendorId: a.vendorId, amount: a.amount, currency: a.currency, approvedAt: a.approvedAt,
      expiresAt: a.expiresAt, idLast4: a.idLast4, kid: a.kid, root: a.root, index: a.index, size: a.size,
      path: a.path, sig: a.sig,
    },
    ...(a.tax ? { tax: a.tax } : {}),
    ...(a.fx ? { fx: a.fx } : {}),
  };
  return withRid ? { rid: a.rid, ...body } : body;
}

export class ReplyWriter {
  private buf = Buffer.allocUnsafe(initialBytes);
  off = 0;

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.off += this.buf.write(s, this.off, 'utf8');
  }

  /** The bytes written so far, in a fresh transferable buffer; the writer starts over. */
  take(): Uint8Array {
    const out = new Uint8Array(this.off);
    out.set(this.buf.subarray(0, this.off));
    this.off = 0;
    if (this.buf.length > 16 * initialBytes) this.buf = Buffer.allocUnsafe(initialBytes); // give back a spike
    return out;
  }

  // --- msgpack, the subset approvals need ---------------------------------------------------

  private map(n: number): void {
    this.ensure(1);
    this.buf[this.off++] = 0x80 | n; // fixmap: n <= 15
  }

  private str(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.ensure(len + 5);
    const b = this.buf;
    if (len < 32) b[this.off++] = 0xa0 | len;
    else if (len < 0x100) {
      b[this.off++] = 0xd9;
      b[this.off++] = len;
    } else if (len < 0x10000) {
      b[this.off++] = 0xda;
      b.writeUInt16BE(len, this.off);
      this.off += 2;
    } else {
      b[this.off++] = 0xdb;
      b.writeUInt32BE(len, this.off);
      this.off += 4;
    }
    this.off += b.write(s, this.off, 'utf8');
  }

  /** Non-negative safe integers, as msgpackr writes them. */
  private uint(n: number): void {
    this.ensure(9);
    const b = this.buf;
    if (n < 0x80) b[this.off++] = n;
    else if (n < 0x100) {
      b[this.off++] = 0xcc;
      b[this.off++] = n;
    } else if (n < 0x10000) {
      b[this.off++] = 0xcd;
      b.writeUInt16BE(n, this.off);
      this.off += 2;
    } else if (n < 0x100000000) {
      b[this.off++] = 0xce;
      b.writeUInt32BE(n, this.off);
      this.off += 4;
    } else {
      b[this.off++] = 0xcb; // float64 carries every safe integer exactly, as msgpackr does
      b.writeDoubleBE(n, this.off);
      this.off += 8;
    }
  }

  private array(n: number): void {
    this.ensure(3);
    if (n < 16) this.buf[this.off++] = 0x90 | n;
    else {
      this.buf[this.off++] = 0xdc;
      this.buf.writeUInt16BE(n, this.off);
      this.off += 2;
    }
  }

  /** An approval as a msgpack WebSocket frame. */
  approvalMsgpack(a: ApprovalReply): void {
    this.map(7 + (a.tax ? 1 : 0) + (a.fx ? 1 : 0));
    this.bytes(K.rid);
    if (typeof a.rid === 'string') this.str(a.rid);
    else if (a.rid === null) this.bytes(packr.pack(null));
    else this.uint(a.rid);
    this.bytes(K.status);
    this.bytes(K.approved);
    this.bytes(K.authId);
    this.str(a.authId);
    this.bytes(K.amount);
    this.uint(a.amount);
    this.bytes(K.currency);
    this.str(a.currency);
    this.bytes(K.expiresAt);
    this.str(a.expiresAt);
    this.bytes(K.approval);
    this.map(13);
    this.bytes(K.authId);
    this.str(a.authId);
    this.bytes(K.vendorId);
    this.str(a.vendorId);
    this.bytes(K.amount);
    this.uint(a.amount);
    this.bytes(K.currency);
    this.str(a.currency);
    this.bytes(K.approvedAt);
    this.str(a.approvedAt);
    this.bytes(K.expiresAt);
    this.str(a.expiresAt);
    this.bytes(K.idLast4);
    this.str(a.idLast4);
    this.bytes(K.kid);
    this.str(a.kid);
    this.bytes(K.root);
    this.str(a.root);
    this.bytes(K.index);
    this.uint(a.index);
    this.bytes(K.size);
    this.uint(a.size);
    this.bytes(K.path);
    this.array(a.path.length);
    for (const p of a.path) this.str(p);
    this.bytes(K.sig);
    this.str(a.sig);
    if (a.tax) {
      this.bytes(K.tax);
      this.msgpack(a.tax);
    }
    if (a.fx) {
      this.bytes(K.fx);
      this.msgpack(a.fx);
    }
  }

  /** Any other reply, through msgpackr. */
  msgpack(value: unknown): void {
    this.bytes(packr.pack(value));
  }
}
