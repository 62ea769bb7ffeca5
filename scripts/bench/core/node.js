// The engine benchmark, Node.js side (the same workloads as tide.lua).
//   node node.js spawn  N     N async functions, awaited with Promise.all
//   node node.js switch N     N switches between two async functions that
//                             hand a promise back and forth (ping-pong)
//   node node.js sleep  N S   N async functions sleep S seconds concurrently
// Prints key=value figures.  spawn and switch first run a tenth of the work
// untimed, so the JIT has compiled the hot code before the timed run.
//
// Why this switch: two async functions that each `await null` interleave
// through the microtask queue without either ever waiting for the other, so
// that measures a microtask, not a hand-over.  Here each side waits on a
// promise that only the other side resolves, which is what a task switch
// through the scheduler is.  `switch_immediate_ns` also reports the other
// candidate, `await new Promise(setImmediate)`, which goes through the event
// loop's check phase like tide.sleep(0) goes through tide's ready queue.
"use strict";

const [mode, nArg, sArg] = process.argv.slice(2);
const n = Number(nArg);
const secs = Number(sArg ?? "1");
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function body(i) {
  return i;
}

async function spawnAwait(count) {
  const tasks = new Array(count);
  for (let i = 0; i < count; i++) tasks[i] = body(i);
  await Promise.all(tasks);
}

// rounds round trips = 2 * rounds switches.
async function pingPong(rounds) {
  let wakeA, wakeB;
  const waitA = () => new Promise((r) => { wakeA = r; });
  const waitB = () => new Promise((r) => { wakeB = r; });
  async function b() {
    for (let i = 0; i < rounds; i++) {
      await waitB();
      wakeA();
    }
  }
  async function a() {
    for (let i = 0; i < rounds; i++) {
      const mine = waitA();
      wakeB();
      await mine;
    }
  }
  const done = b(); // b must be waiting before a first wakes it
  await Promise.all([done, a()]);
}

async function immediates(count) {
  for (let i = 0; i < count; i++) await new Promise(setImmediate);
}

async function viaImmediate(count) {
  await Promise.all([immediates(count >> 1), immediates(count >> 1)]);
}

async function sleeper(ms) {
  await new Promise((r) => setTimeout(r, ms));
}

async function main() {
  if (mode === "spawn") {
    await spawnAwait(Math.floor(n / 10));
    const t0 = now();
    await spawnAwait(n);
    const dt = now() - t0;
    console.log(`spawn_await_per_s=${(n / dt).toFixed(1)}`);
    console.log(`spawn_await_ns=${((dt * 1e9) / n).toFixed(1)}`);
  } else if (mode === "switch") {
    await pingPong(Math.floor(n / 20));
    let t0 = now();
    await pingPong(n >> 1);
    let dt = now() - t0;
    console.log(`switch_ns=${((dt * 1e9) / n).toFixed(2)}`);
    await viaImmediate(Math.floor(n / 10));
    t0 = now();
    await viaImmediate(n);
    dt = now() - t0;
    console.log(`switch_immediate_ns=${((dt * 1e9) / n).toFixed(2)}`);
  } else if (mode === "sleep") {
    const t0 = now();
    const tasks = new Array(n);
    for (let i = 0; i < n; i++) tasks[i] = sleeper(secs * 1000);
    await Promise.all(tasks);
    console.log(`sleep_wall_s=${(now() - t0).toFixed(4)}`);
    console.log(`sleepers=${n}`);
  } else {
    console.error("usage: node node.js spawn|switch|sleep N [seconds]");
    process.exit(2);
  }
}

main();
