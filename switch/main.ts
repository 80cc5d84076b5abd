// Entry point: `npm start` (or `node --import tsx switch/main.ts --port 0`).

import { loadConfig, ConfigError } from './config.ts';
import { startSwitch } from './server.ts';

try {
  const config = loadConfig();
  const s = await startSwitch(config);
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  console.log(`oncepay listening on http://${host}:${s.port}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: stopping`);
    s.stop().then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
  else console.error(err);
  process.exit(1);
}
