// Node.js fetch (undici, keep-alive by default): N requests, C in flight.
// Prints req_per_s= and cpu_us_per_req= (process CPU time of the timed
// part).  usage: node node_fetch.mjs URL [N] [C]
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
const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
await run(n);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(c0);
console.log(`req_per_s=${(n / secs).toFixed(1)}`);
console.log(`cpu_us_per_req=${((cpu.user + cpu.system) / n).toFixed(2)}`);
