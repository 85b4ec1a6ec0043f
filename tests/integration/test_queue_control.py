"""queue flush/hold/release/delete against a running relay, and SIGTERM while
idle, with real MX peers (mx.py) and a Knot DNS zone.

Every test starts a relay whose retries are an hour apart, submits mail while
the domain's only MX is down (so the mail is deferred and would not be tried
again during the test), then starts the MX and drives the queue commands:
whatever reaches the MX got there because of the command.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, msg_id_of, require_peers  # noqa: E402

# How long a negative check watches for mail that must not arrive: the
# relay polls its schedule every 0.5 s and must act on a flush within 1 s.
QUIET = 2.5
FLUSH_WITHIN = 5.0


class QueueControl(DeliveryBase):
    RECORDS = []
    HOSTS = []
    for i, name in enumerate(['flush', 'dom', 'hold', 'all', 'del', 'term']):
        RECORDS += [('%s.test.' % name, 'MX', '10 mx1.%s.test.' % name),
                    ('mx1.%s.test.' % name, 'A', '127.0.0.%d' % (40 + i))]
        HOSTS.append('127.0.0.%d' % (40 + i))
    del i, name

    def slow_relay(self):
        return self.relay(retry_min='1h', retry_max='1h')

    def deferred_mail(self, relay, domain, n):
        """Submit n messages to the (down) MX of domain and wait until each
        is deferred.  Returns [(queue ID, Message-ID)]."""
        out = []
        for k in range(n):
            qid, mid = self.send(relay, 'alice@client.test',
                                 ['user%d@%s' % (k, domain)])
            out.append((qid, mid))
        for qid, _ in out:
            m = self.wait_deferred(relay, qid)
            self.assertEqual(m['queue_name'], 'deferred', m)
        return out

    def ctl(self, relay, *args):
        r = relay.cli('queue', *args)
        self.assertEqual(r.returncode, 0, 'queue %s: %s%s'
                         % (' '.join(args), r.stdout, r.stderr))
        return r

    def arrived_ids(self, mx):
        return [msg_id_of(c) for _, c in mx.messages()]

    def assert_nothing_arrives(self, mx, ids, quiet=QUIET):
        got = harness.wait_for(
            lambda: set(self.arrived_ids(mx)) & set(ids), quiet, 0.1)
        self.assertFalse(got, 'mail arrived that should not have: %s' % got)

    def test_flush_one_id(self):
        relay = self.slow_relay()
        (q1, m1), (q2, m2) = self.deferred_mail(relay, 'flush.test', 2)
        mx = self.mx('127.0.0.40', 'mx1.flush.test')
        self.assert_nothing_arrives(mx, [m1, m2], quiet=1.0)
        self.ctl(relay, 'flush', q1)
        env, _ = self.messages_with(mx, m1, timeout=FLUSH_WITHIN)[0]
        self.assertEqual(env['rcpt_tos'], ['user0@flush.test'])
        self.wait_gone(relay, q1)
        # Only the flushed message went.
        self.assert_nothing_arrives(mx, [m2], quiet=1.5)
        m = relay.find(q2)
        self.assertIsNotNone(m)
        self.assertEqual(m['queue_name'], 'deferred')

    def test_flush_domain(self):
        relay = self.slow_relay()
        mine = self.deferred_mail(relay, 'dom.test', 3)
        mx = self.mx('127.0.0.41', 'mx1.dom.test')
        self.ctl(relay, 'flush', '--domain', 'dom.test')
        for qid, mid in mine:
            self.messages_with(mx, mid, timeout=FLUSH_WITHIN)
        self.wait_queue_empty(relay)
        self.assertEqual(sorted(self.arrived_ids(mx)),
                         sorted(mid for _, mid in mine))

    def test_hold_wins_over_flush_then_release(self):
        relay = self.slow_relay()
        (q1, m1), (q2, m2) = self.deferred_mail(relay, 'hold.test', 2)
        mx = self.mx('127.0.0.42', 'mx1.hold.test')
        self.ctl(relay, 'hold', q1)
        m = relay.find(q1)
        self.assertEqual(m['queue_name'], 'hold', m)
        self.assertRegex(relay.mailq_text(), r'(?m)^%s!' % q1)
        self.ctl(relay, 'flush')
        # The other message goes; the held one does not.
        self.messages_with(mx, m2, timeout=FLUSH_WITHIN)
        self.wait_gone(relay, q2)
        self.assert_nothing_arrives(mx, [m1])
        self.assertEqual(relay.find(q1)['queue_name'], 'hold')
        self.ctl(relay, 'release', q1)
        m = relay.find(q1)
        self.assertIsNotNone(m)
        self.assertNotEqual(m['queue_name'], 'hold', m)
        self.ctl(relay, 'flush', q1)
        env, _ = self.messages_with(mx, m1, timeout=FLUSH_WITHIN)[0]
        self.assertEqual(env['rcpt_tos'], ['user0@hold.test'])
        self.wait_queue_empty(relay)
        self.assertEqual(len(mx.messages()), 2)

    def test_hold_all_release_all(self):
        relay = self.slow_relay()
        mine = self.deferred_mail(relay, 'all.test', 3)
        mx = self.mx('127.0.0.43', 'mx1.all.test')
        self.ctl(relay, 'hold', 'ALL')
        q = relay.mailq_json()
        self.assertEqual({m['queue_id'] for m in q}, {qid for qid, _ in mine})
        self.assertEqual({m['queue_name'] for m in q}, {'hold'}, q)
        self.ctl(relay, 'flush')
        self.assert_nothing_arrives(mx, [mid for _, mid in mine])
        self.ctl(relay, 'release', 'ALL')
        self.assertNotIn('hold', {m['queue_name'] for m in relay.mailq_json()})
        self.ctl(relay, 'flush')
        for _, mid in mine:
            self.messages_with(mx, mid, timeout=FLUSH_WITHIN)
        self.wait_queue_empty(relay)

    def test_delete_one_and_all(self):
        relay = self.slow_relay()
        (q1, m1), (q2, m2), (q3, m3) = self.deferred_mail(relay, 'del.test', 3)
        mx = self.mx('127.0.0.44', 'mx1.del.test')
        self.ctl(relay, 'delete', q1)
        self.assertEqual(relay.queue_ids(), {q2, q3})
        self.ctl(relay, 'flush', q2)
        self.messages_with(mx, m2, timeout=FLUSH_WITHIN)
        self.wait_gone(relay, q2)
        self.ctl(relay, 'delete', 'ALL')
        self.assertEqual(relay.mailq_json(), [])
        self.ctl(relay, 'flush')
        self.assert_nothing_arrives(mx, [m1, m3])
        self.assertEqual(self.arrived_ids(mx), [m2])
        r = relay.cli('queue', 'show', q1)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_sigterm_idle_exits_0_and_queue_survives(self):
        relay = self.slow_relay()
        (qid, mid), = self.deferred_mail(relay, 'term.test', 1)
        before = relay.find(qid)
        self.assertEqual(relay.stop(), 0, relay.log_text()[-2000:])
        self.assertEqual(relay.problems, [])
        relay.start()
        after = relay.find(qid)
        self.assertIsNotNone(after, 'deferred message lost over a restart')
        self.assertEqual(after['sender'], before['sender'])
        self.assertEqual([r['address'] for r in after['recipients']],
                         ['user0@term.test'])
        self.assertEqual(after['message_size'], before['message_size'])
        self.assertIn(mid.encode(), relay.queue_show(qid))
        # And it is still deliverable.
        mx = self.mx('127.0.0.45', 'mx1.term.test')
        self.ctl(relay, 'flush', qid)
        env, _ = self.messages_with(mx, mid, timeout=FLUSH_WITHIN)[0]
        self.assertEqual(env['mail_from'], 'alice@client.test')
        self.assertEqual(env['rcpt_tos'], ['user0@term.test'])
        self.wait_gone(relay, qid)


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
