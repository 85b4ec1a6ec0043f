"""mailq text layout and the queue show/hold/release/delete commands."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import RelayTestCase, make_message, sized_message, smtp_send  # noqa: E402

harness.require_binary()

HEADER = ('-Queue ID-  --Size-- ----Arrival Time---- '
          '-Sender/Recipient-------')


def entry_lines(m, marker=''):
    """The lines mailq should print for message m (a JSON object) whose
    recipients have no reason."""
    when = time.asctime(time.localtime(m['arrival_time']))[:20]
    sender = m['sender'] or 'MAILER-DAEMON'
    out = ['%-11s %7s %-20s %s' % (m['queue_id'] + marker,
                                   m['message_size'], when, sender)]
    for r in m['recipients']:
        out.append('%-11s %7s %-20s %s' % ('', '', '', r['address']))
    return out


def trailer(msgs):
    total = sum(m['message_size'] for m in msgs)
    n = len(msgs)
    return '-- %d Kbytes in %d %s.' % (total // 1024, n,
                                       'Request' if n == 1 else 'Requests')


class QueueCli(RelayTestCase):

    def setUp(self):
        self.r = self.relay()

    def send(self, sender='alice@client.test', rcpts=('bob@dest.test',),
             msg=None):
        code, reply, qid = smtp_send(self.r, sender, list(rcpts),
                                     msg or make_message())
        self.assertQueued(code, reply, qid)
        return qid

    def test_empty_queue(self):
        self.assertEqual(self.r.mailq_text(), 'Mail queue is empty\n')
        self.assertEqual(self.r.mailq_json(), [])

    def test_one_message_layout(self):
        qid = self.send(rcpts=['bob@dest.test'])
        # Stop the relay so no delivery attempt ('*') races the two listings.
        self.r.stop()
        (m,) = self.r.mailq_json()
        self.assertEqual(m['queue_id'], qid)
        want = '\n'.join([HEADER] + entry_lines(m) + ['', trailer([m])]) + '\n'
        self.assertEqual(self.r.mailq_text(), want)
        # the recipient line: 41 spaces then the address
        self.assertIn('\n' + ' ' * 41 + 'bob@dest.test\n', want)

    def test_two_messages_layout(self):
        a = self.send(sender='', rcpts=['x@dest.test', 'y@dest.test'],
                      msg=sized_message(3000))
        b = self.send(sender='carol@client.test', rcpts=['z@dest.test'],
                      msg=sized_message(5000))
        self.r.stop()
        q = {m['queue_id']: m for m in self.r.mailq_json()}
        self.assertEqual(set(q), {a, b})
        text = self.r.mailq_text()
        lines = text.split('\n')
        self.assertEqual(lines[0], HEADER)
        self.assertEqual(lines[-1], '')
        self.assertEqual(lines[-2], trailer(list(q.values())))
        self.assertEqual(lines[-2], '-- %d Kbytes in 2 Requests.'
                         % ((q[a]['message_size'] + q[b]['message_size'])
                            // 1024))
        self.assertGreaterEqual(q[a]['message_size'] + q[b]['message_size'],
                                8000)
        # entries separated (and followed) by a blank line, in any order
        body = '\n'.join(lines[1:-2])
        blocks = [bl.strip('\n') for bl in body.split('\n\n') if bl]
        self.assertEqual(len(blocks), 2, text)
        self.assertEqual(sorted(blocks),
                         sorted('\n'.join(entry_lines(m)) for m in q.values()))
        self.assertTrue(body.endswith('\n'), repr(text))
        self.assertIn('MAILER-DAEMON', text)

    def test_show(self):
        qid = self.send(sender='show@client.test',
                        rcpts=['r1@dest.test', 'r2@dest.test'],
                        msg=make_message(subject='show me',
                                         body='the body text 12345\r\n'))
        out = self.r.queue_show(qid).decode('utf-8', 'replace')
        self.assertIn('show@client.test', out)
        self.assertIn('r1@dest.test', out)
        self.assertIn('r2@dest.test', out)
        self.assertIn('Subject: show me', out)
        self.assertIn('the body text 12345', out)

    def test_hold_release(self):
        qid = self.send()
        other = self.send(sender='other@client.test')
        r = self.r.cli('queue', 'hold', qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        q = {m['queue_id']: m for m in self.r.mailq_json()}
        self.assertEqual(q[qid]['queue_name'], 'hold')
        self.assertNotEqual(q[other]['queue_name'], 'hold')
        text = self.r.mailq_text()
        self.assertRegex(text, r'(?m)^%s! +\d+ ' % qid)
        self.assertNotRegex(text, r'(?m)^%s!' % other)
        # the held entry keeps the column layout
        self.assertIn(entry_lines(q[qid], '!')[0], text.split('\n'))
        r = self.r.cli('queue', 'release', qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.r.find(qid)
        self.assertIn(m['queue_name'], ('incoming', 'deferred', 'active'))
        self.assertNotRegex(self.r.mailq_text(), r'(?m)^%s!' % qid)

    def test_hold_release_all(self):
        ids = {self.send(), self.send(), self.send()}
        r = self.r.cli('queue', 'hold', 'ALL')
        self.assertEqual(r.returncode, 0, r.stderr)
        q = self.r.mailq_json()
        self.assertEqual({m['queue_id'] for m in q}, ids)
        self.assertEqual({m['queue_name'] for m in q}, {'hold'})
        self.assertEqual(len(re.findall(r'(?m)^[0-9A-F]{10}!',
                                        self.r.mailq_text())), 3)
        r = self.r.cli('queue', 'release', 'ALL')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('hold', {m['queue_name'] for m in self.r.mailq_json()})

    def test_flush_existing(self):
        qid = self.send()
        for args in (('flush', qid), ('flush',)):
            r = self.r.cli('queue', *args)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.r.queue_ids(), {qid})

    def test_delete(self):
        a = self.send()
        b = self.send()
        r = self.r.cli('queue', 'delete', a)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.r.queue_ids(), {b})
        self.assertNotIn(a, self.r.mailq_text())
        r = self.r.cli('queue', 'show', a)
        self.assertEqual(r.returncode, 1)

    def test_delete_all(self):
        for _ in range(3):
            self.send()
        self.assertEqual(len(self.r.mailq_json()), 3)
        r = self.r.cli('queue', 'delete', 'ALL')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.r.mailq_json(), [])
        self.assertEqual(self.r.mailq_text(), 'Mail queue is empty\n')
        # the relay still takes mail afterwards
        self.send()
        self.assertEqual(len(self.r.mailq_json()), 1)

    def test_unknown_id(self):
        self.send()

        def snapshot():
            # queue_name moves incoming -> active -> deferred on its own while
            # the relay runs; what must not change is which mail is queued.
            return [{k: v for k, v in m.items() if k != 'queue_name'}
                    for m in self.r.mailq_json()]
        before = snapshot()
        for cmd in ('show', 'hold', 'release', 'delete', 'flush'):
            with self.subTest(cmd=cmd):
                r = self.r.cli('queue', cmd, '0000000000')
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertTrue(r.stderr.strip())
        self.assertEqual(snapshot(), before)

    def test_malformed_id(self):
        r = self.r.cli('queue', 'show', 'not-an-id')
        self.assertIn(r.returncode, (1, 2), r.stderr)


if __name__ == '__main__':
    unittest.main()
