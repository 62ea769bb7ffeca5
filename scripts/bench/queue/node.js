// The queue benchmark, Node.js side: one producer and one consumer pass N
// items (argument 1, default 1,000,000) through a promise-based bounded
// channel of 100, written the usual way: a ring buffer plus FIFO lists of
// waiting getters and putters that are resolved directly.  A tenth of the
// work runs first, untimed, so the JIT has warmed up.  Prints key=value
// figures (see run.sh).
'use strict';

const N = Number(process.argv[2] || 1000000);

class Channel {
  constructor(max) {
    this.max = max;
    this.items = new Array(max);
    this.head = 0;
    this.n = 0;
    this.getters = []; // resolve functions of waiting get()s
    this.putters = []; // [item, resolve] of waiting put()s
  }

  put(item) {
    if (this.getters.length > 0) {
      this.getters.shift()(item);
      return Promise.resolve();
    }
    if (this.n < this.max) {
      this.items[(this.head + this.n) % this.max] = item;
      this.n++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.putters.push([item, resolve]));
  }

  get() {
    if (this.n > 0) {
      const item = this.items[this.head];
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.max;
      this.n--;
      if (this.putters.length > 0) {
        const [pitem, resolve] = this.putters.shift();
        this.items[(this.head + this.n) % this.max] = pitem;
        this.n++;
        resolve();
      }
      return Promise.resolve(item);
    }
    return new Promise((resolve) => this.getters.push(resolve));
  }
}

async function pass(n) {
  const ch = new Channel(100);
  const t0 = process.hrtime.bigint();
  const producer = (async () => {
    for (let i = 1; i <= n; i++) await ch.put(i);
  })();
  const consumer = (async () => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await ch.get();
    return sum;
  })();
  const [, sum] = await Promise.all([producer, consumer]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sum !== n * (n + 1) / 2) throw new Error('items lost');
  return dt;
}

(async () => {
  await pass(Math.floor(N / 10));
  const dt = await pass(N);
  console.log(`items_per_s=${(N / dt).toFixed(0)}`);
  console.log(`ns_per_item=${(dt * 1e9 / N).toFixed(1)}`);
})();
