"""The SMTP listener: acceptance, ESMTP extensions, limits, STARTTLS,
relay control and what is stored."""

import os
import re
import select
import smtplib
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (RelayTestCase, make_message, sized_message,  # noqa: E402
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
        # With a postcat-style listing, the contents start right after
        # its "*** MESSAGE CONTENTS" line: the Received header is first.
        m = re.search(rb'\*\*\* MESSAGE CONTENTS[^\n]*\n', show)
        if m:
            self.assertTrue(show[m.end():].startswith(b'Received: '),
                            show[m.end():m.end() + 200])

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


class Unusual(RelayTestCase):

    def test_smtputf8_sender_and_json(self):
        r = self.relay()
        code, reply, qid = smtp_send(
            r, 'j\u00fcrgen@m\u00fcller.test', ['\u00e5sa@dest.test'],
            'Subject: utf8\r\n\r\nh\u00e9llo\r\n'.encode('utf-8'),
            mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
        self.assertQueued(code, reply, qid)
        m = r.find(qid)
        self.assertEqual(m['sender'], 'j\u00fcrgen@m\u00fcller.test')
        self.assertEqual(m['recipients'][0]['address'], '\u00e5sa@dest.test')

    def test_quoted_local_part_json(self):
        r = self.relay()
        sender = '"odd \\"quoted\\" name"@client.test'
        with r.raw() as c:
            c.greet()
            c.expect_cmd('MAIL FROM:<%s>' % sender, 250)
            c.expect_cmd('RCPT TO:<"x y"@dest.test>', 250)
            c.expect_cmd('DATA', 354)
            c.send(make_message() + b'.\r\n')
            rep = c.expect(250)
        q = r.mailq_json()  # must still be valid JSON
        self.assertEqual(len(q), 1)
        self.assertIn('quoted', q[0]['sender'])
        self.assertIn('"', q[0]['sender'])
        self.assertIn('queued as %s' % q[0]['queue_id'], rep.text)

    def test_concurrent_sessions(self):
        import threading
        r = self.relay()
        results = []

        def one(i):
            try:
                results.append(smtp_send(r, 'c%d@client.test' % i,
                                         ['r%d@dest.test' % i],
                                         make_message(subject=str(i))))
            except Exception as e:  # noqa: BLE001
                results.append((None, repr(e).encode(), None))

        threads = [threading.Thread(target=one, args=(i,))
                   for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 20)
        for code, reply, qid in results:
            self.assertQueued(code, reply, qid)
        self.assertEqual(r.queue_ids(), {x[2] for x in results})


class Protocol(RelayTestCase):

    def setUp(self):
        self.r = self.relay()

    def test_dot_stuffing_removed(self):
        code, reply, qid = smtp_send(self.r, 'dot@client.test',
                                     ['dot@dest.test'],
                                     make_message(body='.leading dot\r\n'
                                                  '..two dots\r\n.\r\n'
                                                  'end\r\n'))
        self.assertQueued(code, reply, qid)
        show = self.r.queue_show(qid)
        # smtplib stuffed each leading dot; the relay must unstuff once
        self.assertRegex(show, rb'(?m)^\.leading dot\r?$')
        self.assertRegex(show, rb'(?m)^\.\.two dots\r?$')
        self.assertRegex(show, rb'(?m)^\.\r?\nend\r?$')

    def test_two_messages_pipelined_after_end_of_data(self):
        with self.r.raw() as c:
            c.greet()
            c.expect_cmd('MAIL FROM:<one@client.test>', 250)
            c.expect_cmd('RCPT TO:<one@dest.test>', 250)
            c.expect_cmd('DATA', 354)
            c.send(make_message(subject='one') + b'.\r\n'
                   b'MAIL FROM:<two@client.test>\r\nRCPT TO:<two@dest.test>'
                   b'\r\nDATA\r\n')
            got = [c.read_reply() for _ in range(4)]
            self.assertNotIn(None, got, got)
            self.assertEqual([x.code for x in got], [250, 250, 250, 354], got)
            c.send(make_message(subject='two') + b'.\r\nQUIT\r\n')
            c.expect(250)
            c.expect(221)
        self.assertEqual(sorted(m['sender'] for m in self.r.mailq_json()),
                         ['one@client.test', 'two@client.test'])

    def test_crlf_split_across_writes(self):
        import time as _t
        with self.r.raw() as c:
            c.greet()
            for piece in (b'NOOP\r', b'\n'):
                c.send(piece)
                _t.sleep(0.05)
            c.expect(250)
            c.expect_cmd('MAIL FROM:<split@client.test>', 250)
            c.expect_cmd('RCPT TO:<split@dest.test>', 250)
            c.expect_cmd('DATA', 354)
            for piece in (b'Subject: split\r', b'\n\r', b'\nbody\r',
                          b'\n.', b'\r', b'\n'):
                c.send(piece)
                _t.sleep(0.05)
            rep = c.expect(250)
            self.assertIn('queued as', rep.text)
        (m,) = self.r.mailq_json()
        self.assertEqual(m['sender'], 'split@client.test')
        show = self.r.queue_show(m['queue_id'])
        self.assertRegex(show, rb'(?m)^body\r?$')

    def test_byte_at_a_time(self):
        import time as _t
        with self.r.raw() as c:
            c.expect(220)
            data = (b'EHLO client.test\r\nMAIL FROM:<drip@client.test>\r\n'
                    b'RCPT TO:<drip@dest.test>\r\nDATA\r\n')
            for i in range(len(data)):
                c.send(data[i:i + 1])
                if i % 8 == 0:
                    _t.sleep(0.002)
            self.assertEqual(c.read_reply().code, 250)
            got = [c.read_reply() for _ in range(3)]
            self.assertNotIn(None, got)
            self.assertEqual([x.code for x in got], [250, 250, 354])
            body = make_message(subject='drip') + b'.\r\n'
            for i in range(len(body)):
                c.send(body[i:i + 1])
                if i % 8 == 0:
                    _t.sleep(0.002)
            c.expect(250)
        self.assertEqual([m['sender'] for m in self.r.mailq_json()],
                         ['drip@client.test'])

    def test_disconnect_mid_data(self):
        before = self.r.log_text().count('disconnect from')
        with self.r.raw() as c:
            c.greet()
            c.expect_cmd('MAIL FROM:<gone@client.test>', 250)
            c.expect_cmd('RCPT TO:<gone@dest.test>', 250)
            c.expect_cmd('DATA', 354)
            c.send(b'Subject: cut\r\n\r\npartial body\r\n')
        # the relay notices the close; nothing may be queued
        harness.wait_for(lambda: self.r.log_text().count('disconnect from')
                         > before, 2.0)
        self.assertEqual(self.r.mailq_json(), [])
        self.assertTrue(self.r.alive())
        code, reply, qid = smtp_send(self.r, 'next@client.test',
                                     ['n@dest.test'], make_message())
        self.assertQueued(code, reply, qid)

    def test_long_data_line(self):
        # RFC 5321 allows 1000 octets; longer lines must not break the relay
        line = b'L' * 60000
        code, reply, qid = smtp_send(self.r, 'long@client.test',
                                     ['long@dest.test'],
                                     b'Subject: long\r\n\r\n' + line +
                                     b'\r\nafter\r\n')
        self.assertTrue(self.r.alive())
        if code == 250:
            show = self.r.queue_show(qid)
            self.assertGreaterEqual(show.count(b'L'), 60000)
            self.assertIn(b'after', show)
        else:
            self.assertGreaterEqual(code, 500, reply)
            self.assertEqual(self.r.mailq_json(), [])

    def test_command_errors(self):
        with self.r.raw() as c:
            c.expect(220)
            rep = c.cmd('EHLO')
            self.assertEqual(rep.code, 501, rep)
            c.ehlo()
            c.expect_cmd('MAIL FROM:<a@client.test>', 250)
            rep = c.cmd('MAIL FROM:<b@client.test>')
            self.assertEqual(rep.code, 503, rep)   # nested MAIL
            rep = c.cmd('RCPT TO:<no closing bracket@dest.test')
            self.assertEqual(rep.code // 100, 5, rep)
            rep = c.cmd('FROBNICATE')
            self.assertIn(rep.code, (500, 502), rep)
            rep = c.cmd('STARTTLS')    # not configured here
            self.assertIn(rep.code, (454, 502), rep)
            rep = c.cmd('NOOP ' + 'x' * 1000)  # long but legal
            self.assertEqual(rep.code, 250, rep)
            c.expect_cmd('QUIT', 221)
            self.assertTrue(c.eof(2.0))


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


def proc_status_kib(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM) in KiB."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise AssertionError('no %s in /proc/%d/status' % (field, pid))


class BackPressure(RelayTestCase):
    """A client that pipelines commands and never reads the replies must not
    make the relay buffer them without bound."""

    NOOP = b'NOOP\r\n'
    # Up to 8M NOOPs: over 100 MiB of replies if the relay read them all.
    MAX_SEND = 48 * 1024 * 1024
    # The relay stops reading at 256 KiB of unread replies; the rest of this
    # bound is slack for the allocator, and for a sanitizer build's
    # quarantine of freed reply buffers (about 16 MiB).
    MAX_GROWTH_KIB = 48 * 1024

    def flood(self, sock):
        """Send NOOPs without reading until the relay stops reading (a send
        blocks for a second) or MAX_SEND; returns the bytes sent."""
        chunk = self.NOOP * 10000
        sent = 0
        deadline = time.monotonic() + 60
        sock.settimeout(1.0)
        while sent < self.MAX_SEND and time.monotonic() < deadline:
            try:
                sent += sock.send(chunk[sent % len(chunk):])
            except socket.timeout:
                break
        return sent

    def finish(self, sock, sent):
        """Complete the last NOOP, say QUIT and read everything up to the
        server's close; returns the reply lines."""
        out = self.NOOP[sent % len(self.NOOP):] if sent % len(self.NOOP) \
            else b''
        out += b'QUIT\r\n'
        data = bytearray()
        sock.setblocking(False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, w, _ = select.select([sock], [sock] if out else [], [], 1.0)
            if w:
                out = out[sock.send(out):]
            try:
                got = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not got:
                return bytes(data).split(b'\r\n')
            data += got
        self.fail('session did not end after QUIT (%d bytes read)'
                  % len(data))

    def connect(self, r):
        """A client socket with small kernel buffers (set before connect,
        so the window is small from the start): what the relay can hand to
        the kernel stays small, and so does the memory a sanitizer build
        keeps in quarantine for it.  Returns it after the 220 banner."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.settimeout(5)
        sock.connect(('127.0.0.1', r.port))
        banner = b''
        while not banner.endswith(b'\r\n'):
            got = sock.recv(1024)
            self.assertTrue(got, 'no banner')
            banner += got
        self.assertTrue(banner.startswith(b'220 '), banner)
        return sock

    def test_pipelined_noops_without_reading(self):
        r = self.relay()
        a = self.connect(r)
        base = proc_status_kib(r.proc.pid, 'VmRSS')
        sent = self.flood(a)
        # The stalled session holds up nobody else.
        with r.raw() as b:
            b.greet()
            b.expect_cmd('NOOP', 250)
            b.expect_cmd('QUIT', 221)
        peak = proc_status_kib(r.proc.pid, 'VmHWM')
        self.assertLess(peak - base, self.MAX_GROWTH_KIB,
                        'relay grew from %d to %d KiB after %d bytes of '
                        'unread pipelined NOOPs' % (base, peak, sent))
        # Once the client reads, every NOOP is answered in order and the
        # session still works.
        lines = self.finish(a, sent)
        nnoop = -(-sent // len(self.NOOP))
        self.assertEqual(lines[-3:], [b'250 2.0.0 Ok', b'221 2.0.0 Bye', b''])
        self.assertEqual(len(lines), nnoop + 2)
        self.assertEqual(set(lines[:nnoop]), {b'250 2.0.0 Ok'})

    def test_client_that_never_reads_times_out(self):
        """Reading paused does not pause the idle timer: smtpd_timeout ends
        the session (and its buffers), and the relay goes on serving."""
        r = self.relay(smtpd_timeout='1s')
        a = self.connect(r)
        self.flood(a)
        # The 421 cannot reach a client that does not read; the session is
        # closed once the drain deadline of a closing connection passes.
        self.assertTrue(r.wait_log(r'timeout after command from '
                                   r'unknown\[127\.0\.0\.1\]', timeout=10),
                        r.log_text()[-2000:])
        # Two: the harness's probe of the port at start, and this session.
        self.assertTrue(r.wait_for(lambda: r.log_text().count(
            'disconnect from unknown[127.0.0.1]') >= 2, timeout=15),
            r.log_text()[-2000:])
        with r.raw() as b:
            b.greet()
            b.expect_cmd('QUIT', 221)


if __name__ == '__main__':
    unittest.main()
