# queue workload, Python asyncio: one producer task and one consumer task
# pass N items through asyncio.Queue(100).  Prints the best time of REPEAT
# runs, in seconds.
import asyncio
import os
import time

N = int(os.environ.get("N", "1000000"))
REPEAT = int(os.environ.get("REPEAT", "3"))


async def once():
    q = asyncio.Queue(100)

    async def producer():
        for i in range(1, N + 1):
            await q.put(i)

    async def consumer():
        total = 0
        for _ in range(N):
            total += await q.get()
        return total

    t0 = time.perf_counter()
    _, total = await asyncio.gather(producer(), consumer())
    dt = time.perf_counter() - t0
    assert total == N * (N + 1) // 2, "items lost"
    return dt


async def main():
    best = min([await once() for _ in range(REPEAT)])
    print(f"{best:.6f}")


asyncio.run(main())
