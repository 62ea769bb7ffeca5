# The queue benchmark, Python asyncio side: one producer task and one
# consumer task pass N items (argument 1, default 1,000,000) through
# asyncio.Queue(100).  A tenth of the work runs first, untimed, as in the
# other programs.  Prints key=value figures (see run.sh).
import os
import sys

# This file is called asyncio.py, and Python puts the script's folder first
# on the module path: drop it, or `import asyncio` would import this file.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import asyncio  # noqa: E402
import time  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000


async def run_pass(n):
    q = asyncio.Queue(100)

    async def producer():
        for i in range(1, n + 1):
            await q.put(i)

    async def consumer():
        total = 0
        for _ in range(n):
            total += await q.get()
        return total

    t0 = time.perf_counter()
    _, total = await asyncio.gather(producer(), consumer())
    dt = time.perf_counter() - t0
    assert total == n * (n + 1) // 2, "items lost"
    return dt


async def main():
    await run_pass(N // 10)
    dt = await run_pass(N)
    print(f"items_per_s={N / dt:.0f}")
    print(f"ns_per_item={dt * 1e9 / N:.1f}")


asyncio.run(main())
