// The same order with raw WebSocket frames and no SDK: what the SDK does for you, by hand.
//
//   ONCEPAY_URL=http://127.0.0.1:8080 ONCEPAY_API_KEY=ovk_… \
//     node --import tsx examples/raw-vendor.ts <paymentId> <code> <amount> [currency] [orderId]
//
// It prints every frame it sends (>) and receives (<), and verifies the approval offline with
// hsm-sim/verify-approval.ts (dependency-free: copy it into your project).

import WebSocket from 'ws';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

const [paymentId, code, amountText, currency = 'USD', orderId = `order-${Date.now()}`] = process.argv.slice(2);
const base = process.env.ONCEPAY_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.ONCEPAY_API_KEY;
if (!paymentId || !code || !amountText || !apiKey) {
  console.error('usage: ONCEPAY_API_KEY=ovk_… node --import tsx examples/raw-vendor.ts <paymentId> <code> <amount> [currency] [orderId]');
  process.exit(1);
}
const amount = Number(amountText);

const ws = new WebSocket(base.replace(/^http/, 'ws') + '/v1/vendor', { headers: { authorization: `Bearer ${apiKey}` } });
await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});
const waiting = new Map<string, (reply: any) => void>();
ws.on('message', (data) => {
  console.log('<', String(data));
  const reply = JSON.parse(String(data));
  waiting.get(reply.rid)?.(reply);
});
const request = (frame: Record<string, unknown>) => new Promise<any>((resolve) => {
  waiting.set(frame.rid as string, resolve);
  console.log('>', JSON.stringify(frame));
  ws.send(JSON.stringify(frame));
});

const a = await request({ op: 'authorize', rid: 'r1', id: paymentId, code, amount, currency, idem: `auth-${orderId}` });
if (a.status === 'approved') {
  // Verify before shipping: the keys come from GET /v1/hsm/keys (fetch again on an unknown kid).
  const { keys } = await (await fetch(`${base}/v1/hsm/keys`)).json() as { keys: Array<{ kid: string; publicKey: string }> };
  const verdict = verifyApproval(a.approval, keys);
  const matches = a.approval.amount === amount && a.approval.currency === currency && a.approval.authId === a.authId;
  console.log(`verify: ${JSON.stringify(verdict)}, matches the order: ${matches}`);
  if (!verdict.ok || !matches) process.exitCode = 1;
  else await request({ op: 'capture', rid: 'r2', authId: a.authId, idem: `capture-${orderId}` });
} else {
  process.exitCode = a.status === 'declined' ? 2 : 1;
}
ws.close();
