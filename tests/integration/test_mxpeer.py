"""Self-test of the test MX (tests/peers/mx.py through mxpeer.MX) and of the
certificate helper (certs.py), with smtplib as the client.  Needs no relay."""

import hashlib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import mxpeer  # noqa: E402
from mxpeer import MX  # noqa: E402

HOST = '127.0.0.5'
MESSAGE = (b'From: <alice@client.test>\r\nTo: <bob@dest.test>\r\n'
           b'Subject: mxpeer self-test\r\n\r\n'
           b'.a line that starts with a dot\r\nhello\r\n')

CERTS = None


def setUpModule():
    global CERTS
    if not mxpeer.aiosmtpd_available():
        raise unittest.SkipTest('aiosmtpd not importable by %s'
                                % mxpeer.PYTHON)
    if shutil.which(certs.CERTTOOL):
        CERTS = tempfile.mkdtemp(prefix='tlsrelay-mxcert-')


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS, ignore_errors=True)


def need_certs():
    if not CERTS:
        raise unittest.SkipTest('certtool (gnutls-bin) not installed')
    return CERTS


def free_port(host=HOST):
    s = socket.socket()
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def verifying_context(ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = True
    return ctx


def send(mx, sender='alice@client.test', rcpts=('bob@dest.test',),
         msg=MESSAGE, tls_context=None, server_hostname=None,
         source=None):
    """One transaction with smtplib.  Returns (per-rcpt replies, data
    reply, EHLO features before TLS)."""
    s = smtplib.SMTP(mx.host, mx.port, local_hostname='client.test',
                     timeout=10, source_address=source)
    try:
        s.ehlo()
        features = dict(s.esmtp_features)
        if tls_context is not None:
            # smtplib verifies the name it connected to; the test names
            # do not resolve, so connect by address and check the name.
            s._host = server_hostname or mx.host
            s.starttls(context=tls_context)
            s.ehlo()
        code, reply = s.mail(sender)
        if code != 250:
            return [], (code, reply), features
        replies = [s.rcpt(r) for r in rcpts]
        if not any(c == 250 for c, _ in replies):
            return replies, None, features
        result = s.data(msg)
        s.quit()
        return replies, result, features
    finally:
        s.close()


class Plain(unittest.TestCase):

    def test_store_envelope_and_content(self):
        port = free_port()
        mx = MX(self).start(HOST, port, hostname='mx1.example.test')
        self.assertEqual(mx.port, port)
        replies, data, features = send(
            mx, rcpts=['bob@dest.test', 'carol@dest.test'],
            source=('127.0.0.9', 0))
        self.assertEqual(data[0], 250, data)
        self.assertNotIn('starttls', features)
        msgs = mx.wait_messages(1)
        self.assertEqual(len(msgs), 1)
        env, content = msgs[0]
        self.assertEqual(env['mail_from'], 'alice@client.test')
        self.assertEqual(env['rcpt_tos'], ['bob@dest.test', 'carol@dest.test'])
        self.assertIs(env['tls'], False)
        self.assertIsNone(env['tls_version'])
        self.assertEqual(env['ehlo'], 'client.test')
        self.assertEqual(env['peer'][0], '127.0.0.9')
        self.assertEqual(env['mx'], 'mx1.example.test')
        # Dot-unstuffed, CRLF kept: exactly what was sent.
        self.assertEqual(content, MESSAGE)
        self.assertEqual(os.listdir(mx.maildir), [n for n in os.listdir(
            mx.maildir) if not n.startswith('.')])

    def test_port_zero_and_banner(self):
        mx = MX(self).start(HOST, 0, hostname='mx9.example.test')
        self.assertGreater(mx.port, 0)
        with socket.create_connection((HOST, mx.port), timeout=5) as s:
            banner = s.recv(512)
        self.assertTrue(banner.startswith(b'220 mx9.example.test '), banner)

    def test_only_loopback(self):
        r = subprocess.run([mxpeer.PYTHON, mxpeer.MX_PY, '--host',
                            '192.0.2.1', '--port', '25', '--maildir',
                            '/nonexistent'], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn('not a loopback address', r.stderr)

    def test_rcpt_reply(self):
        mx = MX(self).start(HOST, 0, rcpt_reply={
            'bad@x.test': '550 5.1.1 No such user',
            '@gone.test': '551 5.1.6 Moved away'})
        replies, data, _ = send(mx, rcpts=['BAD@x.test', 'ok@x.test',
                                           'a@gone.test'])
        self.assertEqual(replies[0], (550, b'5.1.1 No such user'))
        self.assertEqual(replies[1][0], 250)
        self.assertEqual(replies[2], (551, b'5.1.6 Moved away'))
        self.assertEqual(data[0], 250)
        env, _ = mx.wait_messages(1)[0]
        self.assertEqual(env['rcpt_tos'], ['ok@x.test'])
        rcpts = [e for e in mx.events() if e['event'] == 'rcpt']
        self.assertEqual([e['reply'][:3] for e in rcpts],
                         ['550', '250', '551'])

    def test_tempfail_first_at_data(self):
        mx = MX(self).start(HOST, 0, tempfail_first=2)
        for want in (451, 451, 250):
            _, data, _ = send(mx)
            self.assertEqual(data[0], want, data)
        _, data, _ = send(mx)
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(mx.wait_messages(2)), 2)
        datas = [e['reply'] for e in mx.events() if e['event'] == 'data']
        self.assertEqual(datas[0], '451 4.3.0 Try again later')
        self.assertEqual(len(datas), 4)

    def test_tempfail_first_at_mail(self):
        mx = MX(self).start(HOST, 0, tempfail_first=1, tempfail_stage='mail')
        _, first, _ = send(mx)
        self.assertEqual(first[0], 451, first)
        _, data, _ = send(mx)
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(mx.wait_messages(1)), 1)

    def test_data_reply(self):
        mx = MX(self).start(HOST, 0, data_reply='554 5.7.1 Not today')
        _, data, _ = send(mx)
        self.assertEqual(data, (554, b'5.7.1 Not today'))
        self.assertEqual(mx.messages(), [])

    def test_mail_reply(self):
        mx = MX(self).start(HOST, 0, mail_reply='334 VXNlcm5hbWU6')
        _, first, _ = send(mx)
        self.assertEqual(first, (334, b'VXNlcm5hbWU6'))
        self.assertEqual(mx.messages(), [])

    def test_smtputf8_offered_unless_disabled(self):
        _, _, features = send(MX(self).start(HOST, 0))
        self.assertIn('smtputf8', features)
        _, _, features = send(MX(self).start(HOST, 0, no_smtputf8=True))
        self.assertNotIn('smtputf8', features)

    def test_sigterm_exits_zero(self):
        mx = MX()
        try:
            mx.start(HOST, 0)
            port = mx.port
            # An idle open session must not keep it from stopping.
            idle = socket.create_connection((HOST, port), timeout=5)
            self.assertEqual(mx.stop(), 0, mx.output())
            idle.close()
            with self.assertRaises(OSError):
                socket.create_connection((HOST, port), timeout=1).close()
        finally:
            mx.close()


class TLS(unittest.TestCase):

    def test_starttls_verified(self):
        d = need_certs()
        c = certs.make_cert(d, 'mx1.example.test',
                            ['mx1.example.test', HOST])
        mx = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key,
                            hostname='mx1.example.test')
        _, data, features = send(mx, tls_context=verifying_context(c.ca.cert),
                                 server_hostname='mx1.example.test')
        self.assertIn('starttls', features)
        self.assertEqual(data[0], 250, data)
        env, content = mx.wait_messages(1)[0]
        self.assertIs(env['tls'], True)
        self.assertIn(env['tls_version'], ('TLSv1.2', 'TLSv1.3'))
        self.assertTrue(env['tls_cipher'])
        self.assertEqual(env['ehlo'], 'client.test')
        self.assertEqual(content, MESSAGE)
        kinds = [e['event'] for e in mx.events()]
        self.assertEqual(kinds[:3], ['ehlo', 'starttls', 'ehlo'])

    def requiretls_session(self, mx, c):
        """EHLO features in clear and after STARTTLS, and the replies to
        MAIL ... REQUIRETLS and to an ordinary MAIL over TLS."""
        s = smtplib.SMTP(mx.host, mx.port, local_hostname='client.test',
                         timeout=10)
        try:
            s.ehlo()
            before = dict(s.esmtp_features)
            s._host = 'mx1.example.test'
            s.starttls(context=verifying_context(c.ca.cert))
            s.ehlo()
            after = dict(s.esmtp_features)
            first = s.mail('alice@client.test', ['REQUIRETLS', 'SIZE=10'])
            s.rset()
            second = s.mail('carol@client.test')
            s.rcpt('bob@dest.test')
            s.data(MESSAGE)
            s.quit()
            return before, after, first, second
        finally:
            s.close()

    def test_requiretls(self):
        """requiretls=True: REQUIRETLS offered only after STARTTLS, the MAIL
        parameter taken and recorded; by default neither."""
        d = need_certs()
        c = certs.make_cert(d, 'mx1.example.test')
        mx = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key,
                            hostname='mx1.example.test', requiretls=True)
        before, after, first, second = self.requiretls_session(mx, c)
        self.assertNotIn('requiretls', before)
        self.assertIn('requiretls', after)
        self.assertEqual(first[0], 250, first)
        self.assertEqual(second[0], 250, second)
        mails = [e for e in mx.events() if e['event'] == 'mail']
        self.assertEqual([m['options'] for m in mails],
                         [['SIZE=10', 'REQUIRETLS'], []], mails)
        env, _ = mx.wait_messages(1)[0]
        self.assertEqual(env['mail_from'], 'carol@client.test')
        self.assertEqual(env['mail_options'], [])
        # The default MX does not know the extension.
        mx = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key,
                            hostname='mx1.example.test')
        before, after, first, second = self.requiretls_session(mx, c)
        self.assertNotIn('requiretls', after)
        self.assertEqual(first[0], 555, first)
        self.assertEqual(second[0], 250, second)

    def test_no_starttls(self):
        d = need_certs()
        c = certs.make_cert(d, 'mx2.example.test')
        mx = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key,
                            no_starttls=True)
        _, data, features = send(mx)
        self.assertNotIn('starttls', features)
        self.assertIs(mx.wait_messages(1)[0][0]['tls'], False)

    def test_tls_max_version(self):
        """tls_max_version='TLSv1.2': a TLS 1.3-only client fails, a client
        that allows 1.2 gets exactly 1.2; the default still allows 1.3."""
        d = need_certs()
        c = certs.make_cert(d, 'mx12.example.test')
        mx = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key,
                            tls_max_version='TLSv1.2')
        only13 = verifying_context(c.ca.cert)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        with self.assertRaises(ssl.SSLError):
            send(mx, tls_context=only13, server_hostname='mx12.example.test')
        self.assertEqual(mx.messages(), [])
        _, data, _ = send(mx, tls_context=verifying_context(c.ca.cert),
                          server_hostname='mx12.example.test')
        self.assertEqual(data[0], 250, data)
        self.assertEqual(mx.wait_messages(1)[0][0]['tls_version'], 'TLSv1.2')
        plain = MX(self).start(HOST, 0, tls_cert=c.cert, tls_key=c.key)
        _, data, _ = send(plain, tls_context=only13,
                          server_hostname='mx12.example.test')
        self.assertEqual(data[0], 250, data)
        self.assertEqual(plain.wait_messages(1)[0][0]['tls_version'],
                         'TLSv1.3')
        bad = subprocess.run([mxpeer.PYTHON, mxpeer.MX_PY, '--host', HOST,
                              '--port', '0', '--maildir', d,
                              '--tls-cert', c.cert, '--tls-key', c.key,
                              '--tls-max-version', 'TLSv1.4'],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)
        self.assertIn('TLSv1.3', bad.stderr)

    def test_bad_certs_fail_verification(self):
        """certs.py makes what the policy tests need: an expired leaf, a
        self-signed one, one for another name and one from an unknown CA
        all fail a verifying client, and the MX keeps serving after each
        failed handshake."""
        d = need_certs()
        good = certs.make_cert(d, 'good.example.test')
        other_ca = certs.make_ca(d, cn='Unknown CA', name='other-ca')
        cases = [
            ('expired', certs.make_cert(d, 'old.example.test', expired=True),
             'old.example.test', 'expired'),
            ('self-signed', certs.make_cert(d, 'self.example.test',
                                            self_signed=True),
             'self.example.test', 'self'),
            ('wrong host', certs.make_cert(d, 'other.example.test'),
             'good.example.test', 'mismatch'),
            ('unknown CA', certs.make_cert(d, 'good.example.test',
                                           ca=other_ca, name='unknown-ca'),
             'good.example.test', 'unable to get local issuer'),
        ]
        for label, cert, name, why in cases:
            with self.subTest(label):
                mx = MX(self).start(HOST, 0, tls_cert=cert.cert,
                                    tls_key=cert.key)
                with self.assertRaises(ssl.SSLCertVerificationError) as cm:
                    send(mx, tls_context=verifying_context(good.ca.cert),
                         server_hostname=name)
                self.assertIn(why, str(cm.exception))
                self.assertIn('error', mx.wait_event('starttls_failed'))
                # Still serving: the same MX takes mail without TLS.
                _, data, _ = send(mx)
                self.assertEqual(data[0], 250, data)

    def test_expired_dates(self):
        d = need_certs()
        c = certs.make_cert(d, 'dates.example.test', expired=True)
        info = subprocess.run(['certtool', '-i', '--infile', c.cert],
                              capture_output=True, text=True).stdout
        self.assertIn('Not After: Fri Jan 01 00:00:00 UTC 2021', info)

    def test_fingerprints(self):
        d = need_certs()
        c = certs.make_cert(d, 'fp.example.test')
        self.assertRegex(c.cert_sha256(), r'^([0-9A-F]{2}:){31}[0-9A-F]{2}$')
        self.assertRegex(c.pubkey_sha256(), r'^([0-9A-F]{2}:){31}[0-9A-F]{2}$')
        self.assertNotEqual(c.cert_sha256(), c.pubkey_sha256())
        der = ssl.PEM_cert_to_DER_cert(c.pem())
        self.assertEqual(c.cert_sha256(), ':'.join(
            '%02X' % b for b in hashlib.sha256(der).digest()))


if __name__ == '__main__':
    unittest.main(verbosity=2)
