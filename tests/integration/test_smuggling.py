"""Hostile clients over raw sockets: SMTP smuggling (end-of-data variants),
bare LF/CR, STARTTLS command injection, over-long command lines."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RelayTestCase  # noqa: E402

harness.require_binary()

CERTS = None


def setUpModule():
    global CERTS
    CERTS = harness.CertDir()


def tearDownModule():
    if CERTS:
        CERTS.close()


SMUGGLED = (b'MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@y.test>\r\n'
            b'DATA\r\nsmuggled\r\n.\r\n')

# Bytes after "hello" that some servers take for the end of data.
VARIANTS = [b'\n.\n', b'\r\n.\r', b'\n.\r\n', b'\r.\r\n', b'\r\n.\n']


class Smuggling(RelayTestCase):

    @classmethod
    def setUpClass(cls):
        # One relay for the whole class keeps this file fast; every test
        # checks that the queue is still empty afterwards.
        cls.r = harness.Relay()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()

    def open_data(self, c):
        c.greet()
        c.expect_cmd('MAIL FROM:<good@client.test>', 250)
        c.expect_cmd('RCPT TO:<rcpt@dest.test>', 250)
        c.expect_cmd('DATA', 354)

    def assert_refused(self, replies, what):
        self.assertTrue(replies, '%s: no reply at all' % what)
        self.assertGreaterEqual(replies[0].code, 500,
                                '%s: first reply %r' % (what, replies))
        self.assertLess(replies[0].code, 600)
        for rep in replies:
            self.assertNotEqual(rep.code, 354, '%s: second DATA started: %r'
                                % (what, replies))
            self.assertNotIn('queued as', rep.text,
                             '%s: something was queued: %r' % (what, replies))

    def assert_queue_clean(self, what):
        q = self.r.mailq_json()
        self.assertEqual(q, [], '%s: queue not empty' % what)
        for m in q:
            self.assertNotEqual(m['sender'], 'evil@x.test', what)

    def test_end_of_data_variants(self):
        for v in VARIANTS:
            with self.subTest(variant=v):
                with self.r.raw() as c:
                    self.open_data(c)
                    c.send(b'Subject: x\r\n\r\nhello' + v + SMUGGLED)
                    replies = c.read_all(idle=1.0, total=5.0)
                    self.assert_refused(replies, repr(v))
                self.assert_queue_clean(repr(v))
                self.assertTrue(self.r.alive())

    def test_bare_lf_in_body(self):
        for bad in (b'line one\nline two\r\n', b'line one\rline two\r\n'):
            with self.subTest(body=bad):
                with self.r.raw() as c:
                    self.open_data(c)
                    c.send(b'Subject: x\r\n\r\n' + bad + b'.\r\n')
                    replies = c.read_all(idle=1.0, total=5.0)
                    self.assert_refused(replies, repr(bad))
                self.assert_queue_clean(repr(bad))

    def test_bare_lf_in_command(self):
        with self.r.raw() as c:
            c.greet()
            c.send(b'MAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>\r\n')
            replies = c.read_all(idle=1.0, total=5.0)
            self.assertTrue(replies, 'no reply to a bare LF command')
            self.assertGreaterEqual(replies[0].code, 500, replies)
            self.assertFalse([x for x in replies if x.code < 400],
                             'a bare-LF command line was obeyed: %r' % replies)
            if not c.closed:
                # Whatever state the session is in, no transaction may exist.
                c.send(b'DATA\r\n')
                more = c.read_all(idle=0.5, total=2.0)
                self.assertFalse([x for x in more if x.code == 354], more)
        self.assert_queue_clean('bare LF command')

    def test_bare_lf_ehlo(self):
        with self.r.raw() as c:
            c.expect(220)
            c.send(b'EHLO client.test\n')
            replies = c.read_all(idle=1.0, total=3.0)
            self.assertTrue(replies)
            self.assertGreaterEqual(replies[0].code, 500, replies)

    def test_long_command_line(self):
        with self.r.raw() as c:
            c.greet()
            c.send(b'MAIL FROM:<' + b'a' * 2100 + b'@client.test>\r\n')
            rep = c.read_reply()
            self.assertIsNotNone(rep, 'no reply to a 2.1 kB command line')
            self.assertEqual(rep.code, 500, rep)
            # no trailing replies for pieces of the long line
            self.assertEqual(c.pending(0.3), b'')
        with self.r.raw() as c:
            c.greet()
            c.send(b'NOOP ' + b'x' * 5000 + b'\r\n')
            rep = c.read_reply()
            self.assertIsNotNone(rep)
            self.assertEqual(rep.code, 500, rep)
        self.assertTrue(self.r.alive())
        self.assert_queue_clean('long line')


class StartTLSInjection(RelayTestCase):

    def test_pipelined_after_starttls_discarded(self):
        r = self.relay(smtpd_tls_cert_file=CERTS.cert,
                       smtpd_tls_key_file=CERTS.key)
        with r.raw() as c:
            c.greet()
            c.send(b'STARTTLS\r\nRSET\r\n')
            c.expect(220)
            extra = c.pending(0.5)
            self.assertEqual(extra, b'', 'reply to the injected RSET before '
                             'the handshake')
            tls = c.starttls()
            self.assertTrue(tls.version().startswith('TLSv1.'))
            c.send(b'EHLO client.test\r\n')
            rep = c.read_reply()
            self.assertIsNotNone(rep, 'no reply to EHLO inside TLS')
            self.assertEqual(rep.code, 250, rep)
            # If the RSET had survived the handshake, its one-line reply
            # would come first; the EHLO reply names the host and extensions.
            self.assertTrue(rep.lines[0].startswith('relay.test'),
                            'injected command answered inside TLS: %r' % rep)
            self.assertGreater(len(rep.lines), 1, rep)
            self.assertIn('PIPELINING', [x.split()[0] for x in rep.lines[1:]])
            c.expect_cmd('NOOP', 250)
            self.assertEqual(c.pending(0.3), b'')
            c.expect_cmd('MAIL FROM:<tls@client.test>', 250)
            c.expect_cmd('RCPT TO:<tls@dest.test>', 250)
            c.expect_cmd('DATA', 354)
            c.send(harness.make_message() + b'.\r\n')
            rep = c.expect(250)
            self.assertIn('queued as', rep.text)
        self.assertEqual(len(r.mailq_json()), 1)


if __name__ == '__main__':
    unittest.main()
