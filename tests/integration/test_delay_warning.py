"""Stuck mail is told early: `delay_warning_time` (INTERFACE.md).

A message still undelivered after delay_warning_time gets one RFC 3464
delay DSN (multipart/report, Action: delayed) to its sender, with the
reason; never a second one (also not after a restart), none when the key
is 0, none to the null sender.  The destination's only MX answers
451 4.7.1 at RCPT; the sender's domain has its own MX, which receives the
warnings.  Real peers: a DNSSEC-signed Knot zone and aiosmtpd MX hosts.
The metrics endpoint (metrics_listen) counts each warning queued in
tlsrelay_delay_warnings_total, read with prometheus_client's parser.
"""

import os
import re
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import (DELIVERY_TIMEOUT, DeliveryBase, dsn_parts,  # noqa: E402
                           message, null_sender, per_recipient,
                           require_peers)

STUCK = '451 4.7.1 Greylisted, try again later'
NOTIFY_RE = r'%s: sender delay notification: ([0-9A-F]{10}) \(delay warning'


class DelayWarning(DeliveryBase):
    RECORDS = [
        ('dw.test.', 'MX', '10 mx1.dw.test.'),
        ('mx1.dw.test.', 'A', '127.0.0.40'),
        ('snd.test.', 'MX', '10 mx1.snd.test.'),
        ('mx1.snd.test.', 'A', '127.0.0.41'),
    ]
    HOSTS = ['127.0.0.40', '127.0.0.41']

    def peers(self):
        """(destination MX answering 451 at RCPT, the sender's MX)."""
        dest = self.mx('127.0.0.40', 'mx1.dw.test',
                       rcpt_reply={'@dw.test': STUCK})
        snd = self.mx('127.0.0.41', 'mx1.snd.test')
        return dest, snd

    def deferrals(self, relay, qid, text=None):
        """The delivery lines of qid that say deferred (in text, default:
        the whole log)."""
        text = relay.log_text() if text is None else text
        return re.findall(r'^.*%s: to=<[^>]*>, relay=.*status=deferred.*$'
                          % qid, text, re.M)

    def wait_deferrals(self, relay, qid, n, since=0):
        """Wait until qid has at least n deferred lines in the log after
        offset since."""
        ok = harness.wait_for(
            lambda: len(self.deferrals(relay, qid, relay.log_text()[since:]))
            >= n, DELIVERY_TIMEOUT)
        if not ok:
            self.fail('%s: fewer than %d deferrals; log:\n%s'
                      % (qid, n, relay.log_text()[-3000:]))

    def wait_stuck(self, relay, qid, start, seconds=3.0, n=3):
        """Wait until qid has been deferred n times and `seconds` have
        passed since start (monotonic), then a little longer: a warning
        queued with the last deferral would have been sent by then."""
        ok = harness.wait_for(
            lambda: (time.monotonic() - start >= seconds
                     and len(self.deferrals(relay, qid)) >= n),
            DELIVERY_TIMEOUT)
        if not ok:
            self.fail('%s: not deferred %d times in %.0f s; log:\n%s'
                      % (qid, n, DELIVERY_TIMEOUT, relay.log_text()[-3000:]))
        time.sleep(1.0)

    def warnings_at(self, snd):
        """The DSNs (null sender) the sender's MX received."""
        return [(e, c) for e, c in snd.messages() if null_sender(e['mail_from'])]

    def delay_warnings_metric(self, mport):
        """tlsrelay_delay_warnings_total as the metrics endpoint says it
        (None: absent), with its family's type."""
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % mport,
                                    timeout=10) as r:
            text = r.read().decode('utf-8')
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                if smp.name == 'tlsrelay_delay_warnings_total':
                    return smp.value, fam.type
        return None, None

    def send_from(self, relay, sender, rcpts):
        data, mid = message(sender or 'nobody@client.test', rcpts)
        code, reply, qid = harness.smtp_send(relay, sender, rcpts, data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid

    def check_warning(self, content, sender, rcpt, mid):
        msg, blocks = dsn_parts(content)
        self.assertIn(sender, msg.get('To', ''))
        self.assertIn('Delayed Mail', msg.get('Subject', ''))
        rcpts = per_recipient(blocks)
        self.assertEqual(set(rcpts), {rcpt}, blocks)
        fields = rcpts[rcpt]
        self.assertEqual(fields['Action'].strip().lower(), 'delayed')
        self.assertEqual(fields['Status'].strip(), '4.7.1')
        self.assertIn('smtp;', fields.get('Diagnostic-Code', ''))
        self.assertIn('Greylisted, try again later',
                      ' '.join(fields.get('Diagnostic-Code', '').split()))
        self.assertEqual(fields.get('Remote-MTA', '').strip(), 'dns; mx1.dw.test')
        self.assertTrue(fields.get('Will-Retry-Until'), fields.items())
        # The original's header section comes back (not REQUIRETLS mail).
        self.assertIn(mid.encode(), content)
        self.assertIn(b'THIS IS A WARNING ONLY', content)

    def test_one_warning_even_after_retries_and_restart(self):
        _, snd = self.peers()
        mport = harness.free_port()
        relay = self.relay(delay_warning_time='2s', retry_min='1s',
                           retry_max='1s',
                           metrics_listen='127.0.0.1:%d' % mport)
        self.assertTrue(harness.wait_for(lambda: harness.port_open(mport), 5))
        self.assertEqual(self.delay_warnings_metric(mport), (0, 'counter'))
        qid, mid = self.send_from(relay, 'alice@snd.test', ['bob@dw.test'])
        got = harness.wait_for(lambda: self.warnings_at(snd), DELIVERY_TIMEOUT)
        self.assertTrue(got, 'no delay warning at mx1.snd.test; events: %s\n'
                        'log:\n%s' % (snd.events()[-10:],
                                      relay.log_text()[-3000:]))
        env, content = got[0]
        self.assertEqual(env['rcpt_tos'], ['alice@snd.test'])
        self.check_warning(content, 'alice@snd.test', 'bob@dw.test', mid)
        self.wait_log(relay, NOTIFY_RE % qid)
        # Not before its time: the first attempt (at once) warned nobody.
        first = self.deferrals(relay, qid)[0]
        self.assertNotIn('delay notification', relay.log_text().split(first)[0])
        # Several more retries: no second warning, and the metric counted one.
        seen = len(self.deferrals(relay, qid))
        self.wait_deferrals(relay, qid, seen + 3)
        self.assertEqual(self.delay_warnings_metric(mport), (1, 'counter'))
        # Across a restart: the mark is durable.
        since = len(relay.log_text())
        relay.restart()
        self.wait_deferrals(relay, qid, 3, since)
        time.sleep(1.0)
        self.assertEqual(len(self.warnings_at(snd)), 1,
                         [c[:300] for _, c in self.warnings_at(snd)])
        self.assertEqual(len(re.findall(NOTIFY_RE % qid, relay.log_text())), 1)
        self.assertIn(b'delay_warning: sent', relay.queue_show(qid))
        m = relay.find(qid)
        self.assertIsNotNone(m, 'the stuck message left the queue')
        self.assertIn('Greylisted', m['recipients'][0].get('delay_reason', ''))
        # The warning itself was delivered and left the queue.
        self.assertEqual(relay.queue_ids(), {qid})

    def test_warning_comes_on_time_despite_long_backoff(self):
        """The retry is brought forward to the warning time: with a 1 h
        backoff the sender still hears after delay_warning_time."""
        _, snd = self.peers()
        relay = self.relay(delay_warning_time='3s', retry_min='1h',
                           retry_max='1h')
        start = time.monotonic()
        qid, mid = self.send_from(relay, 'frank@snd.test', ['gina@dw.test'])
        got = harness.wait_for(lambda: self.warnings_at(snd), DELIVERY_TIMEOUT)
        self.assertTrue(got, 'no delay warning; log:\n%s'
                        % relay.log_text()[-3000:])
        # Arrival times are whole seconds: at least 2 s have passed.
        self.assertGreaterEqual(time.monotonic() - start, 1.9)
        self.check_warning(got[0][1], 'frank@snd.test', 'gina@dw.test', mid)
        self.assertEqual(len(self.deferrals(relay, qid)), 2)
        # Then the 1 h backoff again: no third attempt soon.
        time.sleep(1.5)
        self.assertEqual(len(self.deferrals(relay, qid)), 2)
        self.assertIsNotNone(relay.find(qid))

    def test_zero_turns_warnings_off(self):
        _, snd = self.peers()
        relay = self.relay(delay_warning_time='0', retry_min='1s',
                           retry_max='1s')
        start = time.monotonic()
        qid, _ = self.send_from(relay, 'carol@snd.test', ['dave@dw.test'])
        self.wait_stuck(relay, qid, start)
        self.assertNotIn(b'delay_warning:', relay.queue_show(qid))
        self.assertEqual(self.warnings_at(snd), [])
        self.assertNotIn('delay notification', relay.log_text())
        self.assertEqual(relay.queue_ids(), {qid})

    def test_null_sender_gets_none(self):
        _, snd = self.peers()
        relay = self.relay(delay_warning_time='1s', retry_min='1s',
                           retry_max='1s')
        start = time.monotonic()
        qid, _ = self.send_from(relay, '', ['erin@dw.test'])
        self.wait_stuck(relay, qid, start)
        log = relay.log_text()
        self.assertEqual(self.warnings_at(snd), [])
        self.assertNotIn('delay notification', log)
        self.assertNotIn('cannot build', log)
        self.assertEqual(relay.queue_ids(), {qid})


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
