"""Python aiohttp ClientSession (keep-alive pool of C connections): N
requests, C in flight.  Prints req_per_s= and cpu_us_per_req=
(process CPU time of the timed part).
usage: py_aiohttp.py URL [N] [C]"""
import asyncio
import sys
import time

import aiohttp


async def run(session, url, count, c):
    state = {"left": count}

    async def worker():
        while state["left"] > 0:
            state["left"] -= 1
            async with session.get(url) as res:
                await res.read()
                if res.status != 200:
                    raise RuntimeError(f"status {res.status}")

    await asyncio.gather(*(worker() for _ in range(c)))


async def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    c = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    conn = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=conn) as session:
        await run(session, url, c, c)
        t0, c0 = time.perf_counter(), time.process_time()
        await run(session, url, n, c)
        t1, c1 = time.perf_counter(), time.process_time()
        print(f"req_per_s={n / (t1 - t0):.1f}")
        print(f"cpu_us_per_req={(c1 - c0) * 1e6 / n:.2f}")


asyncio.run(main())
