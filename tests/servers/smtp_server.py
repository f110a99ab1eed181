#!/usr/bin/python3
"""A real SMTP server for allerta's integration tests (Debian python3-aiosmtpd).

Run with Debian's interpreter (/usr/bin/python3), which sees the apt package:

    /usr/bin/python3 tests/servers/smtp_server.py --port 0 --maildir DIR \
        [--tls-cert CERT --tls-key KEY [--smtps]] [--auth USER:PASSWORD]

After binding it prints exactly one line ``READY <port>`` on stdout and flushes,
so a test can read the port it got (``--port 0`` picks a free one). It stops
cleanly (exit 0) on SIGTERM or SIGINT.

Behaviour:
  * every accepted message is stored in the Maildir ``--maildir`` (``new/``),
    with the ``X-Peer``, ``X-MailFrom`` and ``X-RcptTo`` headers added, exactly
    like aiosmtpd's ``Mailbox`` handler;
  * ``--tls-cert/--tls-key``: STARTTLS is offered and required (MAIL, AUTH, ...
    before STARTTLS get ``530``); with ``--smtps`` the whole connection is TLS
    from the first byte instead (implicit TLS, ``smtps://``);
  * ``--auth USER:PASSWORD``: AUTH PLAIN and LOGIN, required before MAIL
    (``530 5.7.0``); wrong credentials get ``535 5.7.8``;
  * by recipient local part (case-insensitive prefix):
      - ``tempfail*@...``: ``451 4.3.0 try again later`` on the first RCPT for
        that address (per server lifetime), accepted afterwards;
      - ``reject*@...``: ``550 5.1.1 mailbox unavailable``, always;
      - ``slow*@...``: the reply to DATA comes after a 2 s sleep.

With ``--log FILE`` one JSON line per SMTP event (rcpt decisions, stored
messages, auth results) is appended to FILE, so a test can count attempts.
"""

import argparse
import asyncio
import json
import logging
import mailbox
import os
import signal
import ssl
import sys
import time
import warnings

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

TEMPFAIL_REPLY = "451 4.3.0 try again later"
REJECT_REPLY = "550 5.1.1 mailbox unavailable"
SLOW_DATA_SECONDS = 2.0


def local_part(address: str) -> str:
    return address.rsplit("@", 1)[0].lower()


class EventLog:
    def __init__(self, path):
        self._file = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def __call__(self, event: str, **fields) -> None:
        if self._file is None:
            return
        fields["event"] = event
        fields["time"] = time.time()
        self._file.write(json.dumps(fields, sort_keys=True) + "\n")


class TestHandler(Mailbox):
    """aiosmtpd's Maildir handler plus per-recipient behaviour."""

    def __init__(self, maildir: str, log: EventLog):
        # The test may have created the (empty) directory already: make sure
        # the Maildir's own subdirectories exist too.
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        super().__init__(maildir)
        self._tempfailed = set()
        self._log = log

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lp = local_part(address)
        if lp.startswith("reject"):
            self._log("rcpt", address=address, reply=550)
            return REJECT_REPLY
        if lp.startswith("tempfail"):
            key = address.lower()
            if key not in self._tempfailed:
                self._tempfailed.add(key)
                self._log("rcpt", address=address, reply=451)
                return TEMPFAIL_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        self._log("rcpt", address=address, reply=250)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(local_part(a).startswith("slow") for a in envelope.rcpt_tos):
            await asyncio.sleep(SLOW_DATA_SECONDS)
        message = self.prepare_message(session, envelope)
        key = self.mailbox.add(message)
        self._log(
            "message",
            key=key,
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message_id=message.get("Message-ID"),
        )
        return "250 OK"


def make_authenticator(user: str, password: str, log: EventLog):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        log("auth", mechanism=mechanism, success=ok)
        # handled=False: let aiosmtpd answer 235 / 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return authenticator


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--maildir", required=True, help="Maildir for accepted messages")
    p.add_argument("--tls-cert", help="PEM certificate: offer and require STARTTLS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--smtps", action="store_true",
                   help="implicit TLS on the whole connection instead of STARTTLS")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require AUTH PLAIN/LOGIN with these credentials")
    p.add_argument("--hostname", default="localhost", help="name in greeting/EHLO")
    p.add_argument("--log", metavar="FILE", help="append one JSON line per event")
    p.add_argument("-v", "--verbose", action="store_true", help="aiosmtpd debug log on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.smtps and not args.tls_cert:
        p.error("--smtps needs --tls-cert and --tls-key")
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth takes USER:PASSWORD")
    return args


async def serve(args) -> None:
    log = EventLog(args.log)
    handler = TestHandler(args.maildir, log)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    smtp_kwargs = dict(
        hostname=args.hostname,  # avoids socket.getfqdn(), a DNS lookup
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=60,
    )
    if tls_context is not None and not args.smtps:
        smtp_kwargs.update(tls_context=tls_context, require_starttls=True)
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        smtp_kwargs.update(
            authenticator=make_authenticator(user, password, log),
            auth_required=True,
            # With STARTTLS AUTH is only allowed after it (as real servers do).
            # Over implicit TLS aiosmtpd cannot tell the connection is secure,
            # and without TLS at all the test asked for plain AUTH: allow it.
            auth_require_tls=tls_context is not None and not args.smtps,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **smtp_kwargs),
        host=args.host,
        port=args.port,
        ssl=tls_context if args.smtps else None,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()

    await stop.wait()
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=2)
    except asyncio.TimeoutError:
        pass


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="smtp_server %(levelname)s %(name)s: %(message)s",
    )
    # "AUTH without TLS" is exactly what a test asks for with --auth alone.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    if not args.verbose:
        logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
