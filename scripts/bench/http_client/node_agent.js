// Node.js http.get with a keep-alive http.Agent: N requests, C in flight.
// Prints req_per_s= and cpu_us_per_req= (process CPU time of the timed
// part).  usage: node node_agent.js URL [N] [C]
const http = require('http');
const url = new URL(process.argv[2]);
const n = +(process.argv[3] || 10000), c = +(process.argv[4] || 64);
const agent = new http.Agent({ keepAlive: true, maxSockets: c });

function get() {
  return new Promise((resolve, reject) => {
    http.get({ host: url.hostname, port: url.port, path: url.pathname, agent },
      (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => res.statusCode === 200 ? resolve(Buffer.concat(chunks))
          : reject(new Error('status ' + res.statusCode)));
      }).on('error', reject);
  });
}

async function run(count) {
  let left = count;
  const worker = async () => { while (left > 0) { left--; await get(); } };
  await Promise.all(Array.from({ length: c }, worker));
}

(async () => {
  await run(c);
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  await run(n);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  console.log(`req_per_s=${(n / secs).toFixed(1)}`);
  console.log(`cpu_us_per_req=${((cpu.user + cpu.system) / n).toFixed(2)}`);
  agent.destroy();
})();
