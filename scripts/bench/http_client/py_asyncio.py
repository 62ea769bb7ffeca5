"""Python asyncio streams, keep-alive: N requests over C connections, each
connection sending its next request when the previous response is read.
Prints req_per_s= and cpu_us_per_req=
(process CPU time of the timed part).  usage: py_asyncio.py URL [N] [C]"""
import asyncio
import sys
import time
from urllib.parse import urlsplit


async def worker(host, port, path, state):
    reader, writer = await asyncio.open_connection(host, port)
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").encode()
    while state["left"] > 0:
        state["left"] -= 1
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"status {status}")
    writer.close()
    await writer.wait_closed()


async def run(host, port, path, n, c):
    state = {"left": n}
    await asyncio.gather(*(worker(host, port, path, state) for _ in range(c)))


def main():
    u = urlsplit(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    c = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    asyncio.run(run(u.hostname, u.port, u.path, c, c))
    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(run(u.hostname, u.port, u.path, n, c))
    t1, c1 = time.perf_counter(), time.process_time()
    print(f"req_per_s={n / (t1 - t0):.1f}")
    print(f"cpu_us_per_req={(c1 - c0) * 1e6 / n:.2f}")


main()
