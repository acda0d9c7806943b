#!/usr/bin/env python3
"""The "from memory" column of the large-zip rows: answers every GET with one file's bytes,
written from memory (no file read, one copy into the socket), HTTP/1.1 keep-alive, a thread per
connection.

Not a module proxy: with few connections it shows what this machine's loopback and wrk leave
for a server that writes its responses through the socket, so the zip ratios can be read
against it; with many, its threads cost it more than an event loop (below athens-proxy at 32
conns on 2026-12-07). As fast as the same loop in C here (2026-12-07, wrk at 4 / 32 conns:
4.0-4.8 / 3.0-3.2 GiB/s for both).
Usage: ceiling.py <file> <port>
"""

import socket
import sys
import threading

BODY = memoryview(open(sys.argv[1], "rb").read())
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n\r\n"
        % len(BODY))
CHUNK = 1 << 20  # our writer's buffer size


def serve(conn):
    pending = b""
    with conn:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
                while b"\r\n\r\n" in pending:
                    _, pending = pending.split(b"\r\n\r\n", 1)
                    conn.sendall(HEAD)
                    for off in range(0, len(BODY), CHUNK):
                        conn.sendall(BODY[off:off + CHUNK])
        except OSError:
            return  # wrk closes its connections mid-response when a run ends


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[2])))
    s.listen(512)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
