#!/usr/bin/env node
// The only place that exits the process. Everything else sets process.exitCode or throws.
import { main } from '../dist/cli/main.js';

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ctrbake: unexpected error, please report it: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
