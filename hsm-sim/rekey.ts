// Rotate the HSM master key (ONCEPAY_MASTER_KEY): re-seal the key store under a new master key.
//
//   node --import tsx hsm-sim/rekey.ts --data <data folder>
//
// With the switch STOPPED. The old key is found the way the switch finds it (ONCEPAY_MASTER_KEY, else
// the <data>.master-key file beside the data folder); the new one is read from ONCEPAY_NEW_MASTER_KEY
// (64 hex characters or base64 of 32 bytes, e.g. `openssl rand -hex 32`), never from the command line,
// where other users could read it in the process list. Keys are never printed.
//
// If the old key came from the file, the file is replaced with the new key after the store; if it
// came from ONCEPAY_MASTER_KEY, set that to the new key before the next start. Signing keys (kids),
// approvals, stored IDs and idempotency records are unaffected: only the sealing changes.

import { parseArgs } from 'node:util';
import { KeyStore, parseMasterKey, rekeyKeystore, resolveMasterKey, writeMasterKeyFile, keystorePath } from './keystore.ts';
import fs from 'node:fs';

function main(): number {
  const { values } = parseArgs({ options: { data: { type: 'string' } }, strict: true });
  const dataDir = values.data ?? process.env.ONCEPAY_DATA;
  if (!dataDir) {
    console.error('usage: ONCEPAY_NEW_MASTER_KEY=<new key> node --import tsx hsm-sim/rekey.ts --data <data folder>');
    return 2;
  }
  if (!fs.existsSync(keystorePath(dataDir))) {
    console.error(`rekey: no HSM key store at ${keystorePath(dataDir)}; nothing to re-seal`);
    return 1;
  }
  const raw = process.env.ONCEPAY_NEW_MASTER_KEY;
  if (raw === undefined) {
    console.error('rekey: set ONCEPAY_NEW_MASTER_KEY to the new master key (openssl rand -hex 32)');
    return 2;
  }
  const newKey = parseMasterKey(raw, 'ONCEPAY_NEW_MASTER_KEY');
  const old = resolveMasterKey(dataDir);
  let kids: string[];
  if (opensWith(dataDir, newKey)) {
    // A run that stopped after re-sealing the store but before replacing the key file: finish it.
    kids = KeyStore.open(dataDir, newKey).publicKeys().map((k) => k.kid);
  } else {
    // Throws, with the store untouched, if the old key does not open it.
    kids = rekeyKeystore(dataDir, old.key, newKey).kids;
  }
  old.key.fill(0);
  if (old.source === 'file') {
    const file = writeMasterKeyFile(dataDir, newKey);
    console.log(`rekey: key store re-sealed (${kids.length} signing keys: ${kids.join(', ')}); ${file} now holds the new master key`);
  } else {
    console.log(`rekey: key store re-sealed (${kids.length} signing keys: ${kids.join(', ')}); set ONCEPAY_MASTER_KEY to the new key before the next start`);
  }
  newKey.fill(0);
  return 0;
}

function opensWith(dataDir: string, key: Buffer): boolean {
  try {
    KeyStore.open(dataDir, key);
    return true;
  } catch {
    return false; // not sealed under this key (the usual case): rekeyKeystore says why if the old one fails too
  }
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(`rekey: ${(err as Error).message}`);
  process.exitCode = 1;
}
