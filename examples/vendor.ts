// An example vendor: takes one order, authorizes the buyer's single-use payment ID through the SDK,
// checks the (already verified) approval, captures it, and prints what happened.
//
//   ONCEPAY_URL=http://127.0.0.1:8080 ONCEPAY_API_KEY=ovk_… \
//     node --import tsx examples/vendor.ts <paymentId> <code> <amount> [currency] [orderId]
//
// Exit status: 0 approved and captured, 2 declined, 1 anything else. Run it twice with the same
// orderId: the second run gets the first answer (same authId), never a second charge.
// In your own project: `npm install <path to oncepay>/sdk` and import from '@oncepay/vendor-sdk'.

import { connect, OncepayError, ApprovalRefusedError } from '../sdk/src/index.ts';

const [paymentId, code, amountText, currency = 'USD', orderId = `order-${Date.now()}`] = process.argv.slice(2);
const url = process.env.ONCEPAY_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.ONCEPAY_API_KEY;
if (!paymentId || !code || !amountText || !apiKey) {
  console.error('usage: ONCEPAY_API_KEY=ovk_… node --import tsx examples/vendor.ts <paymentId> <code> <amount> [currency] [orderId]');
  process.exit(1);
}
const amount = Number(amountText);

const client = await connect({ url, apiKey });
try {
  // The order id is the idempotency key: a retry, a reconnect or a rerun of this program never charges twice.
  let result = await client.authorize({ id: paymentId, code, amount, currency, idem: `auth-${orderId}` });
  if (result.status === 'pending') {
    // Confirmation mode: the buyer confirms on their phone; the decision is pushed to us.
    console.log(`pending ${result.authId}: waiting for the buyer until ${result.decideBy}`);
    result = await client.decision(result.authId);
  }
  if (result.status === 'declined') {
    console.log(`declined ${result.code}`);
    process.exitCode = 2;
  } else {
    // The SDK verified the HSM's signature and Merkle proof before returning this.
    console.log(`approved ${result.authId} ${result.amount} ${result.currency}, signed by ${result.approval.kid}, hold expires ${result.expiresAt}`);
    const captured = await client.capture({ authId: result.authId, idem: `capture-${orderId}` });
    if (captured.status === 'captured') console.log(`captured ${captured.captured} ${captured.currency}`);
    else console.log(`capture declined ${captured.code}`);
  }
  const c = client.counters();
  console.log(`counters: requests ${c.requests}, retries ${c.retries}, reconnects ${c.reconnects}, verified ${c.approvalsVerified}, p50 ${c.latency.p50Ms.toFixed(2)} ms`);
} catch (err) {
  if (err instanceof ApprovalRefusedError) console.error(`REFUSED: the approval did not verify (${err.reason}); do not ship`);
  else if (err instanceof OncepayError) console.error(`error ${err.code}: ${err.message}`);
  else throw err;
  process.exitCode = 1;
} finally {
  client.close();
}
