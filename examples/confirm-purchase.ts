// A vendor's purchase in confirmation mode, from the command line, with nothing but `ws`:
//
//   node --import tsx examples/confirm-purchase.ts --key ovk_… --id 9870… --code 417 --amount 1250 \
//        [--currency USD] [--description "Two coffees"] [--url http://127.0.0.1:8080]
//
// (--url and --key default to ONCEPAY_URL and ONCEPAY_API_KEY, like the other examples.)
//
// It opens a vendor session (/v1/vendor), sends one authorize, and prints what comes back. When the
// user's ID or account asks for confirmation, the switch answers {"status":"pending", decideBy} at
// once and pushes {"event":"auth", …} on this session when the user approves or declines (or the
// time runs out). An approval is then verified offline against the switch's public HSM keys, the
// way a vendor must before it ships anything. Exit code: 0 approved and verified, 1 declined,
// 2 anything else.

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.ONCEPAY_URL ?? 'http://127.0.0.1:8080' },
    key: { type: 'string', default: process.env.ONCEPAY_API_KEY },
    id: { type: 'string' },
    code: { type: 'string' },
    amount: { type: 'string' },
    currency: { type: 'string', default: 'USD' },
    description: { type: 'string' },
  },
});
if (!a.key || !a.id || !a.code || !a.amount || !/^\d+$/.test(a.amount)) {
  console.error('usage: confirm-purchase.ts --key <vendor API key> --id <19 digits> --code <security code> --amount <minor units>\n' +
    '                           [--currency USD] [--description text] [--url http://127.0.0.1:8080]');
  process.exit(2);
}
const base = a.url!.replace(/\/$/, '');
/** How long past the user's deadline we keep waiting for the switch's answer before giving up. */
const graceMs = 10_000;

function finish(code: number, line: string): never {
  console.log(line);
  process.exit(code);
}

async function verify(approval: Record<string, unknown>): Promise<{ ok: boolean; text: string }> {
  const res = await fetch(`${base}/v1/hsm/keys`);
  const { keys } = await res.json() as { keys: Array<{ kid: string; publicKey: string }> };
  const v = verifyApproval(approval, keys);
  return v.ok ? { ok: true, text: `signature verified offline (key ${approval.kid})` } : { ok: false, text: `SIGNATURE DOES NOT VERIFY: ${v.reason}` };
}

const ws = new WebSocket(base.replace(/^http/, 'ws') + '/v1/vendor', { headers: { authorization: `Bearer ${a.key}` } });
ws.on('unexpected-response', (_req, res) => finish(2, `the switch refused the session: HTTP ${res.statusCode}`));
ws.on('error', (err) => finish(2, `cannot reach the switch: ${err.message}`));
ws.on('close', (code) => finish(2, `the session closed (${code}) before an answer`));

let deadline: NodeJS.Timeout | undefined;
ws.on('open', () => {
  const frame = {
    op: 'authorize', rid: 'buy-1', id: a.id, code: a.code, amount: Number(a.amount), currency: a.currency,
    idem: 'order-' + randomBytes(8).toString('hex'), ...(a.description ? { description: a.description } : {}),
  };
  console.log('authorize ->', JSON.stringify(frame));
  ws.send(JSON.stringify(frame));
});

ws.on('message', async (data) => {
  const m = JSON.parse(data.toString('utf8'));
  console.log('<-', JSON.stringify(m));
  if (m.status === 'pending') {
    console.log(`pending: the user has until ${m.decideBy} to answer on their wallet page…`);
    clearTimeout(deadline);
    deadline = setTimeout(() => finish(2, 'no answer from the switch in time'), Math.max(0, Date.parse(m.decideBy) - Date.now()) + graceMs);
    return;
  }
  if (m.status === 'approved') {
    ws.removeAllListeners('close');
    ws.close();
    const v = await verify(m.approval);
    finish(v.ok ? 0 : 2, `APPROVED ${m.amount} ${m.currency} (${m.authId}); ${v.text}`);
  }
  if (m.status === 'declined') {
    ws.removeAllListeners('close');
    ws.close();
    finish(1, `DECLINED: ${m.code}`);
  }
  if (m.status === 'error') finish(2, `error ${m.code}: ${m.message}`);
});
