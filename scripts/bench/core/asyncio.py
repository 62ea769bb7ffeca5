"""The engine benchmark, Python asyncio side (the same workloads as tide.lua).

    python3 asyncio.py spawn  N     create_task N coroutines, then gather
    python3 asyncio.py switch N     N switches: two tasks ping-pong through
                                    await asyncio.sleep(0)
    python3 asyncio.py sleep  N S   N tasks sleep S seconds concurrently

Prints key=value figures.  spawn and switch first run a tenth of the work
untimed, as the other runtimes do.
"""

import os
import sys

# This file is called asyncio.py, and Python puts the script's folder first
# on the module path: drop it, or `import asyncio` would import this file.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import asyncio  # noqa: E402
import time  # noqa: E402


async def body(i):
    return i


async def spawn_await(count):
    tasks = [asyncio.create_task(body(i)) for i in range(count)]
    await asyncio.gather(*tasks)


async def player(rounds):
    for _ in range(rounds):
        await asyncio.sleep(0)


async def switch(count):
    # Two tasks each sleep(0) count/2 times: every sleep(0) hands the turn
    # to the other task, count switches in all.
    a = asyncio.create_task(player(count // 2))
    b = asyncio.create_task(player(count // 2))
    await a
    await b


async def sleeper(secs):
    await asyncio.sleep(secs)


async def main(mode, n, secs):
    now = time.perf_counter
    if mode == "spawn":
        await spawn_await(n // 10)
        t0 = now()
        await spawn_await(n)
        dt = now() - t0
        print(f"spawn_await_per_s={n / dt:.1f}")
        print(f"spawn_await_ns={dt * 1e9 / n:.1f}")
    elif mode == "switch":
        await switch(n // 10)
        t0 = now()
        await switch(n)
        dt = now() - t0
        print(f"switch_ns={dt * 1e9 / n:.2f}")
    elif mode == "sleep":
        t0 = now()
        tasks = [asyncio.create_task(sleeper(secs)) for _ in range(n)]
        await asyncio.gather(*tasks)
        print(f"sleep_wall_s={now() - t0:.4f}")
        print(f"sleepers={n}")
    else:
        print("usage: python3 asyncio.py spawn|switch|sleep N [seconds]",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2:
        args = ["", "0"]
    asyncio.run(main(args[0], int(args[1]),
                     float(args[2]) if len(args) > 2 else 1.0))
