// The lower bound of any bake (bench/pipeline.ts): read every unique layer blob once,
// gunzip it, and gzip-compress its bytes once in 128 KiB blocks at level 9 (what a SquashFS
// writer does per data block) on all cores (zlib's thread pool). No tar parsing, no
// filesystem, no deduplication beyond unique blobs. Plain JS so that it starts in ~50 ms.
//   node bench/lib/lower-bound.mjs BLOB...   -> prints {"inputBytes":..,"outputBytes":..}
import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createGunzip, deflate } from 'node:zlib';

const BLOCK = 128 * 1024;
const jobs = availableParallelism();
let running = 0;
const waiting = [];
let inputBytes = 0;
let outputBytes = 0;

function compress(block) {
  return new Promise((resolve, reject) => {
    deflate(block, { level: 9 }, (error, out) => (error ? reject(error) : resolve(out.length)));
  });
}

async function submit(block) {
  while (running >= jobs * 2) await new Promise((r) => waiting.push(r));
  running++;
  compress(block)
    .then((n) => {
      outputBytes += Math.min(n, block.length);
    })
    .finally(() => {
      running--;
      waiting.shift()?.();
    });
}

for (const path of process.argv.slice(2)) {
  let pending = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(createGunzip())) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= BLOCK) {
      await submit(pending.subarray(0, BLOCK));
      inputBytes += BLOCK;
      pending = pending.subarray(BLOCK);
    }
  }
  if (pending.length) {
    await submit(pending);
    inputBytes += pending.length;
  }
}
while (running > 0) await new Promise((r) => waiting.push(r));
process.stdout.write(`${JSON.stringify({ inputBytes, outputBytes, jobs })}\n`);
