// A vendor's persistent WebSocket session: the hot path's first hop.
//
//   upgrade (Bearer API key checked, 401 before any upgrade)
//     └► message: decode (msgpack binary or JSON text) ─► validate ─► partition ─► router.submit
//                  any failure answers {rid, status: "error", code, message} and the session lives on
//   replies come back from the router as ready-made bytes, written inside cork().
//
// Limits: frame size (uWS drops the connection beyond maxPayloadLength), requests in flight per
// session (BUSY beyond), bytes buffered towards a vendor that stopped reading (closed beyond).

import { Unpackr, Packr } from 'msgpackr';
import uws, { type WebSocket, type TemplatedApp, type HttpResponse, type HttpRequest } from './uws.ts';
import {
  Op, Format, type AuthorizeCmd, type AuthOpCmd, type GetAuthCmd, type ResumeCmd, type ErrorCode, type FormatCode, type Rid,
  type DisputeRespondCmd,
} from '../workers/contract.ts';
import type { UserHub } from './user-sessions.ts';
import { idPartition } from '../workers/payment-id.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import {
  checkAuthorize, checkAuthOp, checkAuthId, checkRid, isPlainObject, InputError,
} from './validate.ts';
import {
  sessionsPerVendorDefault, frameBytesMax, inFlightPerSessionMax, sessionBackpressureBytesMax, sessionIdleTimeoutSeconds,
} from './limits.ts';
import type { ShardRouter, ReplySink } from './shard-router.ts';
import type { ControlPlane } from './control-plane.ts';
import { edge } from './metrics.ts';
import type { EnumerationGuard } from './enumeration-guard.ts';
import { clockMicrosU32 } from '../workers/shard-metrics.ts';
import { checkRespond } from './dispute-routes.ts';

interface SessionData {
  vendorId: string;
  sessionId: number;
  inFlight: number;
  inFlightPerShard: Int32Array;
  open: boolean;
  sink: ReplySink | null;
}

// Hostile msgpack must not define record structures or other stateful extensions in our decoder.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

export function bearerOf(header: string): string | null {
  if (header.length < 8 || header.length > 512) return null;
  if (header.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  return header.slice(7).trim() || null;
}

// `_users`: pushes (auth events) reach a session through the router, which the user hub drives from
// the shards' events; the vendor session itself no longer talks to the hub.
export function installVendorSessions(app: TemplatedApp, router: ShardRouter, control: ControlPlane, guard: EnumerationGuard, _users: UserHub, sessionsPerVendorMax = sessionsPerVendorDefault): void {
  // Open sessions per vendor: checked at the upgrade (a burst of simultaneous handshakes may pass it by
  // a few), counted when a session opens and closes.
  const sessionsOf = new Map<string, number>();
  app.ws<SessionData>('/v1/vendor', {
    compression: uws.DISABLED,
    maxPayloadLength: frameBytesMax,
    idleTimeout: sessionIdleTimeoutSeconds,
    sendPingsAutomatically: true,
    maxBackpressure: sessionBackpressureBytesMax,
    // A vendor that stops reading while we owe it replies is cut off rather than buffered forever.
    closeOnBackpressureLimit: 1 as never,

    upgrade: (res: HttpResponse, req: HttpRequest, context) => {
      const vendor = control.vendor(bearerOf(req.getHeader('authorization')));
      if (!vendor) {
        edge.authFailuresVendorWs++;
        res.cork(() => {
          res.writeStatus('401 Unauthorized').writeHeader('content-type', 'application/json')
            .end('{"status":"error","code":"UNAUTHORIZED","message":"a vendor API key is required: Authorization: Bearer <apiKey>"}');
        });
        return;
      }
      if (control.vendorSuspended(vendor.vendorId)) {
        res.cork(() => {
          res.writeStatus('403 Forbidden').writeHeader('content-type', 'application/json')
            .end('{"status":"error","code":"VENDOR_SUSPENDED","message":"this vendor is suspended by an operator"}');
        });
        return;
      }
      if (guard.suspended(vendor.vendorId)) {
        res.cork(() => {
          res.writeStatus('403 Forbidden').writeHeader('content-type', 'application/json')
            .end('{"status":"error","code":"SUSPENDED","message":"this vendor is suspended for presenting too many unknown payment IDs"}');
        });
        return;
      }
      if ((sessionsOf.get(vendor.vendorId) ?? 0) >= sessionsPerVendorMax) {
        edge.busy++;
        res.cork(() => {
          res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'application/json').writeHeader('retry-after', '1')
            .end(`{"status":"error","code":"BUSY","message":"more than ${sessionsPerVendorMax} sessions for this vendor"}`);
        });
        return;
      }
      const data: SessionData = {
        vendorId: vendor.vendorId, sessionId: 0, inFlight: 0,
        inFlightPerShard: new Int32Array(router.shardCount), open: true, sink: null,
      };
      res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'), context);
    },

    open: (ws: WebSocket<SessionData>) => {
      const d = ws.getUserData();
      const sink: ReplySink = {
        inFlightPerShard: d.inFlightPerShard,
        sendReply: (bytes) => {
          if (d.open) ws.send(bytes, bytes[0] !== 0x7b /* '{': JSON replies go as text frames */);
        },
        cork: (fn) => {
          if (d.open) ws.cork(fn);
        },
        done: (count, shard) => {
          d.inFlight -= count;
          d.inFlightPerShard[shard] -= count;
        },
        vendorId: d.vendorId,
        unknownId: () => guard.unknownId(d.vendorId),
        close: (code, reason) => {
          if (d.open) ws.end(code, reason);
        },
        shardLost: () => {
          // Requests in a dead shard have unknown outcomes; closing tells the vendor to replay its
          // in-flight requests with the same idem on a new session.
          if (d.open) ws.end(1011, 'shard restarted: replay in-flight requests with the same idem');
        },
      };
      d.sink = sink;
      d.sessionId = router.openSession(sink);
      edge.vendorSessions++;
      sessionsOf.set(d.vendorId, (sessionsOf.get(d.vendorId) ?? 0) + 1);
      edge.vendorSessionsOpened++;
    },

    message: (ws: WebSocket<SessionData>, message: ArrayBuffer, isBinary: boolean) => {
      // An exception here is our bug; it costs one frame an INTERNAL error, never the process.
      try {
        onFrame(ws, message, isBinary, router, guard, control);
      } catch (err) {
        console.error('frame failed:', err);
        replyError(ws, isBinary ? Format.wsMsgpack : Format.wsJson, null, 'INTERNAL', 'internal error');
      }
    },

    close: (ws: WebSocket<SessionData>) => {
      const d = ws.getUserData();
      d.open = false;
      router.closeSession(d.sessionId);
      edge.vendorSessions--;
      const left = (sessionsOf.get(d.vendorId) ?? 1) - 1;
      if (left <= 0) sessionsOf.delete(d.vendorId);
      else sessionsOf.set(d.vendorId, left);
    },
  });
}

function onFrame(ws: WebSocket<SessionData>, message: ArrayBuffer, isBinary: boolean, router: ShardRouter, guard: EnumerationGuard,
  control: ControlPlane): void {
  const d = ws.getUserData();
  const receivedAt = clockMicrosU32();
  const format: FormatCode = isBinary ? Format.wsMsgpack : Format.wsJson;
  if (isBinary) edge.framesMsgpack++;
  else edge.framesJson++;
  let frame: unknown;
  try {
    // The ArrayBuffer is only valid during this callback; both decoders copy what they keep.
    frame = isBinary ? unpackr.unpack(new Uint8Array(message)) : JSON.parse(Buffer.from(message).toString('utf8'));
  } catch {
    return replyError(ws, format, null, 'BAD_REQUEST', isBinary ? 'frame is not valid msgpack' : 'frame is not valid JSON');
  }
  if (!isPlainObject(frame)) return replyError(ws, format, null, 'BAD_REQUEST', 'a frame must be an object');
  const rid = checkRid(frame.rid);
  if (rid instanceof InputError) return replyError(ws, format, null, rid.code, rid.message);
  if (d.inFlight >= inFlightPerSessionMax) {
    return replyError(ws, format, rid, 'BUSY', `more than ${inFlightPerSessionMax} requests in flight on this session`);
  }

  let shard: number;
  switch (frame.op) {
    case 'authorize': {
      const r = checkAuthorize(frame);
      if (r instanceof InputError) return replyError(ws, format, rid, r.code, r.message);
      const partition = idPartition(r.id);
      // Not one of our numbers: decided here, without a shard, with the same answer a shard gives
      // for an unknown or wrong-code ID (and counted the same way against enumeration).
      if (partition < 0) {
        guard.unknownId(d.vendorId);
        return replyDecline(ws, format, rid, 'ID_UNKNOWN');
      }
      shard = router.shardOf(partition);
      const cmd: AuthorizeCmd = [Op.authorize, d.sessionId, receivedAt, format, rid, d.vendorId, r.id, r.code, r.amount, r.currency, r.idem];
      // The optional fields travel only when sent, so the common command stays short.
      if (r.description !== null || r.buyerIp !== null || r.device !== null || r.country !== null) cmd.push(r.description, r.buyerIp, r.device);
      // Sales tax: the switch resolves the rate, so the shard never looks it up (no rate: 0).
      if (r.country !== null) cmd.push([r.country, control.taxRate(r.country) ?? 0]);
      const delay = guard.delayMs(d.vendorId);
      if (delay > 0) {
        // A vendor presenting many unknown IDs is slowed: its authorizations wait (they still count
        // in flight, so the per-session limit bounds how many can wait).
        const target = shard;
        d.inFlight++;
        d.inFlightPerShard[target]++;
        setTimeout(() => {
          d.inFlight--;
          d.inFlightPerShard[target]--;
          if (!d.open) return;
          if (!router.submit(target, cmd)) return replyError(ws, format, rid, 'BUSY', 'the switch is saturated; retry with the same idem');
          d.inFlight++;
          d.inFlightPerShard[target]++;
        }, delay);
        return;
      }
      if (!router.submit(shard, cmd)) return replyError(ws, format, rid, 'BUSY', 'the switch is saturated; retry with the same idem');
      break;
    }
    case 'capture':
    case 'void':
    case 'refund': {
      const r = checkAuthOp(frame);
      if (r instanceof InputError) return replyError(ws, format, rid, r.code, r.message);
      shard = router.shardOf(partitionOfKeyedId(r.authId));
      const op = frame.op === 'capture' ? Op.capture : frame.op === 'void' ? Op.void : Op.refund;
      const cmd: AuthOpCmd = [op, d.sessionId, receivedAt, format, rid, d.vendorId, r.authId, r.amount, r.idem];
      if (!router.submit(shard, cmd)) return replyError(ws, format, rid, 'BUSY', 'the switch is saturated; retry with the same idem');
      break;
    }
    case 'get':
    case 'resume': {
      // get reads an authorization; resume answers a pending one's outcome now if decided, else the
      // shard has the user hub push the decision to this session later.
      const authId = checkAuthId(frame.authId);
      if (authId instanceof InputError) return replyError(ws, format, rid, authId.code, authId.message);
      shard = router.shardOf(partitionOfKeyedId(authId));
      const cmd: GetAuthCmd | ResumeCmd = [frame.op === 'get' ? Op.getAuth : Op.resume, d.sessionId, receivedAt, format, rid, d.vendorId, authId];
      if (!router.submit(shard, cmd)) return replyError(ws, format, rid, 'BUSY', 'the switch is saturated; retry');
      break;
    }
    // --- disputes: the vendor's answer, as POST /v1/disputes/{authId}/respond ---
    case 'dispute': {
      const authId = checkAuthId(frame.authId);
      if (authId instanceof InputError) return replyError(ws, format, rid, authId.code, authId.message);
      const r = checkRespond(frame, ['op', 'rid', 'authId']);
      if (r instanceof InputError) return replyError(ws, format, rid, r.code, r.message);
      shard = router.shardOf(partitionOfKeyedId(authId));
      const cmd: DisputeRespondCmd = [Op.disputeRespond, d.sessionId, receivedAt, format, rid, d.vendorId, authId, r.decision, r.evidence, r.evidenceUrl, r.idem];
      if (!router.submit(shard, cmd)) return replyError(ws, format, rid, 'BUSY', 'the switch is saturated; retry with the same idem');
      break;
    }
    default:
      return replyError(ws, format, rid, 'BAD_REQUEST', 'op must be one of authorize, capture, void, refund, get, resume, dispute');
  }
  d.inFlight++;
  d.inFlightPerShard[shard]++;
}

function send(ws: WebSocket<SessionData>, format: FormatCode, frame: object): void {
  if (format === Format.wsMsgpack) ws.send(packr.pack(frame), true);
  else ws.send(JSON.stringify(frame), false);
}

function replyError(ws: WebSocket<SessionData>, format: FormatCode, rid: Rid | null, code: ErrorCode, message: string): void {
  if (code === 'BAD_REQUEST') edge.badRequests++;
  else if (code === 'BUSY') edge.busy++;
  send(ws, format, { rid, status: 'error', code, message });
}

function replyDecline(ws: WebSocket<SessionData>, format: FormatCode, rid: Rid, code: string): void {
  send(ws, format, { rid, status: 'declined', code });
}
