// Node.js fetch (undici, keep-alive by default): N requests, C in flight.
// Prints "<requests> <seconds>".  usage: node node_fetch.mjs URL [N] [C]
const url = process.argv[2];
const n = +(process.argv[3] || 10000), c = +(process.argv[4] || 64);

async function run(count) {
  let left = count;
  const worker = async () => {
    while (left > 0) {
      left--;
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error('status ' + res.status);
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
}

await run(c);
const t0 = process.hrtime.bigint();
await run(n);
console.log(n, Number(process.hrtime.bigint() - t0) / 1e9);
