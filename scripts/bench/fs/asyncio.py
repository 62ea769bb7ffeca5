# fs workload, Python asyncio: each file operation is a blocking function
# run with asyncio.to_thread, all concurrently, R rounds.
# Usage: python3 asyncio.py [N [R [dir]]]
import os
import sys

# This file is called asyncio.py, and Python puts the script's folder first
# on the module path: drop it, or `import asyncio` would import this file.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import asyncio  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
R = int(sys.argv[2]) if len(sys.argv) > 2 else 20
BASE = sys.argv[3] if len(sys.argv) > 3 else "/dev/shm"
SIZE = 4096


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


async def main():
    d = tempfile.mkdtemp(prefix="tide-bench-fs-py-", dir=BASE)
    data = b"x" * SIZE
    paths = [os.path.join(d, "f%04d" % i) for i in range(1, N + 1)]

    async def one_round():
        await asyncio.gather(*(asyncio.to_thread(write_file, p, data)
                               for p in paths))
        bufs = await asyncio.gather(*(asyncio.to_thread(read_file, p)
                                      for p in paths))
        for b in bufs:
            if len(b) != SIZE:
                raise RuntimeError("short read")

    await one_round()
    t0 = time.perf_counter()
    for _ in range(R):
        await one_round()
    dt = time.perf_counter() - t0
    shutil.rmtree(d)
    print("files_per_s=%.1f" % (N * R / dt))
    print("ops_per_s=%.1f" % (2 * N * R / dt))
    print("round_ms=%.3f" % (dt / R * 1000))


asyncio.run(main())
