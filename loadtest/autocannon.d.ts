// autocannon 8 ships no types; http-load.ts uses only its programmatic entry point (options as in its
// README, checked by the runs themselves), so one loose declaration is all it needs.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';
  interface Instance extends EventEmitter { stop(): void }
  function autocannon(opts: Record<string, unknown>): Instance;
  export default autocannon;
}
