#!/usr/bin/env python3
"""Send N mutated or random requests to tide's server, one connection
each, and print the status each got ("-" for none), one per line.

Usage: fuzzhttp.py PORT N SEED
Even cases are random bytes; odd cases are a valid request with a few
bytes changed.  A fixed seed keeps failures reproducible.
"""
import random
import socket
import sys

VALID = (b"POST /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"
         b"body")


def case(rng, i):
    if i % 2 == 0:
        return bytes(rng.randrange(256) for _ in range(32 + i))
    data = bytearray(VALID)
    for _ in range(3):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def exchange(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    if got.startswith(b"HTTP/1.1 "):
        return got[9:12].decode()
    return "-"


def main():
    port, n, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    for i in range(n):
        print(exchange(port, case(rng, i)))


if __name__ == "__main__":
    main()
