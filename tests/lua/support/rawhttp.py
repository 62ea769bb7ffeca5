#!/usr/bin/env python3
"""Raw TCP peer for tide's HTTP server specs.

Usage: rawhttp.py PORT STEP...
  send:HEX      send these bytes (hex-encoded so any byte survives argv)
  sleep:SECS    pause
  shut          half-close the write side
  timeout:SECS  how long to wait for the server after the last step (5)
Prints everything the server sent, then one of the markers <<EOF>>,
<<TIMEOUT>>, <<RESET>> on a line of its own.  A send that fails because
the server closed the connection ends the steps early.
"""
import socket
import sys
import time


def main():
    port = int(sys.argv[1])
    wait = 5.0
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = bytearray()
    for step in sys.argv[2:]:
        kind, _, arg = step.partition(":")
        try:
            if kind == "send":
                s.sendall(bytes.fromhex(arg))
            elif kind == "sleep":
                time.sleep(float(arg))
            elif kind == "shut":
                s.shutdown(socket.SHUT_WR)
            elif kind == "timeout":
                wait = float(arg)
        except (BrokenPipeError, ConnectionResetError):
            break
    s.settimeout(wait)
    end = "<<EOF>>"
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        end = "<<TIMEOUT>>"
    except ConnectionResetError:
        end = "<<RESET>>"
    sys.stdout.buffer.write(bytes(got))
    sys.stdout.buffer.write(("\n" + end + "\n").encode())


if __name__ == "__main__":
    main()
