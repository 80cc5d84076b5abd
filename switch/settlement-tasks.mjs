// The settlement pool's entry (piscina's `filename`). Worker threads of Node 20 do not run the
// parent's `--import tsx` preload, so, as workers/worker-boot.mjs does for the shards, this plain-JS
// shim registers tsx's loader in the pool thread, then loads the TypeScript tasks; piscina calls the
// export named by each run's `name`.
import { register } from 'tsx/esm/api';

register();
export const { dueVendors, mergeLists, mergeParts, settlementsCsv } = await import('./settlement-tasks.ts');
