"""Volume and crashes: a 300-message burst over parallel SMTP connections
arrives exactly once each; kill -9 while deliveries are in flight, then a
restart, loses nothing (a duplicate after a crash is allowed, a loss is
not).  Real MX peers (mx.py) and a Knot DNS zone, as in test_delivery.py."""

import collections
import os
import smtplib
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import (DeliveryBase, message, msg_id_of,  # noqa: E402
                           new_msg_id, require_peers)

THREADS = 10
PER_THREAD = 30


def send_many(relay, sender, rcpt_for, ids, errors, accepted):
    """One SMTP session sending a message per Message-ID in ids; appends
    each accepted Message-ID to accepted and failures to errors."""
    try:
        s = relay.smtp(timeout=30)
        try:
            s.ehlo()
            for k, mid in enumerate(ids):
                rcpt = rcpt_for(k)
                data, _ = message(sender, [rcpt], msg_id=mid,
                                  subject='burst %s' % mid)
                try:
                    refused = s.sendmail(sender, [rcpt], data)
                except smtplib.SMTPException as e:
                    errors.append('%s: %r' % (mid, e))
                    continue
                if refused:
                    errors.append('%s: refused %r' % (mid, refused))
                else:
                    accepted.append(mid)
            s.quit()
        finally:
            s.close()
    except (OSError, smtplib.SMTPException) as e:
        errors.append('session: %r' % e)


def parallel_send(relay, sender, rcpt_for, ids, threads=THREADS):
    """Send ids over `threads` parallel sessions; (accepted, errors)."""
    accepted, errors = [], []
    chunks = [ids[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=send_many,
                           args=(relay, sender, rcpt_for, c, errors, accepted))
          for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return accepted, errors


class Burst(DeliveryBase):
    RECORDS = [
        ('burst.test.', 'MX', '10 mx1.burst.test.'),
        ('mx1.burst.test.', 'A', '127.0.0.60'),
        ('crash.test.', 'MX', '10 mx1.crash.test.'),
        ('mx1.crash.test.', 'A', '127.0.0.61'),
    ]
    HOSTS = ['127.0.0.60', '127.0.0.61']

    def counts(self, mx):
        return collections.Counter(msg_id_of(c) for _, c in mx.messages())

    def test_300_message_burst_arrives_once_each(self):
        mx = self.mx('127.0.0.60', 'mx1.burst.test')
        relay = self.relay()
        ids = [new_msg_id('burst%03d' % i) for i in range(THREADS * PER_THREAD)]
        accepted, errors = parallel_send(
            relay, 'bulk@client.test', lambda k: 'r%d@burst.test' % (k % 7),
            ids)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(accepted), sorted(ids))
        ok = harness.wait_for(lambda: len(mx.messages()) >= len(ids), 60, 0.2)
        counts = self.counts(mx)
        self.assertTrue(ok, '%d of %d messages at the MX after 60 s'
                        % (len(mx.messages()), len(ids)))
        self.wait_queue_empty(relay, timeout=15)
        missing = [m for m in ids if counts[m] == 0]
        dup = {m: n for m, n in counts.items() if n != 1}
        self.assertEqual(missing, [])
        self.assertEqual(dup, {}, 'delivered more than once (or unknown)')
        for env, content in mx.messages():
            self.assertEqual(env['mail_from'], 'bulk@client.test')
            self.assertEqual(len(env['rcpt_tos']), 1)
        sent = relay.log_text().count('status=sent')
        self.assertEqual(sent, len(ids))

    def test_kill9_during_delivery_then_restart_loses_nothing(self):
        n = 200
        # Everything is accepted while the MX is down, so all of it is
        # due again at about the same time once the MX is up: kill -9
        # then hits many deliveries in flight.
        relay = self.relay(retry_min='1s', retry_max='1s')
        ids = [new_msg_id('crash%03d' % i) for i in range(n)]
        accepted, errors = parallel_send(
            relay, 'bulk@client.test', lambda k: 'r%d@crash.test' % (k % 5),
            ids)
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted), n)
        self.assertTrue(harness.wait_for(
            lambda: 'status=deferred' in relay.log_text(), 10))
        # Some MX tempfailures on top keep deliveries in retry as well.
        mx = self.mx('127.0.0.61', 'mx1.crash.test', tempfail_first=20)
        started = harness.wait_for(lambda: len(mx.messages()) >= 10, 20, 0.02)
        self.assertTrue(started, 'delivery did not resume; log:\n%s'
                        % relay.log_text()[-3000:])
        relay.kill9()
        at_kill = len(set(self.counts(mx)))
        self.assertLess(at_kill, n, 'every message was delivered before the '
                        'kill; nothing was in flight')
        # After the crash the queue still holds the undelivered rest.
        left = relay.queue_ids()
        self.assertGreater(len(left), 0)
        self.assertGreaterEqual(at_kill + len(left), n,
                                'messages neither delivered nor queued '
                                'right after kill -9')
        relay.start()
        done = harness.wait_for(
            lambda: set(ids) <= set(self.counts(mx)), 45, 0.2)
        counts = self.counts(mx)
        missing = [m for m in ids if counts[m] == 0]
        self.assertTrue(done, '%d message(s) lost after kill -9 and restart '
                        '(%d delivered before the kill): %s'
                        % (len(missing), at_kill, missing[:5]))
        self.wait_queue_empty(relay, timeout=20)
        self.assertEqual(set(counts) - set(ids), set())


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
