#!/usr/bin/env python3
"""A real SMTP server for tests (aiosmtpd): STARTTLS, implicit TLS or plain,
with AUTH PLAIN/LOGIN checked against one user. Every accepted message is
written to OUTDIR/<n>.json as {"mail_from", "rcpt_tos", "data"}.

Usage: smtp_server.py MODE OUTDIR [CERT KEY USER PASSWORD]
MODE: starttls | smtps | plain. Prints the port, then serves until killed.
"""
import json
import os
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(self.outdir, f"{self.n}.json")
        with open(path + ".tmp", "w") as f:
            json.dump({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "authenticated": bool(session.authenticated),
            }, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    mode, outdir = sys.argv[1], sys.argv[2]
    cert = key = user = password = None
    if mode != "plain":
        cert, key, user, password = sys.argv[3:7]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    kwargs = {}
    if mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        kwargs.update(authenticator=authenticator, auth_require_tls=True)
        if mode == "smtps":
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; with
            # implicit TLS every byte is encrypted already.
            kwargs.update(ssl_context=ctx, auth_require_tls=False)
        else:
            kwargs.update(tls_context=ctx, require_starttls=True)
    controller = Controller(Saver(outdir), hostname="127.0.0.1", port=port,
                            server_hostname="127.0.0.1", **kwargs)
    controller.start()
    print(port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
