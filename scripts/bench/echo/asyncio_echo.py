"""TCP echo workload for Python asyncio streams, the same as tide.lua:
`server PORTFILE` or `client PORT CLIENTS SECONDS SIZE [WARMUP]`."""
import asyncio
import sys


async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def server(portfile):
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    with open(portfile, "w") as f:
        f.write("%d\n" % srv.sockets[0].getsockname()[1])
    async with srv:
        await srv.serve_forever()


async def client(port, clients, seconds, size, warmup):
    message = b"x" * size
    state = {"counting": False, "stop": False, "total": 0, "all": 0}

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not state["stop"]:
            writer.write(message)
            await reader.readexactly(size)
            state["all"] += 1
            if state["counting"]:
                state["total"] += 1
        writer.close()
        await writer.wait_closed()

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(warmup)
    state["counting"] = True
    t0 = loop.time()
    await asyncio.sleep(seconds)
    state["counting"] = False
    elapsed = loop.time() - t0
    state["stop"] = True
    await asyncio.gather(*tasks)
    print("messages_per_s=%.0f" % (state["total"] / elapsed))
    print("messages_total=%d" % state["all"])


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2]))
    else:
        warmup = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
        asyncio.run(client(int(sys.argv[2]), int(sys.argv[3]),
                           float(sys.argv[4]), int(sys.argv[5]), warmup))
