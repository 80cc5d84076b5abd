// The generator's side of the vendor WebSocket protocol, written for speed: authorize frames are
// stamped from a template straight into the outgoing buffer, and replies are scanned for the few
// fields the checks need instead of being decoded into objects.
//
// Request frame (client → switch), always 104 bytes, always one unfragmented binary frame:
//
//   82 e2 00 00 00 00 | 87 a2"op" a9"authorize" a3"rid" ce<u32> a2"id" b3<19 digits>
//   hdr  mask key       a4"code" a3<3 digits> a6"amount" ce<u32> a8"currency" a3"USD" a4"idem" ac<12 chars>
//
// A client must mask its frames (RFC 6455 §5.3). The mask key here is all zeros: legal (the RFC asks
// browsers for an unpredictable key to defeat proxy cache poisoning, which does not apply to a load
// generator on loopback) and it makes masking a no-op, so the payload is written once, in place.
//
// Reply scan (switch → client): the switch answers with a plain msgpack map whose keys include rid,
// status and, for declines and errors, code; approvals add authId, amount and a ~1 KB approval with
// its Merkle path. scanReply() walks the top-level map, reads those scalars and skips every other
// value without building it. Full decoding with msgpackr's unpack (~2 µs per approval, measured) is
// kept for the sampled approvals that are verified and for `--decode full`.

import { unpack } from 'msgpackr';

export const authorizeFrameBytes = 104;
/** The idempotency key's fixed width (see writeIdem). */
export const idemChars = 12;

// --- request template ---------------------------------------------------------------------------

const enc = (s: string) => Array.from(Buffer.from(s, 'latin1'));
const payloadTemplate = Buffer.from([
  0x87,
  0xa2, ...enc('op'), 0xa9, ...enc('authorize'),
  0xa3, ...enc('rid'), 0xce, 0, 0, 0, 0,
  0xa2, ...enc('id'), 0xb3, ...new Array(19).fill(0x30),
  0xa4, ...enc('code'), 0xa3, 0x30, 0x30, 0x30,
  0xa6, ...enc('amount'), 0xce, 0, 0, 0, 0,
  0xa8, ...enc('currency'), 0xa3, ...enc('USD'),
  0xa4, ...enc('idem'), 0xa0 | idemChars, ...new Array(idemChars).fill(0x30),
]);
const headerBytes = 6;
if (payloadTemplate.length + headerBytes !== authorizeFrameBytes || payloadTemplate.length >= 126) {
  throw new Error(`authorize template is ${payloadTemplate.length} bytes; update authorizeFrameBytes`);
}
const frameTemplate = Buffer.concat([Buffer.from([0x82, 0x80 | payloadTemplate.length, 0, 0, 0, 0]), payloadTemplate]);

// Field offsets inside the whole frame.
const ridAt = headerBytes + payloadTemplate.indexOf(Buffer.from('rid')) + 4;
const idAt = headerBytes + payloadTemplate.indexOf(Buffer.from('id\xb3', 'latin1')) + 3;
const codeAt = headerBytes + payloadTemplate.indexOf(Buffer.from('code')) + 5;
const amountAt = headerBytes + payloadTemplate.indexOf(Buffer.from('amount')) + 7;
const idemAt = headerBytes + payloadTemplate.indexOf(Buffer.from('idem')) + 5;

/**
 * Start-up self-check: a stamped frame must decode, with msgpackr, to exactly the request the switch
 * expects. Cheap, and it catches a template edited without its offsets.
 */
export function checkAuthorizeTemplate(): void {
  const record = Buffer.from('9870000112345678903417', 'latin1');
  const buf = Buffer.alloc(authorizeFrameBytes);
  writeAuthorize(buf, 0, 123456789, record, 0, -1, 1250, 0x6e, 42);
  const want = { op: 'authorize', rid: 123456789, id: '9870000112345678903', code: '417', amount: 1250, currency: 'USD', idem: 'n00000000042' };
  const got = unpack(buf.subarray(headerBytes));
  if (JSON.stringify(got) !== JSON.stringify(want) || buf[0] !== 0x82 || buf[1] !== (0x80 | payloadTemplate.length)) {
    throw new Error(`authorize template self-check failed: ${JSON.stringify(got)}`);
  }
  writeAuthorize(buf, 0, 1, record, 0, 7, 1, 0x77, 1);
  if ((unpack(buf.subarray(headerBytes)) as { code: string }).code !== '007') throw new Error('authorize template self-check failed: code override');
}

/**
 * Write one authorize frame at `out[at]`. `idRecord` holds the 19-digit ID at `idOff` and its
 * 3-digit code right after it; `codeOverride` (0..999) replaces the code when >= 0.
 */
export function writeAuthorize(
  out: Buffer, at: number, rid: number, idRecord: Buffer, idOff: number, codeOverride: number, amount: number, idemTag: number, idemSeq: number,
): void {
  frameTemplate.copy(out, at);
  out.writeUInt32BE(rid, at + ridAt);
  idRecord.copy(out, at + idAt, idOff, idOff + 19);
  if (codeOverride < 0) idRecord.copy(out, at + codeAt, idOff + 19, idOff + 22);
  else {
    out[at + codeAt] = 48 + Math.floor(codeOverride / 100);
    out[at + codeAt + 1] = 48 + (Math.floor(codeOverride / 10) % 10);
    out[at + codeAt + 2] = 48 + (codeOverride % 10);
  }
  out.writeUInt32BE(amount, at + amountAt);
  writeIdem(out, at + idemAt, idemTag, idemSeq);
}

/**
 * The idempotency key: one tag letter, then the request's sequence number in 11 decimal digits,
 * e.g. "n00000001234". Unique per request within a run; IDs are fresh per run, and a key is scoped
 * to its ID, so keys never meet an earlier run's.
 */
function writeIdem(out: Buffer, at: number, tag: number, seq: number): void {
  out[at] = tag;
  let v = seq;
  for (let i = idemChars - 1; i >= 1; i--) {
    out[at + i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

export function idemString(tag: number, seq: number): string {
  return String.fromCharCode(tag) + String(seq).padStart(idemChars - 1, '0');
}

// --- reply scan ---------------------------------------------------------------------------------

export const Status = { other: 0, approved: 1, declined: 2, error: 3 } as const;

/** What scanReply found; one instance is reused for every reply (no allocation per reply). */
export interface ReplyScan {
  /** The rid, or -1 when absent, null or not a non-negative integer. */
  rid: number;
  status: number;
  /** Offset and length of the code string in the payload buffer, or -1. */
  codeAt: number;
  codeLen: number;
  /** The top-level amount of an approval, or -1. */
  amount: number;
  hasAuthId: boolean;
}

export function newReplyScan(): ReplyScan {
  return { rid: -1, status: Status.other, codeAt: -1, codeLen: 0, amount: -1, hasAuthId: false };
}

/** Thrown for a payload the scanner does not understand; the caller falls back to unpack(). */
export class ScanError extends Error {}

/** Scan one msgpack reply in buf[start, end). Returns false when it is not a map (not a reply). */
export function scanReply(buf: Buffer, start: number, end: number, r: ReplyScan): boolean {
  r.rid = -1;
  r.status = Status.other;
  r.codeAt = -1;
  r.codeLen = 0;
  r.amount = -1;
  r.hasAuthId = false;
  let p = start;
  const b0 = buf[p++];
  let pairs: number;
  if (b0 >= 0x80 && b0 <= 0x8f) pairs = b0 & 0x0f;
  else if (b0 === 0xde) {
    pairs = buf.readUInt16BE(p);
    p += 2;
  } else if (b0 === 0xdf) {
    pairs = buf.readUInt32BE(p);
    p += 4;
  } else return false;
  for (let k = 0; k < pairs; k++) {
    // Key: the switch only sends string keys; anything else is skipped along with its value.
    const kb = buf[p];
    let keyLen = -1;
    let keyAt = 0;
    if (kb >= 0xa0 && kb <= 0xbf) {
      keyLen = kb & 0x1f;
      keyAt = p + 1;
      p = keyAt + keyLen;
    } else p = skipValue(buf, p, end);
    const vb = buf[p];
    if (keyLen === 3 && buf[keyAt] === 0x72 && buf[keyAt + 1] === 0x69 && buf[keyAt + 2] === 0x64) {
      // "rid"
      r.rid = readUint(buf, p);
    } else if (keyLen === 6 && buf[keyAt] === 0x73 && buf[keyAt + 1] === 0x74) {
      // "status": approved / declined / error, told apart by length and first letter.
      if (vb >= 0xa0 && vb <= 0xbf) {
        const len = vb & 0x1f;
        const c = buf[p + 1];
        if (len === 8 && c === 0x61) r.status = Status.approved;
        else if (len === 8 && c === 0x64) r.status = Status.declined;
        else if (len === 5 && c === 0x65) r.status = Status.error;
      }
    } else if (keyLen === 4 && buf[keyAt] === 0x63 && buf[keyAt + 1] === 0x6f && buf[keyAt + 2] === 0x64) {
      // "code"
      if (vb >= 0xa0 && vb <= 0xbf) {
        r.codeAt = p + 1;
        r.codeLen = vb & 0x1f;
      } else if (vb === 0xd9) {
        r.codeAt = p + 2;
        r.codeLen = buf[p + 1];
      }
    } else if (keyLen === 6 && buf[keyAt] === 0x61 && buf[keyAt + 1] === 0x6d) {
      // "amount"
      r.amount = readUint(buf, p);
    } else if (keyLen === 6 && buf[keyAt] === 0x61 && buf[keyAt + 1] === 0x75) {
      // "authId"
      r.hasAuthId = (vb >= 0xa0 && vb <= 0xbf) || vb === 0xd9;
    }
    p = skipValue(buf, p, end);
  }
  if (p !== end) throw new ScanError(`reply has ${end - p} trailing bytes`);
  return true;
}

/** A non-negative integer at buf[p], or -1 for anything else. */
function readUint(buf: Buffer, p: number): number {
  const b = buf[p];
  if (b <= 0x7f) return b;
  switch (b) {
    case 0xcc: return buf[p + 1];
    case 0xcd: return buf.readUInt16BE(p + 1);
    case 0xce: return buf.readUInt32BE(p + 1);
    case 0xcf: return buf.readUInt32BE(p + 1) * 4294967296 + buf.readUInt32BE(p + 5);
    case 0xd0: return buf.readInt8(p + 1) >= 0 ? buf.readInt8(p + 1) : -1;
    case 0xd1: return buf.readInt16BE(p + 1) >= 0 ? buf.readInt16BE(p + 1) : -1;
    case 0xd2: return buf.readInt32BE(p + 1) >= 0 ? buf.readInt32BE(p + 1) : -1;
    case 0xd3: {
      const v = Number(buf.readBigInt64BE(p + 1));
      return v >= 0 && Number.isSafeInteger(v) ? v : -1;
    }
    case 0xcb: {
      // msgpackr writes integers beyond 32 bits as float64.
      const v = buf.readDoubleBE(p + 1);
      return v >= 0 && Number.isSafeInteger(v) ? v : -1;
    }
    default: return -1;
  }
}

/** The offset just past the msgpack value at buf[p] (nested maps and arrays included). */
export function skipValue(buf: Buffer, p: number, end: number): number {
  let items = 1; // values still to skip
  while (items > 0) {
    if (p >= end) throw new ScanError('reply truncated');
    const b = buf[p++];
    items--;
    if (b <= 0x7f || b >= 0xe0) continue; // fixints
    if (b <= 0x8f) { items += 2 * (b & 0x0f); continue; } // fixmap
    if (b <= 0x9f) { items += b & 0x0f; continue; } // fixarray
    if (b <= 0xbf) { p += b & 0x1f; continue; } // fixstr
    switch (b) {
      case 0xc0: case 0xc2: case 0xc3: break;
      case 0xc4: case 0xd9: p += 1 + buf[p]; break; // bin8, str8
      case 0xc5: case 0xda: p += 2 + buf.readUInt16BE(p); break; // bin16, str16
      case 0xc6: case 0xdb: p += 4 + buf.readUInt32BE(p); break; // bin32, str32
      case 0xc7: p += 2 + buf[p]; break; // ext8
      case 0xc8: p += 3 + buf.readUInt16BE(p); break; // ext16
      case 0xc9: p += 5 + buf.readUInt32BE(p); break; // ext32
      case 0xca: p += 4; break;
      case 0xcb: p += 8; break;
      case 0xcc: case 0xd0: p += 1; break;
      case 0xcd: case 0xd1: p += 2; break;
      case 0xce: case 0xd2: p += 4; break;
      case 0xcf: case 0xd3: p += 8; break;
      case 0xd4: p += 2; break; // fixext 1..16: type byte + data
      case 0xd5: p += 3; break;
      case 0xd6: p += 5; break;
      case 0xd7: p += 9; break;
      case 0xd8: p += 17; break;
      case 0xdc: items += buf.readUInt16BE(p); p += 2; break; // array16
      case 0xdd: items += buf.readUInt32BE(p); p += 4; break; // array32
      case 0xde: items += 2 * buf.readUInt16BE(p); p += 2; break; // map16
      case 0xdf: items += 2 * buf.readUInt32BE(p); p += 4; break; // map32
      default: throw new ScanError(`unknown msgpack type byte 0x${b.toString(16)}`);
    }
  }
  if (p > end) throw new ScanError('reply truncated');
  return p;
}
