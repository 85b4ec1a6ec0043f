"""Memory per message in progress: bodies beyond smtpd_spill_threshold wait
in an unlinked file in queue_dir, not in the relay's memory.  N clients
hold large transfers unfinished while we read the relay's VmRSS; then they
finish, every message is queued and an aiosmtpd MX (test_delivery.py's
Knot zone and mx.py) receives each one intact."""

import base64
import hashlib
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402

N = 12                   # transfers held at once
SIZE = 8 * 1024 * 1024   # octets of each message
# The bound asserted on the relay's resident memory while the N transfers
# are held (96 MiB of bodies in flight; without spilling RSS grows by more
# than that).  Spilling keeps each session near its 256 KiB threshold.
RSS_GROWTH_MAX = 32 * 1024 * 1024


def vm_rss(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS for %d' % pid)


def big_message(i, size):
    """(head, body) of a message of `size` octets, random base64 lines of
    76 characters, so a lost or swapped chunk shows."""
    head = ('From: <big@client.test>\r\nTo: <r%d@spill.test>\r\n'
            'Subject: spill %d\r\nMessage-ID: <spill%d@client.test>\r\n\r\n'
            % (i, i, i)).encode()
    raw = base64.encodebytes(os.urandom((size - len(head)) * 3 // 4 + 100))
    body = raw.replace(b'\n', b'\r\n')[:size - len(head)]
    body = body[:-2] + b'\r\n'
    assert len(head) + len(body) == size
    return head + body


class Spill(DeliveryBase):
    RECORDS = [
        ('spill.test.', 'MX', '10 mx1.spill.test.'),
        ('mx1.spill.test.', 'A', '127.0.0.70'),
    ]
    HOSTS = ['127.0.0.70']

    def open_transfer(self, relay, i):
        c = harness.RawSMTP(relay.port, timeout=30)
        self.addCleanup(c.close)
        c.greet()
        c.expect_cmd('MAIL FROM:<big@client.test>', 250)
        c.expect_cmd('RCPT TO:<r%d@spill.test>' % i, 250)
        c.expect_cmd('DATA', 354)
        return c

    def test_held_transfers_stay_out_of_memory_and_arrive_intact(self):
        relay = self.relay(retry_min='1s', retry_max='1s')
        pid = relay.proc.pid
        msgs = [big_message(i, SIZE) for i in range(N)]
        rss0 = vm_rss(pid)
        conns = []
        for i, m in enumerate(msgs):
            c = self.open_transfer(relay, i)
            c.send(m)            # everything but the end of data
            conns.append(c)
        # The relay has read all of it once its file holds it; poll RSS
        # until it stops growing (bounded wait).
        time.sleep(0.5)
        peak = max(vm_rss(pid) for _ in range(5) if time.sleep(0.1) is None)
        sys.stderr.write('relay VmRSS: %.1f MiB before, %.1f MiB with %d x %d '
                         'MiB held\n' % (rss0 / 2**20, peak / 2**20, N,
                                         SIZE // 2**20))
        self.assertLess(peak - rss0, RSS_GROWTH_MAX,
                        'relay memory grew by %.1f MiB with %d transfers of '
                        '%d MiB held' % ((peak - rss0) / 2**20, N,
                                         SIZE // 2**20))
        qids = []
        for c in conns:
            c.send(b'.\r\n')
        for c in conns:
            r = c.expect(250, timeout=60)
            qids.append(r.text.split()[-1])
        sizes = {m['queue_id']: m['message_size'] for m in relay.mailq_json()}
        for q in qids:
            self.assertIn(q, sizes, 'queued %s missing right after 250' % q)
        # Delivered intact: each arrives whole, after our Received header.
        mx = self.mx('127.0.0.70', 'mx1.spill.test', tls=False)
        ok = harness.wait_for(lambda: len(mx.messages()) >= N, 60, 0.5)
        self.assertTrue(ok, '%d of %d delivered; log:\n%s'
                        % (len(mx.messages()), N, relay.log_text()[-3000:]))
        want = {hashlib.sha256(m).hexdigest() for m in msgs}
        got = set()
        for env, content in mx.messages():
            i = content.find(b'From: <big@client.test>')
            self.assertGreater(i, 0)
            self.assertTrue(content[:i].startswith(b'Received: '))
            got.add(hashlib.sha256(content[i:]).hexdigest())
        self.assertEqual(got, want)
        self.wait_queue_empty(relay, timeout=30)

    def test_spill_file_is_unlinked(self):
        relay = self.relay()
        c = self.open_transfer(relay, 0)
        c.send(big_message(0, 2 * 1024 * 1024))
        time.sleep(0.3)
        # Nothing named in queue_dir but LMDB's files; the spill file is
        # only an open descriptor of the relay, mode 0600.
        self.assertEqual(sorted(os.listdir(relay.queue_dir)),
                         ['data.mdb', 'lock.mdb', 'serve.lock'])
        fds = '/proc/%d/fd' % relay.proc.pid
        spilled = [os.readlink(os.path.join(fds, f)) for f in os.listdir(fds)
                   if os.readlink(os.path.join(fds, f)).startswith(
                       relay.queue_dir)
                   and 'mdb' not in os.readlink(os.path.join(fds, f))
                   and not os.readlink(os.path.join(fds, f)).endswith(
                       '/serve.lock')]
        self.assertEqual(len(spilled), 1, spilled)
        self.assertIn('(deleted)', spilled[0])
        st = os.stat(os.path.join(fds, [f for f in os.listdir(fds) if
                                        os.readlink(os.path.join(fds, f)) ==
                                        spilled[0]][0]))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertGreater(st.st_size, 1024 * 1024)
        c.send(b'.\r\n')
        c.expect(250, timeout=30)

    def spilled_bytes(self, relay):
        """Bytes in the relay's open spill files (unlinked, in queue_dir)."""
        fds = '/proc/%d/fd' % relay.proc.pid
        total = 0
        for f in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, f))
                if target.startswith(relay.queue_dir) and 'mdb' not in target:
                    total += os.stat(os.path.join(fds, f)).st_size
            except OSError:
                pass
        return total

    def test_spill_files_stay_within_queue_max_size(self):
        # Disk is bounded by configuration too: four 1 MiB transfers held
        # at once, with queue_max_size 2 MiB.  The old relay kept all of
        # them (4 MiB on disk); now the spill files never pass 2 MiB and
        # the transfers beyond that get 452 at the end of data.
        limit = 2 * 1024 * 1024
        relay = self.relay(queue_max_size=limit, smtpd_spill_threshold=16384)
        conns = []
        for i in range(4):
            c = self.open_transfer(relay, i)
            c.send(big_message(i, 1024 * 1024))
            conns.append(c)
        time.sleep(0.5)
        self.assertLessEqual(self.spilled_bytes(relay), limit)
        self.assertGreater(self.spilled_bytes(relay), 512 * 1024)
        codes = []
        for c in conns:
            c.send(b'.\r\n')
            codes.append(c.read_reply(timeout=30).code)
        self.assertIn(452, codes)


if __name__ == '__main__':
    require_peers()
    unittest.main()
