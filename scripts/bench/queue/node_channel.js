// queue workload, Node.js: one producer and one consumer pass N items
// through a promise-based bounded channel of 100 (the usual shape: a ring
// buffer, plus FIFO lists of waiting getters and putters that are resolved
// directly).  Prints the best time of REPEAT runs, in seconds.
'use strict';

const N = Number(process.env.N || 1000000);
const REPEAT = Number(process.env.REPEAT || 3);

class Channel {
  constructor(max) {
    this.max = max;
    this.items = new Array(max);
    this.head = 0;
    this.n = 0;
    this.getters = [];   // resolve functions of waiting get()s
    this.putters = [];   // [item, resolve] of waiting put()s
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

async function once() {
  const ch = new Channel(100);
  const t0 = process.hrtime.bigint();
  const producer = (async () => {
    for (let i = 1; i <= N; i++) await ch.put(i);
  })();
  const consumer = (async () => {
    let sum = 0;
    for (let i = 0; i < N; i++) sum += await ch.get();
    return sum;
  })();
  const [, sum] = await Promise.all([producer, consumer]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sum !== N * (N + 1) / 2) throw new Error('items lost');
  return dt;
}

(async () => {
  let best = Infinity;
  for (let r = 0; r < REPEAT; r++) best = Math.min(best, await once());
  console.log(best.toFixed(6));
})();
