#!/usr/bin/env python3
"""Holds N idle TCP connections to HOST:PORT open (the bench's idle clients):
each sends nothing; one the server closes (its head timeout, 10 s) is opened
again at once. Prints "holding N" once all are open, then runs until killed.

    hold-connections.py HOST PORT N
"""
import selectors
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()


def open_one():
    s = socket.create_connection((host, port), timeout=5)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)


for _ in range(n):
    open_one()
print(f"holding {n}", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server: replace it
            sel.unregister(s)
            s.close()
            open_one()
