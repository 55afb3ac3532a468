#!/usr/bin/env python3
"""TLS-terminating TCP forwarder for tests: HTTPS in front of a plain-http S3 server.

Usage: tls_proxy.py CERT KEY UPSTREAM_PORT
Prints the port it listens on (127.0.0.1), then serves until killed.
"""
import socket
import ssl
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(conn, upstream_port):
    try:
        up = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        conn.close()
        return
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    pipe(up, conn)


def main():
    cert, key, upstream_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        raw, _ = listener.accept()
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            continue
        threading.Thread(target=handle, args=(conn, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
