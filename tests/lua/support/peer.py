"""Misbehaving and patient TCP peers for faults_spec.lua.

  peer.py client PORT   connect, send half a request line, reset
  peer.py server        listen on a free loopback port, print it, accept
                        one connection, read a little, reset
  peer.py ping PORT     connect and print "connected", then send "ping\\n"
                        and print the line that comes back, or "dropped"
                        if the connection ends first (waits up to 10 s)

The reset is a close with SO_LINGER set to zero seconds, which makes the
kernel send RST instead of FIN.
"""
import socket
import struct
import sys
import time

LINGER_RST = struct.pack("ii", 1, 0)


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    sock.close()


def client(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"half a requ")
    time.sleep(0.05)
    reset(s)


def server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    print(ls.getsockname()[1], flush=True)
    conn, _ = ls.accept()
    conn.recv(10)
    time.sleep(0.05)
    reset(conn)
    ls.close()


def ping(port):
    s = socket.create_connection(("127.0.0.1", port))
    print("connected", flush=True)
    s.settimeout(10)
    try:
        s.sendall(b"ping\n")
        line = s.makefile().readline().strip()
    except OSError:
        line = ""
    print(line or "dropped", flush=True)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(int(sys.argv[2]))
    elif sys.argv[1] == "ping":
        ping(int(sys.argv[2]))
    else:
        server()
