"""250 means on disk: kill -9 right after the reply loses nothing; a full
queue answers 452 4.3.1 and the relay stays up."""

import os
import random
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RelayTestCase, make_message, sized_message  # noqa: E402

harness.require_binary()


def start_data(relay, sender, rcpt):
    """A raw session left at the 354 of DATA."""
    c = relay.raw()
    c.greet()
    c.expect_cmd('MAIL FROM:<%s>' % sender, 250)
    c.expect_cmd('RCPT TO:<%s>' % rcpt, 250)
    c.expect_cmd('DATA', 354)
    return c


class Durability(RelayTestCase):

    def test_kill9_after_250(self):
        rnd = random.Random(1234)
        r = self.relay()
        accepted = {}
        for i in range(20):
            c = start_data(r, 'crash%d@client.test' % i, 'r%d@dest.test' % i)
            try:
                c.send(make_message(subject='crash %d' % i,
                                    body='payload %d\r\n' % i) + b'.\r\n')
                rep = c.expect(250)
                # random point after the 250: at once, or a little later
                if rnd.random() < 0.5:
                    time.sleep(rnd.random() * 0.02)
                r.kill9()
            finally:
                c.close()
            m = harness.QUEUED_RE.search(rep.raw)
            self.assertTrue(m, rep)
            accepted[m.group(1).decode()] = i
            # mailq works on the queue the dead relay left behind
            q = {x['queue_id']: x for x in r.mailq_json()}
            self.assertEqual(set(q), set(accepted),
                             'after kill -9 number %d' % (i + 1))
            for qid, n in accepted.items():
                self.assertEqual(q[qid]['sender'], 'crash%d@client.test' % n)
            r.start()
        # the contents survived too
        for qid, n in list(accepted.items())[::5]:
            self.assertIn(b'payload %d' % n, r.queue_show(qid))

    def test_kill9_mid_data_keeps_queue_sane(self):
        r = self.relay()
        code, reply, good = harness.smtp_send(r, 'keep@client.test',
                                              ['keep@dest.test'],
                                              make_message())
        self.assertQueued(code, reply, good)
        for i in range(5):
            c = start_data(r, 'half@client.test', 'half@dest.test')
            try:
                c.send(b'Subject: half\r\n\r\n' + b'x' * 5000 * i)
                time.sleep(0.02)
                r.kill9()
            finally:
                c.close()
            r.start()
            q = r.mailq_json()
            self.assertEqual([m['queue_id'] for m in q], [good])
        code, reply, qid = harness.smtp_send(r, 'after@client.test',
                                             ['after@dest.test'],
                                             make_message())
        self.assertQueued(code, reply, qid)
        self.assertEqual(r.queue_ids(), {good, qid})

    def test_queue_full(self):
        r = self.relay(queue_max_size=1048576)
        accepted = []
        full = None
        for i in range(20):
            s = r.smtp()
            try:
                s.ehlo()
                code, reply = s.mail('fill%d@client.test' % i)
                if code == 250:
                    code, reply = s.rcpt('fill@dest.test')
                if code == 250:
                    try:
                        code, reply = s.data(sized_message(200 * 1024,
                                                           'fill %d' % i))
                    except smtplib.SMTPDataError as e:
                        code, reply = e.smtp_code, e.smtp_error
                if code == 250:
                    m = harness.QUEUED_RE.search(reply)
                    self.assertTrue(m, reply)
                    accepted.append(m.group(1).decode())
                    continue
                full = (code, reply)
                # the session survives the refusal
                self.assertEqual(s.noop()[0], 250)
                break
            finally:
                s.close()
        self.assertIsNotNone(full, 'no refusal after 20 messages of 200 KB '
                             'with queue_max_size = 1 MiB')
        self.assertEqual(full[0], 452, full)
        self.assertTrue(full[1].startswith(b'4.3.1'), full)
        self.assertTrue(r.alive(), 'relay died when the queue filled')
        with r.raw() as c:
            c.greet()
            c.expect_cmd('NOOP', 250)
        self.assertEqual(r.queue_ids(), set(accepted))

    def test_queue_full_recovers_after_delete(self):
        """Once the full queue is emptied, messages as large as before are
        accepted again (the queue does not stay full)."""
        r = self.relay(queue_max_size=1048576)
        big = sized_message(200 * 1024)
        codes = []
        for i in range(20):
            code, reply, qid = harness.smtp_send(r, 'fill@client.test',
                                                 ['fill@dest.test'], big)
            codes.append(code)
            if code != 250:
                break
        self.assertEqual(codes[-1], 452, codes)
        d = r.cli('queue', 'delete', 'ALL')
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertEqual(r.mailq_json(), [])
        code, reply, qid = harness.smtp_send(r, 'again@client.test',
                                             ['again@dest.test'], big)
        self.assertQueued(code, reply, qid)
        self.assertEqual(r.queue_ids(), {qid})


if __name__ == '__main__':
    unittest.main()
