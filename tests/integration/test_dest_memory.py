"""Bounded destination state: the relay delivers to many distinct domains
(one destination each) and, once the queue has drained, its memory is back
within a few MB of where it was before the load.  A destination with no
work left is freed at the next poll; only the queue's own files stay.

The domains come from one wildcard MX in a signed Knot zone
(*.bulk.test MX 10 mx.bulk.test), so every domain is a real DNSSEC-validated
lookup; one aiosmtpd MX answers every DATA with 250 and stores nothing.

TLSRELAY_DEST_COUNT sets the number of domains (default 20,000: about
40 s on two cores; bench/dest_memory.sh N runs it for any N).  Under a
sanitizer build (its allocator keeps freed memory in quarantine) the memory
bound is not checked and 2,000 domains are used; the delivery is."""

import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402

COUNT = int(os.environ.get('TLSRELAY_DEST_COUNT', '0'))
PER_MESSAGE = 1000      # smtpd_max_recipients' default
WARMUP = 200            # domains delivered to before the baseline
# Memory the load may leave behind: anonymous memory (heap) of the relay,
# in KB.  The queue's LMDB map is a file mapping: its pages are counted
# apart (RssFile) and belong to the page cache, not to the relay's state.
ANON_SLACK_KB = int(os.environ.get('TLSRELAY_DEST_SLACK_KB', str(6 * 1024)))
DRAIN_TIMEOUT = float(os.environ.get('TLSRELAY_DEST_TIMEOUT', '240'))


def sanitized(pid):
    """True when the relay runs with AddressSanitizer's allocator."""
    with open('/proc/%d/maps' % pid) as f:
        return 'libasan' in f.read()


def status_kb(pid):
    """VmRSS, RssAnon, RssFile of pid in KB (from /proc/PID/status)."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'RssAnon', 'RssFile', 'VmHWM'):
                out[key] = int(rest.split()[0])
    return out


class DestMemory(DeliveryBase):
    RECORDS = [
        ('*.bulk.test.', 'MX', '10 mx.bulk.test.'),
        ('mx.bulk.test.', 'A', '127.0.0.70'),
    ]
    HOSTS = ['127.0.0.70']

    def inject(self, relay, first, count):
        """Messages of PER_MESSAGE recipients, one domain each, over one
        SMTP session; returns the number of recipients accepted."""
        s = relay.smtp(timeout=60)
        accepted = 0
        try:
            s.ehlo()
            for start in range(first, first + count, PER_MESSAGE):
                rcpts = ['u@d%d.bulk.test' % i
                         for i in range(start, min(start + PER_MESSAGE,
                                                   first + count))]
                data = harness.make_message(subject='bulk %d' % start)
                refused = s.sendmail('bulk@client.test', rcpts, data)
                accepted += len(rcpts) - len(refused)
            s.quit()
        finally:
            s.close()
        return accepted

    def drain(self, relay, sent, timeout):
        """Wait until `sent` deliveries are logged and the queue is empty."""
        ok = harness.wait_for(
            lambda: relay.log_text().count('status=sent') >= sent, timeout, 0.5)
        self.assertTrue(ok, '%d of %d delivered after %.0f s; log tail:\n%s'
                        % (relay.log_text().count('status=sent'), sent,
                           timeout, relay.log_text()[-2000:]))
        self.wait_queue_empty(relay, timeout=30)

    def settle(self, relay):
        """Memory after the poll has had time to free idle destinations
        (it runs every 0.5 s): the lowest of a few samples over 2 s."""
        best = None
        for _ in range(5):
            time.sleep(0.5)
            m = status_kb(relay.proc.pid)
            if best is None or m['RssAnon'] < best['RssAnon']:
                best = m
        return best

    def test_memory_returns_after_many_destinations(self):
        self.mx('127.0.0.70', 'mx.bulk.test', tls=False,
                data_reply='250 2.0.0 Ok: discarded')
        relay = self.relay(default_tls_level='none')
        asan = sanitized(relay.proc.pid)
        count = COUNT or (2000 if asan else 20000)
        # Warm up: the resolver, the committer and the allocator reach
        # their working size on a small load first.
        self.assertEqual(self.inject(relay, 0, WARMUP), WARMUP)
        self.drain(relay, WARMUP, 60)
        before = self.settle(relay)

        t0 = time.monotonic()
        self.assertEqual(self.inject(relay, WARMUP, count), count)
        self.drain(relay, WARMUP + count, DRAIN_TIMEOUT)
        took = time.monotonic() - t0
        after = self.settle(relay)
        grew = after['RssAnon'] - before['RssAnon']
        sys.stderr.write(
            '\n%d destinations in %.1f s (%.0f/s); before: %s; after: %s; '
            'anonymous memory grew %d KB (peak VmHWM %d KB)\n'
            % (count, took, count / took, before, after, grew, after['VmHWM']))
        if asan:
            return
        self.assertLessEqual(
            grew, ANON_SLACK_KB,
            'relay memory after %d destinations drained: %d KB more than '
            'before (RssAnon %d -> %d KB, VmRSS %d -> %d KB)'
            % (count, grew, before['RssAnon'], after['RssAnon'],
               before['VmRSS'], after['VmRSS']))


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
