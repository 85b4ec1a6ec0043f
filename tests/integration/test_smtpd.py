"""The SMTP listener: acceptance, ESMTP extensions, limits, STARTTLS,
relay control and what is stored."""

import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Relay, RelayTestCase, make_message, sized_message,  # noqa: E402
                     smtp_send, unverified_context, run)

harness.require_binary()

CERTS = None


def setUpModule():
    global CERTS
    CERTS = harness.CertDir()


def tearDownModule():
    if CERTS:
        CERTS.close()


def tls_keys():
    return {'smtpd_tls_cert_file': CERTS.cert,
            'smtpd_tls_key_file': CERTS.key}


def message_part(show, marker):
    """The stored message inside `queue show` output: from the relay's own
    Received header (the last "Received:" line before marker) on."""
    i = show.find(marker)
    assert i >= 0, 'marker %r not in queue show output' % marker
    j = show.rfind(b'Received:', 0, i)
    assert j >= 0, 'no Received header before the message'
    return show[j:]


class Acceptance(RelayTestCase):

    def test_smtplib_message_in_mailq(self):
        r = self.relay()
        code, reply, qid = smtp_send(r, 'alice@client.test',
                                     ['bob@dest.test', 'carol@dest.test'],
                                     make_message())
        self.assertQueued(code, reply, qid)
        self.assertRegex(reply.decode(), r'^2\.0\.0 Ok: queued as [0-9A-F]{10}$')
        q = r.mailq_json()
        self.assertEqual(len(q), 1, q)
        m = q[0]
        self.assertEqual(m['queue_id'], qid)
        self.assertEqual(m['sender'], 'alice@client.test')
        self.assertEqual([x['address'] for x in m['recipients']],
                         ['bob@dest.test', 'carol@dest.test'])
        self.assertGreater(m['message_size'], 0)
        self.assertIn(m['queue_name'], ('incoming', 'deferred', 'active'))
        self.assertIsInstance(m['arrival_time'], int)
        self.assertLess(abs(m['arrival_time'] - time.time()), 60)
        self.assertIs(m['forced_expire'], False)

    def test_swaks(self):
        r = self.relay()
        p = run(['swaks', '--server', '127.0.0.1:%d' % r.port,
                 '--helo', 'client.test', '--from', 'swaks@client.test',
                 '--to', 'someone@dest.test', '--timeout', '10'],
                timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.search(r'<-\s+250 2\.0\.0 Ok: queued as ([0-9A-F]{10})',
                      p.stdout)
        self.assertTrue(m, p.stdout)
        msg = r.find(m.group(1))
        self.assertIsNotNone(msg, r.mailq_json())
        self.assertEqual(msg['sender'], 'swaks@client.test')
        self.assertEqual([x['address'] for x in msg['recipients']],
                         ['someone@dest.test'])

    def test_pipelining(self):
        r = self.relay()
        with r.raw() as c:
            c.greet()
            c.send(b'MAIL FROM:<p@client.test>\r\nRCPT TO:<one@dest.test>\r\n'
                   b'RCPT TO:<two@dest.test>\r\nDATA\r\n')
            got = [c.read_reply() for _ in range(4)]
            self.assertNotIn(None, got, got)
            self.assertEqual([x.code for x in got], [250, 250, 250, 354], got)
            c.send(make_message() + b'.\r\n')
            done = c.expect(250)
            self.assertRegex(done.text, r'queued as [0-9A-F]{10}')
            c.expect_cmd('QUIT', 221)
        q = r.mailq_json()
        self.assertEqual(len(q), 1)
        self.assertEqual(sorted(x['address'] for x in q[0]['recipients']),
                         ['one@dest.test', 'two@dest.test'])

    def test_fifty_recipients(self):
        r = self.relay()
        rcpts = ['r%02d@dest%d.test' % (i, i % 7) for i in range(50)]
        code, reply, qid = smtp_send(r, 'many@client.test', rcpts,
                                     make_message())
        self.assertQueued(code, reply, qid)
        m = r.find(qid)
        self.assertIsNotNone(m)
        self.assertEqual(sorted(x['address'] for x in m['recipients']),
                         sorted(rcpts))

    def test_8bit_body(self):
        r = self.relay()
        body = b'caf\xc3\xa9 na\xc3\xafve \xff\x80\xfe raw bytes\r\n'
        msg = (b'Subject: 8bit\r\nMIME-Version: 1.0\r\n'
               b'Content-Type: text/plain; charset=utf-8\r\n'
               b'Content-Transfer-Encoding: 8bit\r\n\r\n' + body)
        code, reply, qid = smtp_send(r, 'eight@client.test',
                                     ['bit@dest.test'], msg,
                                     mail_options=['BODY=8BITMIME'])
        self.assertQueued(code, reply, qid)
        show = r.queue_show(qid)
        self.assertIn(b'caf\xc3\xa9 na\xc3\xafve \xff\x80\xfe raw bytes', show)

    def test_null_sender(self):
        r = self.relay()
        code, reply, qid = smtp_send(r, '', ['postmaster@dest.test'],
                                     make_message(subject='bounce'))
        self.assertQueued(code, reply, qid)
        m = r.find(qid)
        self.assertIsNotNone(m)
        self.assertEqual(m['sender'], '')
        lines = [l for l in r.mailq_text().splitlines()
                 if l.startswith(qid)]
        self.assertEqual(len(lines), 1, r.mailq_text())
        self.assertTrue(lines[0].rstrip().endswith(' MAILER-DAEMON'), lines[0])

    def test_received_header_first(self):
        r = self.relay()
        msg = make_message(subject='first-line-check')
        code, reply, qid = smtp_send(r, 'rx@client.test', ['rx@dest.test'],
                                     msg)
        self.assertQueued(code, reply, qid)
        show = r.queue_show(qid)
        first = msg.split(b'\r\n', 1)[0]  # "From: <sender@client.test>"
        part = message_part(show, first)
        # From the relay's Received header to the client's first line there
        # is only that header (its continuation lines).
        head = part[:part.find(first)]
        lines = head.replace(b'\r\n', b'\n').split(b'\n')
        self.assertTrue(lines[0].startswith(b'Received: '), head)
        for l in lines[1:]:
            self.assertTrue(l == b'' or l[:1] in (b' ', b'\t'),
                            'other header between Received and message: %r'
                            % head)
        self.assertIn(b'by relay.test', head)
        self.assertEqual(head.count(b'Received:'), 1, head)

    def test_acceptance_log_line(self):
        r = self.relay()
        code, reply, qid = smtp_send(r, 'log@client.test',
                                     ['a@dest.test', 'b@dest.test',
                                      'c@dest.test'], make_message())
        self.assertQueued(code, reply, qid)
        m = r.wait_log(r'^.*\b%s: from=<log@client\.test>, size=(\d+), '
                       r'nrcpt=3\b' % qid)
        self.assertTrue(m, r.log_text())
        self.assertEqual(int(m.group(1)), r.find(qid)['message_size'])

    def test_null_sender_log_line(self):
        r = self.relay()
        code, reply, qid = smtp_send(r, '', ['x@dest.test'], make_message())
        self.assertQueued(code, reply, qid)
        self.assertTrue(r.wait_log(r'\b%s: from=<>, size=\d+, nrcpt=1\b'
                                   % qid), r.log_text())


class Limits(RelayTestCase):

    def setUp(self):
        self.r = self.relay(max_message_size=100000)

    def test_near_limit_accepted(self):
        code, reply, qid = smtp_send(self.r, 'big@client.test',
                                     ['big@dest.test'], sized_message(99000))
        self.assertQueued(code, reply, qid)
        m = self.r.find(qid)
        self.assertGreaterEqual(m['message_size'], 99000)

    def test_over_limit_refused_after_data(self):
        before = self.r.mailq_json()
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        self.assertEqual(s.mail('big@client.test')[0], 250)
        self.assertEqual(s.rcpt('big@dest.test')[0], 250)
        code, reply = s.data(sized_message(120000))
        self.assertEqual(code, 552, reply)
        self.assertTrue(reply.startswith(b'5.3.4'), reply)
        # The session goes on, as with Postfix.
        self.assertEqual(s.noop()[0], 250)
        self.assertEqual(self.r.mailq_json(), before)
        self.assertEqual(before, [])

    def test_size_parameter_above_limit(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        code, reply = s.mail('big@client.test', ['SIZE=200000'])
        self.assertEqual(code, 552, reply)
        self.assertTrue(reply.startswith(b'5.3.4'), reply)
        # SIZE below the limit is fine.
        self.assertEqual(s.mail('ok@client.test', ['SIZE=5000'])[0], 250)
        self.assertEqual(self.r.mailq_json(), [])

    def test_ehlo_keywords_without_tls(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        code, reply = s.ehlo()
        self.assertEqual(code, 250)
        self.assertTrue(reply.startswith(b'relay.test'), reply)
        f = s.esmtp_features
        for k in ('pipelining', '8bitmime', 'smtputf8',
                  'enhancedstatuscodes'):
            self.assertIn(k, f, reply)
        self.assertEqual(f.get('size'), '100000', reply)
        self.assertNotIn('starttls', f, reply)
        self.assertNotIn('vrfy', f, reply)


class Commands(RelayTestCase):

    def setUp(self):
        self.r = self.relay()

    def test_banner(self):
        with self.r.raw() as c:
            b = c.expect(220)
            self.assertTrue(b.lines[0].startswith('relay.test ESMTP'), b)

    def test_vrfy_disabled(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        code, reply = s.verify('root@relay.test')
        self.assertEqual(code, 502, reply)

    def test_rset_noop_quit(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        self.assertEqual(s.mail('a@client.test')[0], 250)
        self.assertEqual(s.rset()[0], 250)
        self.assertEqual(s.noop()[0], 250)
        # after RSET the transaction is gone: RCPT needs MAIL again
        self.assertEqual(s.rcpt('b@dest.test')[0], 503)
        self.assertEqual(s.quit()[0], 221)

    def test_mail_before_ehlo(self):
        with self.r.raw() as c:
            c.expect(220)
            rep = c.cmd('MAIL FROM:<a@client.test>')
            self.assertIsNotNone(rep)
            self.assertEqual(rep.code, 503, rep)

    def test_data_before_rcpt(self):
        with self.r.raw() as c:
            c.greet()
            c.expect_cmd('MAIL FROM:<a@client.test>', 250)
            rep = c.cmd('DATA')
            self.assertIsNotNone(rep)
            self.assertEqual(rep.code, 503, rep)
            # and nothing was started: the server is still in command mode
            c.expect_cmd('NOOP', 250)
        self.assertEqual(self.r.mailq_json(), [])

    def test_helo_works_too(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        self.assertEqual(s.helo()[0], 250)
        self.assertEqual(s.mail('h@client.test')[0], 250)


class RelayControl(RelayTestCase):

    def test_outside_mynetworks_refused(self):
        r = self.relay(mynetworks='127.0.0.1/32')
        s = r.smtp(source_address=('127.0.0.9', 0))
        self.addCleanup(s.close)
        s.ehlo()
        s.mail('outsider@client.test')
        code, reply = s.rcpt('victim@dest.test')
        self.assertEqual(code, 554, reply)
        self.assertTrue(reply.startswith(b'5.7.1'), reply)
        self.assertIn(b'Relay access denied', reply)
        try:
            dcode = s.data(make_message())[0]
        except smtplib.SMTPDataError as e:
            dcode = e.smtp_code
        self.assertGreaterEqual(dcode, 500)
        self.assertEqual(r.mailq_json(), [])
        # control: 127.0.0.1 is inside and may relay
        code, reply, qid = smtp_send(r, 'insider@client.test',
                                     ['ok@dest.test'], make_message(),
                                     source_address=('127.0.0.1', 0))
        self.assertQueued(code, reply, qid)
        self.assertEqual([m['queue_id'] for m in r.mailq_json()], [qid])


class StartTLS(RelayTestCase):

    def setUp(self):
        self.r = self.relay(max_message_size=100000, **tls_keys())

    def test_ehlo_lists_starttls(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        self.assertIn('starttls', s.esmtp_features)
        self.assertIn('pipelining', s.esmtp_features)
        self.assertEqual(s.esmtp_features.get('size'), '100000')

    def test_starttls_message(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        code, reply = s.starttls(context=unverified_context())
        self.assertEqual(code, 220, reply)
        self.assertIsNotNone(s.sock.version())
        s.ehlo()
        self.assertNotIn('starttls', s.esmtp_features,
                         'STARTTLS offered again inside TLS')
        self.assertEqual(s.mail('tls@client.test')[0], 250)
        self.assertEqual(s.rcpt('tls@dest.test')[0], 250)
        code, reply = s.data(make_message(subject='over tls'))
        self.assertEqual(code, 250, reply)
        m = harness.QUEUED_RE.search(reply)
        self.assertTrue(m, reply)
        qid = m.group(1).decode()
        s.quit()
        show = self.r.queue_show(qid)
        part = message_part(show, b'From: <sender@client.test>')
        received = part[:part.find(b'From: <sender@client.test>')]
        self.assertIn(b'by relay.test', received)
        self.assertRegex(received, rb'TLSv1\.[23]')


if __name__ == '__main__':
    unittest.main()
