"""Hello-world HTTP server for the benchmark: a Python asyncio Protocol.

Usage: python3 asyncio_proto.py PORT_FILE  (binds a free loopback port and
writes it).  The leanest asyncio server that still speaks HTTP/1.1 the way
the others do: it answers every complete request head in the buffer
(keep-alive, pipelining) with a fixed response and a Date header cached
per second, and closes on "Connection: close".
"""
import asyncio
import email.utils
import sys
import time

BODY = b"Hello, World!"
_date = [0, b""]


def response():
    now = int(time.time())
    if now != _date[0]:
        _date[0] = now
        _date[1] = email.utils.formatdate(now, usegmt=True).encode()
    return (b"HTTP/1.1 200 OK\r\nDate: " + _date[1] +
            b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" +
            BODY)


class Hello(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        close = False
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            self.buf = self.buf[end + 4:]
            out.append(response())
            if b"connection: close" in head:
                close = True
                break
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Hello, "127.0.0.1", 0, backlog=511)
    with open(sys.argv[1], "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


asyncio.run(main())
