"""sendmail-compatible injection and the sendmail/mailq links."""

import os
import re
import shutil
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, Relay, base_env, run  # noqa: E402
import certs  # noqa: E402
import dnszone  # noqa: E402
import mxpeer  # noqa: E402
from test_delivery import DeliveryBase  # noqa: E402

harness.require_binary()

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE = 64, 65, 69

# Envelope injection as the review found it: CR LF and a second command.
INJECT_FROM = 'a@src.test>\r\nRCPT TO:<evil@evil.test'
INJECT_RCPT = 'b@c.test>\r\nRCPT TO:<evil@evil.test'
# The same through -t: CR LF (folded) or a bare CR inside a quoted local
# part, and other control octets, which msg_addr_list keeps as they are.
INJECT_HEADERS = [
    b'To: "a\r\n RCPT TO:<evil@evil.test>"@c.test\n',
    b'To: "a\rRCPT TO:<evil@evil.test>"@c.test\n',
    b'Cc: ok@c.test, <"a\rb"@c.test>\n',
    b'Bcc: "x\x01y"@c.test\n',
    b'To: "a\x00b"@c.test\n',
    b'To: <a@[127.0.0.1\r\n RCPT TO:<evil@evil.test>]>\n',
]

MSG = (b'From: Alice <a@b.test>\n'
       b'To: Rcpt <rcpt@c.test>\n'
       b'Subject: via sendmail\n'
       b'\n'
       b'body line one\n'
       b'body line two\n')


class Sendmail(unittest.TestCase):

    def setUp(self):
        # sendmail writes to the queue itself: no server is needed
        self.r = Relay(self, start=False)

    def sendmail(self, *args, input=MSG, env=None):
        return run([BIN, 'sendmail', '-c', self.r.conf] + list(args),
                   input=input, env=env or base_env(), text=False)

    def only_message(self):
        q = self.r.mailq_json()
        self.assertEqual(len(q), 1, q)
        return q[0]

    def test_basic(self):
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertEqual(m['sender'], 'a@b.test')
        self.assertEqual([x['address'] for x in m['recipients']],
                         ['rcpt@c.test'])
        self.assertGreater(m['message_size'], len(MSG))
        show = self.r.queue_show(m['queue_id'])
        self.assertIn(b'Subject: via sendmail', show)
        self.assertIn(b'body line one', show)
        self.assertIn(b'body line two', show)

    def test_several_recipients(self):
        p = self.sendmail('-f', 'a@b.test', 'one@c.test', 'two@d.test',
                          'three@e.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertEqual(sorted(x['address'] for x in m['recipients']),
                         ['one@c.test', 'three@e.test', 'two@d.test'])

    def test_default_sender_not_null(self):
        p = self.sendmail('rcpt@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(self.only_message()['sender'], '')

    def test_while_serve_runs(self):
        self.r.start()
        p = self.sendmail('-f', 'live@b.test', 'rcpt@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.only_message()['sender'], 'live@b.test')
        self.assertTrue(self.r.alive())

    def test_sendmail_link(self):
        link = os.path.join(self.r.dir, 'sendmail')
        os.symlink(BIN, link)
        p = run([link, '-f', 'link@b.test', 'rcpt@c.test'], input=MSG,
                env=base_env(TLSRELAY_CONFIG=self.r.conf), text=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertEqual(m['sender'], 'link@b.test')
        self.assertEqual([x['address'] for x in m['recipients']],
                         ['rcpt@c.test'])

    def test_mailq_link(self):
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        qid = self.only_message()['queue_id']
        link = os.path.join(self.r.dir, 'mailq')
        os.symlink(BIN, link)
        env = base_env(TLSRELAY_CONFIG=self.r.conf)
        p = run([link], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, self.r.mailq_text())
        self.assertRegex(p.stdout, r'(?m)^%s +\d+ .* a@b\.test$' % qid)
        p = run([link, '--json'], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"%s"' % qid, p.stdout)

    def test_t_recipients_from_headers(self):
        msg = (b'From: a@b.test\n'
               b'To: Ann <ann@x.test>, bob@x.test\n'
               b'Cc: "Carl, Jr." <carl@y.test>\n'
               b'Bcc: hidden@z.test\n'
               b'Subject: extract\n'
               b'\n'
               b'Bcc: this is body text, not a header\n')
        p = self.sendmail('-t', '-f', 'a@b.test', input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertEqual(sorted(x['address'] for x in m['recipients']),
                         ['ann@x.test', 'bob@x.test', 'carl@y.test',
                          'hidden@z.test'])
        show = self.r.queue_show(m['queue_id'])
        self.assertIn(b'Subject: extract', show)
        self.assertIn(b'Cc: "Carl, Jr." <carl@y.test>', show)
        self.assertIsNone(re.search(rb'(?mi)^Bcc:(?! this is body)', show),
                          show)
        self.assertIn(b'Bcc: this is body text, not a header', show)

    def seed(self):
        """One good message, so the queue exists; returns its ID."""
        p = self.sendmail('-f', 'seed@b.test', 'rcpt@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        return self.only_message()['queue_id']

    def test_t_without_recipient_headers(self):
        seed = self.seed()
        msg = b'From: a@b.test\nSubject: nobody\n\nbody\n'
        p = self.sendmail('-t', '-f', 'a@b.test', input=msg)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.r.queue_ids(), {seed})

    def test_dot_ends_input_without_i(self):
        msg = b'Subject: dots\n\nline1\n.\nline2\n'
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test', input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        show = self.r.queue_show(self.only_message()['queue_id'])
        self.assertIn(b'line1', show)
        self.assertNotIn(b'line2', show)

    def test_dot_kept_with_i(self):
        for flag in ('-i', '-oi'):
            with self.subTest(flag=flag):
                self.r.cli('queue', 'delete', 'ALL')
                msg = b'Subject: dots\n\nline1\n.\nline2\n'
                p = self.sendmail(flag, '-f', 'a@b.test', 'rcpt@c.test',
                                  input=msg)
                self.assertEqual(p.returncode, 0, p.stderr)
                show = self.r.queue_show(self.only_message()['queue_id'])
                self.assertRegex(show, rb'line1\r?\n\.\r?\nline2')

    def test_lf_input_stored_as_crlf(self):
        n = 2000
        msg = b'Subject: many lines\n\n' + b''.join(
            b'line %04d\n' % i for i in range(n))
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test', input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        # Each of the n+2 lines gains a CR; what the relay adds itself
        # (Received and the like) is far smaller than n bytes.
        self.assertGreaterEqual(m['message_size'], len(msg) + n + 2)
        self.assertLess(m['message_size'], len(msg) + n + 2 + 1500)
        show = self.r.queue_show(m['queue_id'])
        nums = [int(x) for x in re.findall(rb'(?m)^line (\d{4})\r?$', show)]
        self.assertEqual(nums, list(range(n)))

    def test_crlf_input_not_doubled(self):
        n = 1000
        msg = b'Subject: crlf\r\n\r\n' + b''.join(
            b'line %04d\r\n' % i for i in range(n))
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test', input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertGreaterEqual(m['message_size'], len(msg))
        self.assertLess(m['message_size'], len(msg) + 900)
        show = self.r.queue_show(m['queue_id'])
        self.assertNotIn(b'\r\r', show)

    def test_unusable_queue_dir(self):
        r = Relay(self, start=False, queue_dir='/proc/nonexistent/q')
        p = run([BIN, 'sendmail', '-c', r.conf, '-f', 'a@b.test',
                 'rcpt@c.test'], input=MSG, env=base_env(), text=False)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertTrue(p.stderr.strip())

    def test_no_recipients(self):
        seed = self.seed()
        p = self.sendmail('-f', 'a@b.test')
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip())
        self.assertEqual(self.r.queue_ids(), {seed})

    # -- hardening: envelope injection ---------------------------------

    def assert_refused(self, p, code, pattern, seed):
        """Exit code, exactly one stderr line matching pattern, and the
        queue unchanged (only the seed message)."""
        err = p.stderr.decode('utf-8', 'replace')
        self.assertEqual(p.returncode, code, err)
        self.assertEqual(len(err.splitlines()), 1, repr(err))
        self.assertRegex(err, pattern)
        self.assertNotIn('\r', err.rstrip('\n'))
        self.assertEqual(self.r.queue_ids(), {seed})
        self.assertNotIn('evil', self.r.mailq_text())

    def test_inject_via_f(self):
        seed = self.seed()
        for f in (INJECT_FROM, 'a@src.test\n', 'a@src.test> SIZE=1',
                  'a@src.test\x7f'):
            with self.subTest(f=f):
                p = self.sendmail('-f', f, 'rcpt@c.test')
                self.assert_refused(p, EX_USAGE,
                                    r'^sendmail: bad sender address ', seed)

    def test_inject_via_recipient_argument(self):
        seed = self.seed()
        for rcpt in (INJECT_RCPT, 'b@c.test\r', 'b@c.test>', 'x\x1b@c.test'):
            with self.subTest(rcpt=rcpt):
                p = self.sendmail('-f', 'a@b.test', 'ok@c.test', rcpt)
                self.assert_refused(p, EX_USAGE,
                                    r'^sendmail: bad recipient address ', seed)

    def test_inject_via_t_headers(self):
        seed = self.seed()
        for h in INJECT_HEADERS:
            with self.subTest(header=h):
                msg = b'From: a@b.test\n' + h + b'Subject: t\n\nbody\n'
                p = self.sendmail('-t', '-f', 'a@b.test', input=msg)
                self.assert_refused(
                    p, EX_DATAERR,
                    r'^sendmail: bad address in (To|Cc|Bcc) header: ', seed)

    def test_fullname_cannot_add_headers(self):
        seed = self.seed()
        p = self.sendmail('-F', 'Joe\r\nBcc: evil@evil.test', '-f', 'a@b.test',
                          'rcpt@c.test', input=b'Subject: x\n\nbody\n')
        self.assert_refused(p, EX_USAGE, r'^sendmail: bad -F full name', seed)

    def test_good_addresses_still_work(self):
        p = self.sendmail('-f', '<a@b.test>', '<one@c.test>', 'root',
                          ' two@d.test ')
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.only_message()
        self.assertEqual(m['sender'], 'a@b.test')
        self.assertEqual(sorted(x['address'] for x in m['recipients']),
                         ['one@c.test', 'root@' + harness.HOSTNAME,
                          'two@d.test'])
        self.r.cli('queue', 'delete', 'ALL')
        p = self.sendmail('-f', '<>', 'one@c.test')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.only_message()['sender'], '')

    def test_address_literal_refused(self):
        # As the listener: mail is never aimed at an address literal.
        seed = self.seed()
        p = self.sendmail('-f', 'a@b.test', 'two@[127.0.0.1]')
        self.assert_refused(p, EX_USAGE, r'address literals are not relayed', seed)

    # -- hardening: content --------------------------------------------

    def test_bare_cr_and_nul_become_spaces(self):
        msg = b'Subject: cr\n\nbo\rdy\x00end\r\r\nlast\r'
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test', input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        show = self.r.queue_show(self.only_message()['queue_id'])
        # queue show prints CRLF as LF: any CR left would be a bare one.
        self.assertNotIn(b'\r', show)
        self.assertNotIn(b'\x00', show)
        self.assertIn(b'\nbo dy end \nlast\n', show)

    def test_line_of_998_octets_but_not_999(self):
        seed = self.seed()
        ok = b'Subject: long\n\n' + b'x' * 998 + b'\n'
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test', input=ok)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.r.queue_ids()), 2)
        self.r.cli('queue', 'delete', 'ALL')
        seed = self.seed()
        p = self.sendmail('-f', 'a@b.test', 'rcpt@c.test',
                          input=b'Subject: long\n\n' + b'x' * 999 + b'\n')
        self.assert_refused(p, EX_DATAERR, r'lines too long', seed)

    def sendmail_rusage(self, conf, chunk, count):
        """Run sendmail with chunk * count on stdin (written from a thread,
        stopped by a broken pipe); returns (exit code, stderr, max RSS in
        KiB) of that one child, from wait4."""
        p = subprocess.Popen([BIN, 'sendmail', '-c', conf, '-f', 'a@b.test',
                              'rcpt@c.test'], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=base_env())

        def feed():
            try:
                p.stdin.write(b'Subject: big\n\n')
                for _ in range(count):
                    p.stdin.write(chunk)
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        t = threading.Thread(target=feed)
        t.start()
        err = p.stderr.read()
        p.stderr.close()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        t.join(60)
        try:
            p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        return p.returncode, err.decode('utf-8', 'replace'), ru.ru_maxrss

    def test_big_input_memory_bounded(self):
        # max_message_size 10 MB, 200 MB of input: memory must follow the
        # limit, not the input (the old reader reached ~210 MB on one line).
        r = Relay(self, start=False, max_message_size=10 * 1024 * 1024)
        self.r = r
        seed = self.seed()
        bound = 80 * 1024   # KiB: far below the input, room for sanitizers
        rc, err, rss = self.sendmail_rusage(r.conf, b'x' * (1 << 20), 200)
        self.assertLess(rss, bound, 'one 200 MB line: max RSS %d KiB' % rss)
        self.assertEqual(rc, EX_DATAERR, err)
        self.assertIn('lines too long', err)
        line = b'y' * 99 + b'\n'
        rc, err, rss = self.sendmail_rusage(r.conf, line * 10000, 200)
        self.assertLess(rss, bound, '200 MB of lines: max RSS %d KiB' % rss)
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertRegex(err, r'^sendmail: message file too big')
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertEqual(r.queue_ids(), {seed})



class SendmailDelivery(DeliveryBase):
    """What leaves the relay for mail injected with sendmail: a real relay
    and an aiosmtpd MX (mx.py) under a Knot DNS zone."""

    RECORDS = [('inj.test.', 'MX', '10 mx1.inj.test.'),
               ('mx1.inj.test.', 'A', '127.0.0.60')]
    HOSTS = ['127.0.0.60']

    @classmethod
    def setUpClass(cls):
        if not (dnszone.available() and mxpeer.aiosmtpd_available()
                and shutil.which(certs.CERTTOOL)):
            raise unittest.SkipTest('Knot, aiosmtpd or certtool missing')
        super().setUpClass()

    def sendmail(self, relay, *args, input):
        return run([BIN, 'sendmail', '-c', relay.conf] + list(args),
                   input=input, env=base_env(), text=False)

    def test_no_extra_rcpt_and_crlf_only(self):
        mx = self.mx('127.0.0.60', 'mx1.inj.test')
        relay = self.relay()
        body = b'Subject: inj\nMessage-ID: <inj.1@client.test>\n\n'
        # Each attempt would add "RCPT TO:<evil@inj.test>" on the wire.
        evil_from = 'a@src.test>\r\nRCPT TO:<evil@inj.test'
        evil_rcpt = 'bob@inj.test>\r\nRCPT TO:<evil@inj.test'
        p = self.sendmail(relay, '-f', evil_from, 'bob@inj.test', input=body)
        self.assertEqual(p.returncode, EX_USAGE, p.stderr)
        p = self.sendmail(relay, '-f', 'a@src.test', evil_rcpt, input=body)
        self.assertEqual(p.returncode, EX_USAGE, p.stderr)
        p = self.sendmail(relay, '-t', '-f', 'a@src.test', input=(
            b'To: "bob\r\n RCPT TO:<evil@inj.test>"@inj.test\n' + body))
        self.assertEqual(p.returncode, EX_DATAERR, p.stderr)
        # One good message: bare CR, NUL, dot lines (with -i) and a CRLF.
        good = (body + b'bo\rdy\x00end\n.\n..\n.x\r\nlast')
        p = self.sendmail(relay, '-i', '-f', 'a@src.test', 'bob@inj.test',
                          input=good)
        self.assertEqual(p.returncode, 0, p.stderr)
        env, content = self.messages_with(mx, '<inj.1@client.test>')[0]
        self.assertEqual(env['mail_from'], 'a@src.test')
        self.assertEqual(env['rcpt_tos'], ['bob@inj.test'])
        self.wait_queue_empty(relay)
        # Every RCPT the MX saw, accepted or not: only bob's.
        rcpts = [e.get('address') for e in mx.events() if e['event'] == 'rcpt']
        self.assertEqual(rcpts, ['bob@inj.test'])
        self.assertEqual(len(mx.messages()), 1)
        self.assertNotIn(b'evil', b''.join(c for _, c in mx.messages()))
        # CRLF line ends only, no NUL; stray CR and NUL became spaces.
        self.assertNotIn(b'\x00', content)
        self.assertIsNone(re.search(rb'\r(?!\n)|(?<!\r)\n', content), content)
        self.assertIn(b'\r\n\r\nbo dy end\r\n.\r\n..\r\n.x\r\nlast\r\n',
                      content)

    def as_nobody(self, relay, *args, input):
        """sendmail run by a user who may not write the queue (www-data,
        say): the queue stays root's, mode 0700; the config is readable."""
        if os.geteuid() != 0:
            if os.environ.get('CI') == 'true':
                self.fail('this test needs root (to run sendmail as nobody)')
            raise unittest.SkipTest('needs root')
        os.chmod(relay.dir, 0o755)
        return run(['setpriv', '--reuid=nobody', '--regid=nogroup',
                    '--clear-groups', BIN, 'sendmail', '-c', relay.conf]
                   + list(args), input=input, env=base_env(), text=False)

    def test_user_without_queue_access_submits_to_listener(self):
        mx = self.mx('127.0.0.60', 'mx1.inj.test')
        relay = self.relay()
        body = (b'Subject: www\nMessage-ID: <www.1@client.test>\n\n'
                b'line\n.\n..\n.x\nlast')
        p = self.as_nobody(relay, '-i', '-f', 'app@src.test', 'bob@inj.test',
                           input=body)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The relay accepted it over SMTP from 127.0.0.1 (its own listener).
        relay.wait_log(r'from=<app@src\.test>')
        env, content = self.messages_with(mx, '<www.1@client.test>')[0]
        self.assertEqual(env['mail_from'], 'app@src.test')
        self.assertEqual(env['rcpt_tos'], ['bob@inj.test'])
        # Dots survive the SMTP hand-over (stuffed, then unstuffed).
        self.assertIn(b'\r\n\r\nline\r\n.\r\n..\r\n.x\r\nlast\r\n',
                      content)
        self.assertIn(b'from userid 65534', content)

    def test_user_without_queue_access_relay_down(self):
        relay = self.relay()
        relay.stop()
        p = self.as_nobody(relay, '-f', 'app@src.test', 'bob@inj.test',
                           input=b'Subject: down\n\nx\n')
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn(b'cannot write the queue and no relay listens at',
                      p.stderr)
        self.assertEqual(relay.mailq_json(), [])

    # A local user's stand-in for the relay: greets, says 250 to all.
    FAKE_RELAY = (
        'import socket, sys\n'
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
        's.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)\n'
        'print("listening", flush=True)\n'
        'while True:\n'
        '    c, _ = s.accept(); print("connection", flush=True)\n'
        '    c.sendall(b"220 fake\\r\\n")\n'
        '    while c.recv(65536): c.sendall(b"250 ok\\r\\n")\n')

    def test_user_without_queue_access_refuses_foreign_listener(self):
        """While the relay is down, a local user binds its port and answers
        250: sendmail must not hand the message to it."""
        relay = self.relay()
        relay.stop()
        fake = subprocess.Popen(
            ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
             sys.executable, '-c', self.FAKE_RELAY, str(relay.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(fake.wait)
        self.addCleanup(fake.kill)
        self.assertEqual(fake.stdout.readline(), b'listening\n')
        p = self.as_nobody(relay, '-f', 'app@src.test', 'bob@inj.test',
                           input=b'Subject: stolen\n\nsecret\n')
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertRegex(p.stderr, rb'belongs to uid 65534, not to the relay')
        fake.kill()
        out, _ = fake.communicate(timeout=5)
        self.assertNotIn(b'connection', out)


if __name__ == '__main__':
    unittest.main()
