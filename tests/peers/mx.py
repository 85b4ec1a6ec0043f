#!/usr/bin/python3
"""A scriptable receiving MX for the integration tests (stdlib + aiosmtpd).

Serves SMTP on one loopback address and stores every accepted message as a
file in --maildir: one line of JSON with the envelope, then the raw content
exactly as received (dot-unstuffed, CRLF line ends).  Files are written under
a dot-name and renamed, so a reader never sees half a message; readers skip
names that start with a dot.

    mx.py --host 127.0.0.5 --port 2525 --maildir DIR
          [--tls-cert F --tls-key K] [--no-starttls]
          [--tls-max-version TLSv1.2] [--tls-client-ca CAFILE]
          [--hostname mx1.example.test]
          [--rcpt-reply 'bad@x.test=550 5.1.1 No such user'] ...
          [--data-reply '554 5.7.1 Go away'] [--mail-reply '334 x']
          [--no-smtputf8] [--requiretls]
          [--tempfail-first N] [--tempfail-stage mail|rcpt|data]
          [--log FILE] [--log-connect] [--ready-file PATH] [--verbose]

--rcpt-reply ADDR=REPLY answers RCPT TO for ADDR (case-insensitive; '@dom'
matches a whole domain) with REPLY instead of 250.  --tempfail-first N makes
the first N transactions (counted across connections) fail with
"451 4.3.0 Try again later" at --tempfail-stage (data: after the content has
been sent, the default; mail: at MAIL FROM; rcpt: at every RCPT TO of the
transaction); nothing is stored for them.  --data-reply makes every DATA end
with that reply and stores nothing.  --mail-reply makes every MAIL FROM
get that reply (the transaction does not start).  Replies are sent as
given, so a test can play a hostile MX: '354 ...' after the end of data or
to RCPT, '334 ...' to MAIL.  --no-smtputf8 leaves SMTPUTF8 out of the EHLO
reply (aiosmtpd's enable_SMTPUTF8=False) and refuses MAIL FROM ... SMTPUTF8.

--requiretls offers REQUIRETLS (RFC 8689) in the EHLO reply after STARTTLS
(never in clear, as the RFC asks) and takes MAIL FROM ... REQUIRETLS: the
parameter is kept in mail_options (envelope and mail event) like the others.
Without it the MX never offers REQUIRETLS and refuses the parameter with
aiosmtpd's 555, as a server that does not know the extension.

--tls-max-version caps the TLS versions the MX accepts after STARTTLS
(TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3; TLSv1_2 spellings work too), so a test
can offer a server that only speaks TLS 1.2.  Without it the MX accepts
whatever Python's ssl module allows by default.

--tls-client-ca CAFILE makes the MX request (not require) a client
certificate in the TLS handshake: a client that sends none is served as
usual; one that sends a certificate must chain to a CA in CAFILE (OpenSSL
verifies what it gets; an unknown issuer fails the handshake, logged as
starttls_failed).  The certificate the client showed, if any, is then
recorded in every stored envelope and in the starttls event as
tls_client_cn (its subject CN) and tls_client_sha256 (SHA-256 of its DER,
upper-case colon-separated hex, as certs.py's cert_sha256()); both are null
when the client showed none.  Without --tls-client-ca the MX requests no
certificate and these fields are absent.

With TLS (--tls-cert), the server name the client sent in its ClientHello
(SNI) is recorded as tls_sni in every stored envelope and in the starttls
event: the name as sent (a str), or null when the client sent none.  It is
also null for mail received in clear (tls false).  The MX serves the same
certificate whatever the name; SNI is only observed.

--log FILE appends one JSON object per event (ehlo, starttls,
starttls_failed, mail, rcpt, data, quit) with the reply sent, so a test can see what the relay tried even
when nothing was stored.  --log-connect adds a "connect" event for each TCP
connection accepted (before the banner), so a test can tell "never
connected" from "connected and gave up before EHLO".  The ready file is written (atomically) once the
socket listens; it holds {"pid", "host", "port"}, the real port when --port 0
was given.  SIGTERM or SIGINT closes the listener and exits 0.

Envelope fields: mail_from, rcpt_tos, mail_options, rcpt_options, peer
[ip, port], ehlo (the name the client gave), tls (bool), tls_version and
tls_cipher (when tls), tls_sni (the SNI name, or null), received (epoch
seconds), mx (our --hostname); with --tls-client-ca also tls_client_cn and
tls_client_sha256.
"""

import argparse
import asyncio
import hashlib
import ipaddress
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, TLSSetupException, syntax

TEMPFAIL = '451 4.3.0 Try again later'


def loopback(host):
    """Refuse anything but 127.0.0.0/8 and ::1: tests never touch a real
    network."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an IP address' % host)
    if not addr.is_loopback:
        raise argparse.ArgumentTypeError('%s is not a loopback address' % host)
    return host


def reply_arg(text):
    addr, sep, reply = text.partition('=')
    if not sep or not addr or len(reply) < 3 or not reply[:3].isdigit() \
            or reply[0] not in '2345':
        raise argparse.ArgumentTypeError(
            'want ADDRESS=REPLY, e.g. bad@x.test=550 5.1.1 No such user')
    return addr.strip().lower(), reply.strip()


def tls_version_arg(text):
    """An ssl.TLSVersion from 'TLSv1.2' or 'TLSv1_2'."""
    name = text.strip().replace('.', '_')
    if name not in ('TLSv1', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3'):
        raise argparse.ArgumentTypeError(
            'want TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, not %r' % text)
    return ssl.TLSVersion[name]


def smtp_reply(text):
    if len(text) < 3 or not text[:3].isdigit() or text[0] not in '2345':
        raise argparse.ArgumentTypeError('want an SMTP reply such as '
                                         '"554 5.7.1 Rejected"')
    return text


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--host', type=loopback, required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--maildir', required=True)
    p.add_argument('--tls-cert')
    p.add_argument('--tls-key')
    p.add_argument('--no-starttls', action='store_true')
    p.add_argument('--tls-max-version', type=tls_version_arg)
    p.add_argument('--tls-client-ca')
    p.add_argument('--hostname', default='mx.test')
    p.add_argument('--rcpt-reply', type=reply_arg, action='append',
                   default=[])
    p.add_argument('--data-reply', type=smtp_reply)
    p.add_argument('--mail-reply', type=smtp_reply)
    p.add_argument('--no-smtputf8', action='store_true')
    p.add_argument('--requiretls', action='store_true')
    p.add_argument('--tempfail-first', type=int, default=0)
    p.add_argument('--tempfail-stage', choices=('mail', 'rcpt', 'data'),
                   default='data')
    p.add_argument('--size-limit', type=int, default=64 * 1024 * 1024)
    p.add_argument('--log')
    p.add_argument('--log-connect', action='store_true')
    p.add_argument('--ready-file')
    p.add_argument('--verbose', action='store_true')
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error('--tls-cert and --tls-key go together')
    if args.tls_max_version and not args.tls_cert:
        p.error('--tls-max-version needs --tls-cert')
    if args.tls_client_ca and not args.tls_cert:
        p.error('--tls-client-ca needs --tls-cert')
    if args.requiretls and (not args.tls_cert or args.no_starttls):
        p.error('--requiretls needs --tls-cert (it is offered after STARTTLS)')
    if args.tempfail_first < 0:
        p.error('--tempfail-first must be >= 0')
    return args


def write_atomic(path, data):
    """Write data (bytes) to path through a dot-named temp file in the same
    directory and a rename."""
    d, name = os.path.split(path)
    tmp = os.path.join(d, '.tmp-%d-%s' % (os.getpid(), name))
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def tls_info(session):
    """(tls, version, cipher) of a session after STARTTLS."""
    extra = session.ssl
    if not extra:
        return False, None, None
    obj = extra.get('ssl_object')
    version = obj.version() if obj else None
    cipher = extra.get('cipher')
    return True, version, (cipher[0] if cipher else None)


def sni_info(session):
    """The server name the client sent (SNI) in the TLS handshake of this
    session, or None: no TLS, or a ClientHello without server_name."""
    obj = session.ssl.get('ssl_object') if session.ssl else None
    return getattr(obj, 'mx_sni', None) if obj else None


def record_sni(ssl_obj, server_name, ctx):
    """SSLContext.sni_callback: keep the name on the SSL object (OpenSSL
    calls this for every ClientHello, with None when there is no SNI).
    Returning None lets the handshake go on with the same context."""
    ssl_obj.mx_sni = server_name
    return None


def client_cert_info(session):
    """{'tls_client_cn', 'tls_client_sha256'} of the certificate the
    client showed in the TLS handshake (values None when it showed none or
    there was no TLS)."""
    obj = session.ssl.get('ssl_object') if session.ssl else None
    der = obj.getpeercert(binary_form=True) if obj else None
    if not der:
        return {'tls_client_cn': None, 'tls_client_sha256': None}
    cn = None
    for rdn in (obj.getpeercert() or {}).get('subject', ()):
        for key, value in rdn:
            if key == 'commonName':
                cn = value
    digest = hashlib.sha256(der).digest()
    return {'tls_client_cn': cn,
            'tls_client_sha256': ':'.join('%02X' % b for b in digest)}


class Handler:
    """aiosmtpd hooks: scripted replies, storage and the event log."""

    def __init__(self, args):
        self.args = args
        self.rcpt_replies = dict(args.rcpt_reply)
        self.tempfails_left = args.tempfail_first
        self.seq = itertools.count(1)
        self.log = open(args.log, 'a') if args.log else None

    def event(self, session, kind, **fields):
        if not self.log:
            return
        tls, version, _ = tls_info(session)
        rec = {'t': round(time.time(), 3), 'event': kind,
               'peer': list(session.peer[:2]) if session.peer else None,
               'tls': tls, 'tls_version': version}
        rec.update(fields)
        self.log.write(json.dumps(rec) + '\n')
        self.log.flush()

    def tempfail(self, envelope, stage):
        """Whether this command fails with 451.  Each MAIL or DATA at the
        configured stage uses up one of --tempfail-first; at the rcpt stage
        the first RCPT of a transaction uses one and the transaction's other
        RCPTs fail with it."""
        if self.args.tempfail_stage != stage:
            return False
        if stage == 'rcpt' and getattr(envelope, 'mx_tempfail', False):
            return True
        if self.tempfails_left <= 0:
            return False
        self.tempfails_left -= 1
        if stage == 'rcpt':
            envelope.mx_tempfail = True
        return True

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.args.requiretls and session.ssl and responses:
            # RFC 8689 section 2: only once the session is under TLS.
            responses = responses[:-1] + ['250-REQUIRETLS'] + responses[-1:]
        self.event(session, 'ehlo', name=hostname)
        return responses

    def handle_STARTTLS(self, server, session, envelope):
        _, version, cipher = tls_info(session)
        extra = client_cert_info(session) if self.args.tls_client_ca else {}
        self.event(session, 'starttls', cipher=cipher,
                   tls_sni=sni_info(session), **extra)
        return True

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if getattr(server, 'mx_requiretls', False):
            mail_options = list(mail_options) + ['REQUIRETLS']
        if self.args.mail_reply:
            reply = self.args.mail_reply
        elif self.tempfail(envelope, 'mail'):
            reply = TEMPFAIL
        else:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            reply = '250 2.1.0 Ok'
        self.event(session, 'mail', address=address, options=mail_options,
                   reply=reply)
        return reply

    def rcpt_script(self, address):
        a = address.lower()
        domain = '@' + a.rpartition('@')[2]
        return self.rcpt_replies.get(a) or self.rcpt_replies.get(domain)

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.rcpt_script(address)
        if reply is None and self.tempfail(envelope, 'rcpt'):
            reply = TEMPFAIL
        if reply is None:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            reply = '250 2.1.5 Ok'
        self.event(session, 'rcpt', address=address, options=rcpt_options,
                   reply=reply)
        return reply

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content or b''
        if self.args.data_reply:
            reply = self.args.data_reply
        elif self.tempfail(envelope, 'data'):
            reply = TEMPFAIL
        else:
            name = self.store(session, envelope, content)
            reply = '250 2.0.0 Ok: queued as %s' % name
        self.event(session, 'data', size=len(content), reply=reply)
        return reply

    async def handle_QUIT(self, server, session, envelope):
        self.event(session, 'quit')
        return '221 2.0.0 Bye'

    def store(self, session, envelope, content):
        tls, version, cipher = tls_info(session)
        env = {
            'mail_from': envelope.mail_from,
            'rcpt_tos': list(envelope.rcpt_tos),
            'mail_options': list(envelope.mail_options),
            'rcpt_options': list(envelope.rcpt_options),
            'peer': list(session.peer[:2]) if session.peer else None,
            'ehlo': session.host_name,
            'tls': tls,
            'tls_version': version,
            'tls_cipher': cipher,
            'tls_sni': sni_info(session),
            'received': time.time(),
            'mx': self.args.hostname,
        }
        if self.args.tls_client_ca:
            env.update(client_cert_info(session))
        # Names sort in arrival order.
        name = '%020d.%06d.msg' % (time.time_ns(), next(self.seq))
        write_atomic(os.path.join(self.args.maildir, name),
                     json.dumps(env).encode() + b'\n' + bytes(content))
        return name.split('.')[1]

    def close(self):
        if self.log:
            self.log.close()
            self.log = None


class MXSMTP(SMTP):
    """aiosmtpd's server, with failed TLS handshakes in the event log (a
    test can then tell "tried TLS and gave up" from "never tried")."""

    def connection_made(self, transport):
        # aiosmtpd calls this again after STARTTLS (with the TLS transport):
        # only the first call is a new connection.
        first = getattr(self, '_original_transport', None) is None
        super().connection_made(transport)
        if first and self.event_handler.args.log_connect:
            self.event_handler.event(self.session, 'connect')

    @syntax('MAIL FROM: <address>', extended=' [SP <mail-parameters>]')
    async def smtp_MAIL(self, arg):
        # aiosmtpd refuses parameters it does not know; with --requiretls
        # take REQUIRETLS out of the argument and hand it to handle_MAIL.
        self.mx_requiretls = False
        if arg and self.event_handler.args.requiretls:
            words = arg.split(' ')
            kept = [w for w in words if w.upper() != 'REQUIRETLS']
            self.mx_requiretls = len(kept) != len(words)
            arg = ' '.join(kept)
        await super().smtp_MAIL(arg)

    @syntax('STARTTLS', when='tls_context')
    async def smtp_STARTTLS(self, arg):
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException as e:
            self.event_handler.event(self.session, 'starttls_failed',
                                     error=str(e.__cause__ or e))
            raise


def tls_context(args):
    if not args.tls_cert or args.no_starttls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    ctx.sni_callback = record_sni
    if args.tls_max_version is not None:
        ctx.maximum_version = args.tls_max_version
    if args.tls_client_ca:
        # CERT_OPTIONAL: ask for a certificate in the handshake, accept a
        # client without one.  (Python's ssl has no "accept anything"
        # callback, hence the CA file.)
        ctx.load_verify_locations(cafile=args.tls_client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = Handler(args)
    ctx = tls_context(args)

    def factory():
        smtp = MXSMTP(handler, hostname=args.hostname, ident='ESMTP test MX',
                      tls_context=ctx, require_starttls=False,
                      decode_data=False,
                      enable_SMTPUTF8=not args.no_smtputf8,
                      data_size_limit=args.size_limit, timeout=60)
        smtp.event_handler = handler
        return smtp

    server = await loop.create_server(factory, host=args.host,
                                      port=args.port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = server.sockets[0].getsockname()[1]
    if args.ready_file:
        write_atomic(args.ready_file, json.dumps(
            {'pid': os.getpid(), 'host': args.host, 'port': port}).encode())
    logging.getLogger('mx').info('listening on %s:%d', args.host, port)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        # Sessions still open end with the process; cancel them so that
        # asyncio does not complain about pending tasks.
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        handler.close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr, format='mx.py %(levelname)s %(name)s: %(message)s')
    os.makedirs(args.maildir, exist_ok=True)
    asyncio.run(serve(args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
