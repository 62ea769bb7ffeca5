// Node.js http.get with a keep-alive http.Agent: N requests, C in flight.
// Prints "<requests> <seconds>".  usage: node node_agent.js URL [N] [C]
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
  const t0 = process.hrtime.bigint();
  await run(n);
  console.log(n, Number(process.hrtime.bigint() - t0) / 1e9);
  agent.destroy();
})();
