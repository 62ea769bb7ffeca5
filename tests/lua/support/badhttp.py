"""A deliberately broken HTTP/1.1 server for the client's hostile-input
specs.  It binds a free loopback port, writes it to the file named by its
first argument, and answers each request according to its path with one of
the canned replies below, then closes the connection.  /hang answers
nothing and appends "closed" to <first argument>.log once the client has
closed the connection; /halfbody sends a head and part of the body, then
waits the same way.  Runs until killed."""
import socket
import sys
import threading

REPLIES = {
    b"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"/garbage": b"HELLO, this is not HTTP\r\n\r\n",
    b"/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    b"/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"ZZZ\r\nxyz\r\n0\r\n\r\n",
    b"/badgzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: 10\r\n\r\nnot gzip!!",
    b"/hugeheader": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 300000 +
                    b"\r\nContent-Length: 2\r\n\r\nok",
    b"/badstatus": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
    b"/nothing": b"",
}


def serve(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return
            data += more
        path = data.split(b" ", 2)[1]
        if path in (b"/hang", b"/halfbody"):
            if path == b"/halfbody":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                             b"\r\nsome")
            while conn.recv(65536):
                pass
            with open(sys.argv[1] + ".log", "a") as f:
                f.write("closed\n")
            return
        reply = REPLIES.get(path, REPLIES[b"/ok"])
        if reply:
            conn.sendall(reply)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
