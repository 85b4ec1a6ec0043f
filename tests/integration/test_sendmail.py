"""sendmail-compatible injection and the sendmail/mailq links."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, Relay, base_env, run  # noqa: E402

harness.require_binary()

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


if __name__ == '__main__':
    unittest.main()
