// The switch: one process, one uWS event loop on the main thread, shard actors and the HSM in worker
// threads. start() wires them together and resolves once /healthz would answer 200.

import { mkdirSync } from 'node:fs';
import uws, { assertNativeUws, type us_listen_socket } from './uws.ts';
import type { Config } from './config.ts';
import { ShardRouter } from './shard-router.ts';
import { HsmLink } from './hsm-link.ts';
import { ControlPlane } from './control-plane.ts';
import { installVendorSessions } from './vendor-session.ts';
import { installHttpRoutes } from './http-routes.ts';
import { UserHub } from './user-sessions.ts';
import { createMetrics, userGauges } from './metrics.ts';
import { LiveSeries } from './live.ts';
import { EnumerationGuard } from './enumeration-guard.ts';
import { startupTimeoutMs } from './limits.ts';
import { Settler } from './settlement.ts';

export interface RunningSwitch {
  port: number;
  router: ShardRouter;
  hsm: HsmLink;
  control: ControlPlane;
  stop(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms`)), ms);
    }),
  ]);
}

export async function startSwitch(config: Config): Promise<RunningSwitch> {
  assertNativeUws(config.allowUwsFallback);
  mkdirSync(config.data, { recursive: true, mode: 0o700 });
  if (config.durability === 'nosync') {
    console.error('WARNING: ONCEPAY_DURABILITY=nosync: replies do not wait for the disk; a crash may lose approved money. Benchmarks only.');
  }
  const control = new ControlPlane(config.data, config.durability, config.adminToken);
  const hsm = new HsmLink(config.data, config.hsmOpsPerSec, config.faultInjection);
  await withTimeout(hsm.ready, startupTimeoutMs, 'hsm-sim');
  const router = new ShardRouter({
    shards: config.shards, dataDir: config.data, durability: config.durability, holdTtlMs: config.holdTtlMs, hsm,
    faultInjection: config.faultInjection, confirmTimeoutMs: config.confirmTimeoutMs,
    fxRates: control.fxRateTable(), // currencies: conversion at purchase reads them in the shard
  });
  const users = new UserHub(router, control, hsm);
  userGauges.pendingConfirmations = () => users.pendingCount;
  await withTimeout(router.whenReady(), startupTimeoutMs, 'shards');

  const app = uws.App();
  const guard = new EnumerationGuard(config.enumeration);
  const pruner = setInterval(() => guard.prune(), config.enumeration.windowMs);
  pruner.unref();
  guard.onSuspend = (vendorId) => {
    router.closeVendorSessions(vendorId, 4003, 'suspended: too many unknown payment IDs');
    void control.addAlert({ kind: 'enumeration', vendorId, accountId: null, authId: null, detail: 'suspended for presenting too many unknown payment IDs' })
      .catch((err) => console.error('alert not recorded:', err));
  };
  installVendorSessions(app, router, control, guard, users, config.vendorSessionsMax);
  users.install(app);
  const metrics = createMetrics(router, hsm, guard);
  const live = new LiveSeries(router, hsm);
  // Vendor settlement: a timer on this thread asks the shards; the work is small ops in the shards.
  const settler = new Settler(router, control, config.settlementCheckMs);
  settler.start();
  installHttpRoutes(app, { router, control, hsm, metrics, live, guard, users, config, faultInjection: config.faultInjection, settler });
  if (config.faultInjection) console.error('WARNING: ONCEPAY_FAULT_INJECTION is on: operators can crash shards on purpose. Tests only.');

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`could not listen on ${config.host}:${config.port}`));
    });
  });
  const port = uws.us_socket_local_port(listenSocket as never);
  if (control.adminTokenGenerated) {
    console.log(`admin token (generated, saved 0600 in ${config.data}/admin-token; shown once): ${control.adminTokenGenerated}`);
  }

  return {
    port, router, hsm, control,
    async stop() {
      live.stop();
      await settler.stop();
      clearInterval(pruner);
      uws.us_listen_socket_close(listenSocket);
      await router.close();
      await hsm.terminate();
      await control.close();
    },
  };
}
