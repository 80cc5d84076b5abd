// Worker threads of Node 20 do not run the parent's `--import tsx` preload, so a TypeScript worker
// entry is started through this plain-JS shim: it registers tsx's loader in the worker's own thread,
// then imports the entry named in argv.
import { register } from 'tsx/esm/api';

register();
await import(process.argv[2]);
