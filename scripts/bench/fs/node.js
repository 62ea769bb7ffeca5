// fs workload, Node.js fs.promises: write N files of 4 KiB and read them
// back, all concurrently, R rounds.  Usage: node node.js [N [R [dir]]]
'use strict';
const fsp = require('fs').promises;
const path = require('path');

const N = Number(process.argv[2] || 1000);
const R = Number(process.argv[3] || 20);
const base = process.argv[4] || '/dev/shm';
const SIZE = 4096;

async function main() {
  const dir = await fsp.mkdtemp(path.join(base, 'tide-bench-fs-node-'));
  const data = Buffer.alloc(SIZE, 'x');
  const paths = [];
  for (let i = 1; i <= N; i++) paths.push(path.join(dir, 'f' + String(i).padStart(4, '0')));
  async function round() {
    await Promise.all(paths.map((p) => fsp.writeFile(p, data)));
    const bufs = await Promise.all(paths.map((p) => fsp.readFile(p)));
    for (const b of bufs) if (b.length !== SIZE) throw new Error('short read');
  }
  await round();
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < R; r++) await round();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await fsp.rm(dir, { recursive: true });
  console.log(`files_per_s=${(N * R / dt).toFixed(1)}`);
  console.log(`ops_per_s=${(2 * N * R / dt).toFixed(1)}`);
  console.log(`round_ms=${(dt / R * 1000).toFixed(3)}`);
}
main();
