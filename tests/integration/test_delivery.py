"""Outbound delivery against real receiving servers (tests/peers/mx.py, an
aiosmtpd MX, on 127.0.0.x) with a real DNSSEC-signed Knot DNS zone `test.`.

Every MX host has its own loopback address; all of them listen on one port,
which is the relay's remote_port.  One DnsZone per test class; each test uses
its own domains (and addresses) in that zone.

The helpers here (DeliveryBase, msg_id_of, ...) are imported by
test_queue_control.py and test_burst.py.
"""

import email
import email.policy
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
import mxpeer  # noqa: E402
from mxpeer import MX  # noqa: E402

DELIVERY_TIMEOUT = 15.0
MSGID_RE = re.compile(rb'^Message-ID:\s*(<[^>\r\n]*>)', re.M | re.I)


def require_peers():
    """Exit 77 (skip) unless the relay, Knot, aiosmtpd and certtool exist."""
    harness.require_binary()
    dnszone.require_knot()
    if not mxpeer.aiosmtpd_available():
        sys.stderr.write('aiosmtpd not importable by %s; skipping\n'
                         % mxpeer.PYTHON)
        sys.exit(77)
    if not shutil.which(certs.CERTTOOL):
        sys.stderr.write('certtool (gnutls-bin) not installed; skipping\n')
        sys.exit(77)


def common_port(hosts):
    """A TCP port free on every one of the given loopback addresses."""
    for _ in range(50):
        port = harness.free_port()
        ok = True
        for h in hosts:
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((h, port))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return port
    raise RuntimeError('no port free on all of %s' % (hosts,))


def msg_id_of(content):
    m = MSGID_RE.search(content)
    return m.group(1).decode() if m else None


def new_msg_id(tag='t'):
    return '<%s.%s@client.test>' % (tag, uuid.uuid4().hex)


def message(sender, rcpts, subject='delivery test', msg_id=None, body=None):
    """(bytes, Message-ID) of a small message."""
    msg_id = msg_id or new_msg_id()
    lines = ['From: <%s>' % sender,
             'To: %s' % ', '.join('<%s>' % r for r in rcpts),
             'Subject: %s' % subject,
             'Message-ID: %s' % msg_id,
             'Date: Mon, 01 Jan 2024 00:00:00 +0000']
    text = '\r\n'.join(lines) + '\r\n\r\n' + (body or 'hello %s\r\n' % msg_id)
    return text.encode(), msg_id


def null_sender(addr):
    """How mx.py stores MAIL FROM:<> (aiosmtpd keeps '<>' or '')."""
    return addr in ('', '<>')


def dsn_parts(content):
    """(top-level message, list of delivery-status field blocks) of a DSN;
    AssertionError when it is not a multipart/report delivery-status."""
    msg = email.message_from_bytes(content, policy=email.policy.compat32)
    if msg.get_content_type() != 'multipart/report':
        raise AssertionError('DSN is %s, not multipart/report:\n%s'
                             % (msg.get_content_type(),
                                content.decode('utf-8', 'replace')))
    if msg.get_param('report-type') != 'delivery-status':
        raise AssertionError('report-type is %r' % msg.get_param('report-type'))
    blocks = None
    for part in msg.walk():
        if part.get_content_type() == 'message/delivery-status':
            blocks = part.get_payload()
            break
    if not blocks:
        raise AssertionError('no message/delivery-status part:\n%s'
                             % content.decode('utf-8', 'replace'))
    return msg, blocks


def per_recipient(blocks):
    """{final recipient address (lower case): field block}."""
    out = {}
    for b in blocks[1:]:
        fr = b.get('Final-Recipient', '')
        addr = fr.split(';', 1)[-1].strip().strip('<>').lower()
        out[addr] = b
    return out


class DeliveryBase(unittest.TestCase):
    """One Knot zone and one MX port per class; relays and MX hosts per
    test, all stopped in cleanup."""

    RECORDS = []
    HOSTS = []          # every 127.0.0.x an MX of this class may use

    @classmethod
    def setUpClass(cls):
        cls.zone = dnszone.DnsZone(cls.RECORDS)
        cls.addClassCleanup(cls.zone.close)
        cls.port = common_port(cls.HOSTS or ['127.0.0.1'])
        cls.certdir = tempfile.mkdtemp(prefix='tlsrelay-dlvcert-')
        cls.addClassCleanup(shutil.rmtree, cls.certdir, True)
        # One self-signed certificate serves every MX: under may/encrypt
        # nothing is verified, and the relay must say "Untrusted".
        cls.cert = certs.make_cert(cls.certdir, 'mx.test', self_signed=True)

    # -- peers -------------------------------------------------------------

    def relay(self, **keys):
        k = dict(self.zone.relay_keys())
        k.update({'remote_port': self.port, 'retry_min': '1s',
                  'retry_max': '2s'})
        k.update(keys)
        return harness.Relay(self, **k)

    def mx(self, host, hostname, tls=True, **opts):
        """An MX on host:self.port; tls=True offers STARTTLS with the
        self-signed certificate."""
        m = MX(self)
        if tls:
            opts.setdefault('tls_cert', self.cert.cert)
            opts.setdefault('tls_key', self.cert.key)
        m.start(host, self.port, hostname=hostname, **opts)
        return m

    # -- sending -----------------------------------------------------------

    def send(self, relay, sender, rcpts, **kw):
        """Submit one message; returns (queue ID, Message-ID)."""
        data, msg_id = message(sender, rcpts, **kw)
        code, reply, qid = harness.smtp_send(relay, sender, rcpts, data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, msg_id

    # -- waiting -----------------------------------------------------------

    def wait_queue_empty(self, relay, timeout=DELIVERY_TIMEOUT):
        q = harness.wait_for(lambda: not relay.mailq_json(), timeout)
        if not q:
            self.fail('queue not empty after %.0f s: %s\nlog:\n%s'
                      % (timeout, relay.mailq_json(), relay.log_text()[-3000:]))

    def wait_gone(self, relay, qid, timeout=DELIVERY_TIMEOUT):
        ok = harness.wait_for(lambda: relay.find(qid) is None, timeout)
        if not ok:
            self.fail('%s still queued after %.0f s: %s\nlog:\n%s'
                      % (qid, timeout, relay.find(qid),
                         relay.log_text()[-3000:]))

    def wait_deferred(self, relay, qid, timeout=DELIVERY_TIMEOUT):
        """The mailq JSON entry of qid once every recipient has a
        delay_reason."""
        def deferred():
            m = relay.find(qid)
            if m and m['recipients'] and all(
                    r.get('delay_reason') for r in m['recipients']):
                return m
            return None
        m = harness.wait_for(deferred, timeout)
        if not m:
            self.fail('%s not deferred with a reason after %.0f s: %s\nlog:\n'
                      '%s' % (qid, timeout, relay.find(qid),
                              relay.log_text()[-3000:]))
        return m

    def wait_log(self, relay, regex, timeout=DELIVERY_TIMEOUT):
        m = relay.wait_log(regex, timeout)
        if not m:
            self.fail('no log line matching %r within %.0f s; log:\n%s'
                      % (regex, timeout, relay.log_text()[-3000:]))
        return m

    def messages_with(self, mx, msg_id, n=1, timeout=DELIVERY_TIMEOUT):
        """The stored messages at mx carrying msg_id, once at least n."""
        def got():
            found = [(e, c) for e, c in mx.messages() if msg_id_of(c) == msg_id]
            return found if len(found) >= n else None
        found = harness.wait_for(got, timeout, 0.1)
        if not found:
            self.fail('message %s not at %s within %.0f s; events:\n%s'
                      % (msg_id, mx.host, timeout, mx.events()[-10:]))
        return found

    def sent_line(self, relay, qid, rcpt, host, ip, status='sent',
                  timeout=DELIVERY_TIMEOUT, tls='[a-z]+'):
        """The contract's delivery line; tls= the protection of it."""
        return self.wait_log(
            relay, r'^.*%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, tls=%s, '
            r'dsn=\d\.\d{1,3}\.\d{1,3}, status=%s \(.*\)$'
            % (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
               self.port, tls, status), timeout)


# ---------------------------------------------------------------------------
# TLS levels


class TlsLevels(DeliveryBase):
    RECORDS = [
        ('may.test.', 'MX', '10 mx1.may.test.'),
        ('mx1.may.test.', 'A', '127.0.0.5'),
        ('clear.test.', 'MX', '10 mx1.clear.test.'),
        ('mx1.clear.test.', 'A', '127.0.0.6'),
        ('none.test.', 'MX', '10 mx1.none.test.'),
        ('mx1.none.test.', 'A', '127.0.0.7'),
        ('enc.test.', 'MX', '10 mx1.enc.test.'),
        ('mx1.enc.test.', 'A', '127.0.0.8'),
        ('notls.test.', 'MX', '10 mx1.notls.test.'),
        ('mx1.notls.test.', 'A', '127.0.0.9'),
        # encrypt: the pref-10 host lacks STARTTLS, the pref-20 one has it.
        ('enc2.test.', 'MX', '10 mx1.enc2.test.'),
        ('enc2.test.', 'MX', '20 mx2.enc2.test.'),
        ('mx1.enc2.test.', 'A', '127.0.0.10'),
        ('mx2.enc2.test.', 'A', '127.0.0.11'),
    ]
    HOSTS = ['127.0.0.%d' % i for i in range(5, 12)]

    def test_may_uses_starttls_when_offered(self):
        mx = self.mx('127.0.0.5', 'mx1.may.test')
        relay = self.relay(default_tls_level='may')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@may.test'])
        env, content = self.messages_with(mx, mid)[0]
        self.assertEqual(env['mail_from'], 'alice@client.test')
        self.assertEqual(env['rcpt_tos'], ['bob@may.test'])
        self.assertIs(env['tls'], True, env)
        self.assertEqual(env['ehlo'], harness.HOSTNAME)
        self.sent_line(relay, qid, 'bob@may.test', 'mx1.may.test', '127.0.0.5',
                       tls='untrusted')
        self.wait_log(relay, r'Untrusted TLS connection '
                      r'established to mx1\.may\.test\[127\.0\.0\.5\]:%d: '
                      % self.port)
        self.wait_gone(relay, qid)

    def test_may_without_starttls_delivers_in_clear(self):
        mx = self.mx('127.0.0.6', 'mx1.clear.test', no_starttls=True)
        relay = self.relay(default_tls_level='may')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@clear.test'])
        env, _ = self.messages_with(mx, mid)[0]
        self.assertIs(env['tls'], False, env)
        self.assertEqual(env['rcpt_tos'], ['bob@clear.test'])
        self.sent_line(relay, qid, 'bob@clear.test', 'mx1.clear.test',
                       '127.0.0.6', tls='none')
        self.assertFalse(re.search(r'TLS connection established to '
                                   r'mx1\.clear\.test', relay.log_text()))
        self.wait_gone(relay, qid)

    def test_none_never_starttls(self):
        mx = self.mx('127.0.0.7', 'mx1.none.test')   # offers STARTTLS
        relay = self.relay(default_tls_level='none')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@none.test'])
        env, _ = self.messages_with(mx, mid)[0]
        self.assertIs(env['tls'], False, env)
        self.assertEqual(env['mail_from'], 'alice@client.test')
        self.assertEqual(env['rcpt_tos'], ['bob@none.test'])
        kinds = [e['event'] for e in mx.events()]
        self.assertIn('ehlo', kinds)
        self.assertNotIn('starttls', kinds)
        self.assertNotIn('starttls_failed', kinds)
        self.sent_line(relay, qid, 'bob@none.test', 'mx1.none.test',
                       '127.0.0.7', tls='none')
        self.wait_gone(relay, qid)

    def test_encrypt_self_signed_is_untrusted(self):
        mx = self.mx('127.0.0.8', 'mx1.enc.test')
        relay = self.relay(default_tls_level='encrypt')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@enc.test'])
        env, _ = self.messages_with(mx, mid)[0]
        self.assertIs(env['tls'], True, env)
        self.assertEqual(env['rcpt_tos'], ['bob@enc.test'])
        self.wait_log(relay, r'Untrusted TLS connection established to '
                      r'mx1\.enc\.test\[127\.0\.0\.8\]:%d: TLSv1\.[23] with '
                      r'cipher \S+' % self.port)
        self.sent_line(relay, qid, 'bob@enc.test', 'mx1.enc.test', '127.0.0.8')
        self.wait_gone(relay, qid)

    def test_encrypt_without_starttls_defers_with_reason(self):
        mx = self.mx('127.0.0.9', 'mx1.notls.test', no_starttls=True)
        relay = self.relay(default_tls_level='encrypt')
        qid, _ = self.send(relay, 'alice@client.test', ['bob@notls.test'])
        m = self.wait_deferred(relay, qid)
        self.assertEqual(m['queue_name'], 'deferred', m)
        self.assertEqual([r['address'] for r in m['recipients']],
                         ['bob@notls.test'])
        self.assertIn('TLS is required, but was not offered by host '
                      'mx1.notls.test[127.0.0.9]',
                      m['recipients'][0]['delay_reason'])
        self.wait_log(relay, r'%s: to=<bob@notls\.test>, relay=[^,]+, '
                      r'delay=[0-9.]+, (?:tls=[a-z]+, )?dsn=4\.\d+\.\d+, status=deferred '
                      r'\(TLS is required, but was not offered by host '
                      r'mx1\.notls\.test\[127\.0\.0\.9\]\)' % qid)
        # The relay talked to the host but never sent it the message.
        self.assertTrue(harness.wait_for(
            lambda: any(e['event'] == 'ehlo' for e in mx.events()), 5))
        kinds = {e['event'] for e in mx.events()}
        self.assertFalse(kinds & {'mail', 'rcpt', 'data'}, mx.events())
        self.assertEqual(mx.messages(), [])
        self.assertIsNotNone(relay.find(qid))

    def test_encrypt_defer_log_names_the_host(self):
        """The deferral happened in a session with that host, so the log
        names it as Postfix does (relay=HOST[IP]:PORT, not relay=none)."""
        self.mx('127.0.0.9', 'mx1.notls.test', no_starttls=True)
        relay = self.relay(default_tls_level='encrypt')
        qid, _ = self.send(relay, 'alice@client.test', ['bob@notls.test'])
        self.wait_deferred(relay, qid)
        self.sent_line(relay, qid, 'bob@notls.test', 'mx1.notls.test',
                       '127.0.0.9', status='deferred', timeout=5)

    def test_encrypt_skips_host_without_starttls_for_next_mx(self):
        plain = self.mx('127.0.0.10', 'mx1.enc2.test', no_starttls=True)
        good = self.mx('127.0.0.11', 'mx2.enc2.test')
        relay = self.relay(default_tls_level='encrypt')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@enc2.test'])
        env, _ = self.messages_with(good, mid)[0]
        self.assertIs(env['tls'], True, env)
        self.sent_line(relay, qid, 'bob@enc2.test', 'mx2.enc2.test',
                       '127.0.0.11')
        self.assertEqual(plain.messages(), [])
        self.assertFalse({e['event'] for e in plain.events()}
                         & {'mail', 'rcpt', 'data'}, plain.events())
        self.wait_gone(relay, qid)


# ---------------------------------------------------------------------------
# Routing, retries and bounces


class Routing(DeliveryBase):
    RECORDS = [
        # pref 10 is dead (nothing listens on .20), pref 20 takes the mail.
        ('fb.test.', 'MX', '10 mx1.fb.test.'),
        ('fb.test.', 'MX', '20 mx2.fb.test.'),
        ('mx1.fb.test.', 'A', '127.0.0.20'),
        ('mx2.fb.test.', 'A', '127.0.0.21'),
        # No MX, only an address: the implicit MX.
        ('imp.test.', 'A', '127.0.0.22'),
        # RFC 7505 null MX.
        ('null.test.', 'MX', '0 .'),
        # The senders' domain: DSNs go here.
        ('snd.test.', 'MX', '10 mx1.snd.test.'),
        ('mx1.snd.test.', 'A', '127.0.0.23'),
        ('retry.test.', 'MX', '10 mx1.retry.test.'),
        ('mx1.retry.test.', 'A', '127.0.0.24'),
        ('rej.test.', 'MX', '10 mx1.rej.test.'),
        ('mx1.rej.test.', 'A', '127.0.0.25'),
        ('a.test.', 'MX', '10 mx1.a.test.'),
        ('mx1.a.test.', 'A', '127.0.0.26'),
        ('b.test.', 'MX', '10 mx1.b.test.'),
        ('mx1.b.test.', 'A', '127.0.0.27'),
        ('c.test.', 'MX', '10 mx1.c.test.'),
        ('mx1.c.test.', 'A', '127.0.0.28'),
        # pref 10 answers 451 to one recipient; pref 20 takes it.
        ('bk.test.', 'MX', '10 mx1.bk.test.'),
        ('bk.test.', 'MX', '20 mx2.bk.test.'),
        ('mx1.bk.test.', 'A', '127.0.0.29'),
        ('mx2.bk.test.', 'A', '127.0.0.30'),
    ]
    HOSTS = ['127.0.0.%d' % i for i in range(20, 31)]

    def test_4xx_at_rcpt_goes_on_to_the_backup_mx(self):
        """As Postfix: a 4xx from the primary for one recipient sends that
        recipient on to the next MX host in the same round, while the
        recipient the primary took is not sent twice."""
        mx1 = self.mx('127.0.0.29', 'mx1.bk.test',
                      rcpt_reply={'grey@bk.test': '451 4.7.1 Greylisted, try later'})
        mx2 = self.mx('127.0.0.30', 'mx2.bk.test')
        # A retry would come an hour later: only the same round can deliver.
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send(relay, 'alice@client.test', ['ok@bk.test', 'grey@bk.test'])
        env1, _ = self.messages_with(mx1, mid)[0]
        self.assertEqual(env1['rcpt_tos'], ['ok@bk.test'])
        env2, _ = self.messages_with(mx2, mid)[0]
        self.assertEqual(env2['rcpt_tos'], ['grey@bk.test'])
        self.sent_line(relay, qid, 'ok@bk.test', 'mx1.bk.test', '127.0.0.29')
        self.sent_line(relay, qid, 'grey@bk.test', 'mx2.bk.test', '127.0.0.30')
        self.wait_gone(relay, qid)
        self.assertEqual(len(self.messages_with(mx1, mid)), 1)
        self.assertEqual(len(self.messages_with(mx2, mid)), 1)

    def test_4xx_everywhere_defers_with_the_last_reply(self):
        mx1 = self.mx('127.0.0.29', 'mx1.bk.test',
                      rcpt_reply={'grey@bk.test': '451 4.7.1 Greylisted, try later'})
        mx2 = self.mx('127.0.0.30', 'mx2.bk.test',
                      rcpt_reply={'grey@bk.test': '452 4.2.2 Mailbox full'})
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send(relay, 'alice@client.test', ['grey@bk.test'])
        self.wait_log(relay, r'%s: to=<grey@bk\.test>, relay=mx2\.bk\.test\[127\.0\.0\.30\]'
                      r':%d, delay=[0-9.]+, tls=[a-z]+, dsn=4\.2\.2, status=deferred \(.*452 4\.2\.2'
                      % (qid, self.port), timeout=10)
        rcpts = [r for m in relay.mailq_json() if m['queue_id'] == qid
                 for r in m['recipients']]
        self.assertEqual(len(rcpts), 1)
        self.assertIn('Mailbox full', rcpts[0].get('delay_reason', ''))
        # Logged once, at the end of the round, not once per host.
        self.assertEqual(len(re.findall(r'%s: to=<grey@bk\.test>' % qid, relay.log_text())), 1)
        self.assertEqual(mx1.messages(), [])
        self.assertEqual(mx2.messages(), [])

    def test_mx_fallback_from_dead_pref10_to_pref20(self):
        mx2 = self.mx('127.0.0.21', 'mx2.fb.test')
        relay = self.relay()
        qid, mid = self.send(relay, 'alice@client.test', ['bob@fb.test'])
        env, _ = self.messages_with(mx2, mid)[0]
        self.assertEqual(env['rcpt_tos'], ['bob@fb.test'])
        self.assertEqual(env['mail_from'], 'alice@client.test')
        self.sent_line(relay, qid, 'bob@fb.test', 'mx2.fb.test', '127.0.0.21')
        self.wait_gone(relay, qid)
        self.assertEqual(len(self.messages_with(mx2, mid)), 1)

    def test_implicit_mx(self):
        mx = self.mx('127.0.0.22', 'imp.test')
        relay = self.relay()
        qid, mid = self.send(relay, 'alice@client.test', ['bob@imp.test'])
        env, _ = self.messages_with(mx, mid)[0]
        self.assertEqual(env['rcpt_tos'], ['bob@imp.test'])
        self.sent_line(relay, qid, 'bob@imp.test', 'imp.test', '127.0.0.22')
        self.wait_gone(relay, qid)

    def test_null_mx_bounces_at_once(self):
        snd = self.mx('127.0.0.23', 'mx1.snd.test')
        # Retries far away: a bounce must not wait for one.
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send(relay, 'carol@snd.test', ['dave@null.test'])
        self.wait_log(relay, r'%s: to=<dave@null\.test>, relay=[^,]*, '
                      r'delay=[0-9.]+, (?:tls=[a-z]+, )?dsn=5\.\d+\.\d+, status=bounced'
                      % qid, timeout=10)
        dsns = harness.wait_for(lambda: [
            (e, c) for e, c in snd.messages() if null_sender(e['mail_from'])],
            10)
        self.assertTrue(dsns, 'no DSN at the sender domain MX; events: %s'
                        % snd.events())
        env, content = dsns[0]
        self.assertEqual(env['rcpt_tos'], ['carol@snd.test'])
        _, blocks = dsn_parts(content)
        rcpts = per_recipient(blocks)
        self.assertIn('dave@null.test', rcpts, blocks)
        self.assertEqual(rcpts['dave@null.test']['Action'].strip().lower(),
                         'failed')
        self.assertTrue(rcpts['dave@null.test']['Status'].strip()
                        .startswith('5.'), rcpts['dave@null.test'])
        self.assertIn(mid.encode(), content)   # original headers attached
        self.wait_queue_empty(relay)
        self.assertEqual(len(dsns), 1)

    def test_4xx_then_success_on_retry(self):
        mx = self.mx('127.0.0.24', 'mx1.retry.test', tempfail_first=1)
        relay = self.relay()
        qid, mid = self.send(relay, 'alice@client.test', ['bob@retry.test'])
        self.wait_log(relay, r'%s: to=<bob@retry\.test>, relay=mx1\.retry\.'
                      r'test\[127\.0\.0\.24\]:%d, delay=[0-9.]+, tls=[a-z]+, dsn=4\.3\.0, '
                      r'status=deferred \(.*451.*\)' % (qid, self.port))
        env, _ = self.messages_with(mx, mid)[0]
        self.assertEqual(env['rcpt_tos'], ['bob@retry.test'])
        self.sent_line(relay, qid, 'bob@retry.test', 'mx1.retry.test',
                       '127.0.0.24')
        self.wait_gone(relay, qid)
        datas = [e['reply'][:3] for e in mx.events() if e['event'] == 'data']
        self.assertEqual(datas, ['451', '250'])
        self.assertEqual(len(mx.messages()), 1)

    def test_550_at_rcpt_gives_dsn_at_sender_domain(self):
        rej = self.mx('127.0.0.25', 'mx1.rej.test',
                      rcpt_reply={'bad@rej.test': '550 5.1.1 No such user'})
        snd = self.mx('127.0.0.23', 'mx1.snd.test')
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send(relay, 'erin@snd.test',
                             ['good@rej.test', 'bad@rej.test'])
        env, _ = self.messages_with(rej, mid)[0]
        self.assertEqual(env['rcpt_tos'], ['good@rej.test'])
        self.assertEqual(env['mail_from'], 'erin@snd.test')
        self.sent_line(relay, qid, 'good@rej.test', 'mx1.rej.test',
                       '127.0.0.25')
        self.wait_log(relay, r'%s: to=<bad@rej\.test>, relay=mx1\.rej\.test'
                      r'\[127\.0\.0\.25\]:%d, delay=[0-9.]+, tls=[a-z]+, dsn=5\.1\.1, '
                      r'status=bounced \(.*550.*\)' % (qid, self.port))
        dsns = harness.wait_for(lambda: [
            (e, c) for e, c in snd.messages() if null_sender(e['mail_from'])],
            DELIVERY_TIMEOUT)
        self.assertTrue(dsns, 'no DSN at mx1.snd.test; events: %s\nlog:\n%s'
                        % (snd.events(), relay.log_text()[-3000:]))
        env, content = dsns[0]
        self.assertEqual(env['rcpt_tos'], ['erin@snd.test'])
        msg, blocks = dsn_parts(content)
        self.assertIn('erin@snd.test', msg.get('To', ''))
        rcpts = per_recipient(blocks)
        self.assertEqual(set(rcpts), {'bad@rej.test'}, blocks)
        fields = rcpts['bad@rej.test']
        self.assertEqual(fields['Status'].strip(), '5.1.1')
        self.assertEqual(fields['Action'].strip().lower(), 'failed')
        self.assertIn('550', fields.get('Diagnostic-Code', ''))
        self.assertIn(mid.encode(), content)
        self.wait_queue_empty(relay)
        self.assertEqual(len(dsns), 1)

    def test_many_recipients_across_domains_split(self):
        mxa = self.mx('127.0.0.26', 'mx1.a.test')
        mxb = self.mx('127.0.0.27', 'mx1.b.test', tls=False)
        mxc = self.mx('127.0.0.28', 'mx1.c.test')
        relay = self.relay()
        want = {
            'a': ['a1@a.test', 'a2@a.test', 'a3@a.test', 'a4@a.test'],
            'b': ['b1@b.test', 'b2@b.test'],
            'c': ['c1@c.test'],
        }
        # Interleaved on purpose.
        rcpts1 = ['a1@a.test', 'b1@b.test', 'a2@a.test', 'c1@c.test',
                  'a3@a.test', 'b2@b.test', 'a4@a.test']
        rcpts2 = ['c1@c.test', 'a2@a.test']
        qid1, mid1 = self.send(relay, 'alice@client.test', rcpts1)
        qid2, mid2 = self.send(relay, 'alice@client.test', rcpts2)
        self.wait_queue_empty(relay)
        expect = {
            mxa: {(mid1, r) for r in want['a']} | {(mid2, 'a2@a.test')},
            mxb: {(mid1, r) for r in want['b']},
            mxc: {(mid1, 'c1@c.test'), (mid2, 'c1@c.test')},
        }
        for mx, pairs in expect.items():
            got = []
            for env, content in mx.messages():
                self.assertEqual(env['mail_from'], 'alice@client.test')
                got += [(msg_id_of(content), r) for r in env['rcpt_tos']]
            # Each recipient exactly once, none of another domain.
            self.assertEqual(sorted(got), sorted(pairs), mx.host)
        for r in rcpts1:
            dom = r.split('@')[1]
            self.sent_line(relay, qid1, r, 'mx1.' + dom,
                           {'a.test': '127.0.0.26', 'b.test': '127.0.0.27',
                            'c.test': '127.0.0.28'}[dom])



class RecursiveResolver(DeliveryBase):
    """dns_servers = recursive (the contract): libunbound resolves by
    itself, with no forwarder; the test zone is reached through the
    unbound configuration's stub zone, as a site's own zones would be."""

    RECORDS = [('rec.test.', 'MX', '10 mx1.rec.test.'),
               ('mx1.rec.test.', 'A', '127.0.0.31')]
    HOSTS = ['127.0.0.31']

    def test_recursive_delivers(self):
        mx = self.mx('127.0.0.31', 'mx1.rec.test')
        relay = self.relay(default_tls_level='may', dns_servers='recursive')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@rec.test'])
        self.messages_with(mx, mid)
        self.sent_line(relay, qid, 'bob@rec.test', 'mx1.rec.test', '127.0.0.31')

if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
