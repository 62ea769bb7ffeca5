// TCP echo workload for Node.js `net`, the same as tide.lua: `server
// PORTFILE` or `client PORT CLIENTS SECONDS SIZE [WARMUP]`.
'use strict';
const net = require('net');
const fs = require('fs');

const mode = process.argv[2];

if (mode === 'server') {
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
    fs.writeFileSync(process.argv[3], server.address().port + '\n');
  });
} else {
  const port = +process.argv[3], clients = +process.argv[4];
  const seconds = +process.argv[5], size = +process.argv[6];
  const warmup = +(process.argv[7] || 0.5);
  const message = Buffer.alloc(size, 'x');
  let counting = false, stop = false, total = 0, all = 0, open = clients;
  let t0 = 0;
  for (let i = 0; i < clients; i++) {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let got = 0;
    s.on('connect', () => s.write(message));
    s.on('data', (d) => {
      got += d.length;
      while (got >= size) {
        got -= size;
        all++;
        if (counting) total++;
        if (stop) { s.end(); return; }
        s.write(message);
      }
    });
    s.on('close', () => { if (--open === 0) done(); });
  }
  setTimeout(() => {
    counting = true;
    t0 = performance.now();
    setTimeout(() => {
      counting = false;
      const elapsed = (performance.now() - t0) / 1000;
      stop = true;
      console.log(`messages_per_s=${Math.round(total / elapsed)}`);
    }, seconds * 1000);
  }, warmup * 1000);
  function done() { console.log(`messages_total=${all}`); }
}
