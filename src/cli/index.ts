// Entry point of the `octoclip` command (bin/octoclip.js runs it).
import { main } from './main';

process.exitCode = await main(process.argv.slice(2));
// Dawn keeps the event loop alive while a device exists: leave once the command is done.
process.exit();
