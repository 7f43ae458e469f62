/** The worker thread of one benchmark cell (./cell.ts): measures it and posts the result. */
import { parentPort, workerData } from 'node:worker_threads';
import { measureCell, type CellJob } from './cell.js';

if (parentPort === null) throw new Error('bench/cell-worker.js runs only as a worker thread');
const port = parentPort;
const result = await measureCell(workerData as CellJob, (s) => process.stderr.write(`${s}\n`));
port.postMessage(result);
