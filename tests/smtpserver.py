"""A real SMTP server process for the delivery tests: aiosmtpd with optional STARTTLS and login,
each message saved to a Maildir. Run: python -m tests.smtpserver --port P --maildir DIR [--cert C --key K --user U --password W]
"""

from __future__ import annotations

import argparse
import mailbox
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Save:
    def __init__(self, path: str) -> None:
        self.box = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.box.add(envelope.original_content or envelope.content)
        return "250 OK"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)

    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode() \
            and auth_data.password == a.password.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    kwargs = {"tls_context": tls, "require_starttls": tls is not None}
    if a.user:
        # PLAIN only: after a refused PLAIN, smtplib tries LOGIN, which aiosmtpd 1.4 leaves hanging
        kwargs.update(authenticator=check, auth_required=True, auth_require_tls=tls is not None,
                      auth_exclude_mechanism=["LOGIN"])
    controller = Controller(Save(a.maildir), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
