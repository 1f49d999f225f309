// Entry point of the `octoclip` command (bin/octoclip.js runs it).
import { drained } from './io';
import { main } from './main';

process.exitCode = await main(process.argv.slice(2));
// Dawn keeps the event loop alive while a device exists: leave once the command is done, but only after
// stdout and stderr have handed everything to the OS (a pipe takes 64 KiB at a time; exit() drops the rest).
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit();
