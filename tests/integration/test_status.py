"""`tlsrelay status`: the one screen, on a queue with known contents.

One relay (default_tls_level = may, retry_min = 1h so nothing is retried
during the test) delivers to four domains of a DNSSEC-signed Knot zone,
each with a known outcome:

    ok.test      aiosmtpd MX with STARTTLS (self-signed) -> sent, tls=untrusted, 2x
    clear.test   aiosmtpd MX without STARTTLS            -> sent, tls=none, 1x
    refuse.test  aiosmtpd MX answering RCPT with 451     -> deferred (2 messages,
                                                           3 recipients), and one more
                                                           message put on hold
    dead.test    nothing listens on its MX address       -> deferred (connection
                                                           refused), the domain
                                                           suspended; the next message
                                                           "delivery temporarily
                                                           suspended: ..."

Then `status` must say: running with the relay's pid and an uptime; the
messages by state exactly (4 deferred, 1 on hold, their bytes as mailq
says); the oldest message's ID; the last hour's outcomes by TLS level
exactly as the delivery log lines say them; the failing destinations with
their reasons (as mailq shows them) and counts, worst first; the eight
inbound sessions from mynetworks.  `--json` says the same.  A second `serve` on the same queue is refused (before,
nothing stopped it: two relays delivered the same queue).  After the relay
stops: "not running", and the rest of the screen as before.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402

SENDER = 's@client.test'
TEMPFAIL = '451 4.3.0 try later'
REFUSED = ['r1@refuse.test', 'r2@refuse.test', 'r3@refuse.test', 'h1@refuse.test']
TLS_COLS = ['dane', 'mta-sts', 'verified', 'trusted', 'untrusted', 'anonymous',
            'none', 'no-conn']
LINE_RE = re.compile(r'^.*: to=<[^>]*>, relay=(\S+), delay=[0-9.]+, '
                     r'(?:tls=([a-z-]+), )?dsn=[0-9.]+, status=(sent|deferred|bounced) ',
                     re.M)


def age_secs(text):
    """Seconds of an age as status prints it ("3d 4h", "5m 3s", "42s")."""
    units = {'d': 86400, 'h': 3600, 'm': 60, 's': 1}
    total = 0
    for part in text.split():
        total += int(part[:-1]) * units[part[-1]]
    return total


def parse_screen(text):
    """The screen as a dict: relay line, queue rows, oldest, last hour rows,
    failing rows (msgs, rcpts, age, domain, reason)."""
    out = {'queue': {}, 'hour': {}, 'failing': []}
    lines = text.split('\n')
    for i, line in enumerate(lines):
        if line.startswith('relay:'):
            out['relay'] = line[len('relay:'):].strip()
        elif line.startswith('oldest:'):
            out['oldest'] = line[len('oldest:'):].strip()
        elif line.startswith('failing:'):
            out['failing_head'] = line[len('failing:'):].strip()
        m = re.match(r'^  (incoming|active|deferred|hold|total) +(\d+) +(\d+)$', line)
        if m:
            out['queue'][m.group(1)] = (int(m.group(2)), int(m.group(3)))
        m = re.match(r'^  (sent|deferred|bounced) +((?:\d+ +){8}\d+)$', line)
        if m:
            nums = [int(x) for x in m.group(2).split()]
            out['hour'][m.group(1)] = dict(zip(TLS_COLS + ['total'], nums))
        m = re.match(r'^ +(\d+) +(\d+) +((?:\d+[dhms] ?)+?)  ([^ :]+): (.*)$', line)
        if m and 'failing_head' in out:
            out['failing'].append((int(m.group(1)), int(m.group(2)),
                                   age_secs(m.group(3)), m.group(4), m.group(5)))
    return out


class Status(DeliveryBase):
    RECORDS = [
        ('ok.test.', 'MX', '10 mx1.ok.test.'),
        ('mx1.ok.test.', 'A', '127.0.0.91'),
        ('clear.test.', 'MX', '10 mx1.clear.test.'),
        ('mx1.clear.test.', 'A', '127.0.0.92'),
        ('refuse.test.', 'MX', '10 mx1.refuse.test.'),
        ('mx1.refuse.test.', 'A', '127.0.0.93'),
        ('dead.test.', 'MX', '10 mx1.dead.test.'),
        ('mx1.dead.test.', 'A', '127.0.0.94'),
    ]
    HOSTS = ['127.0.0.91', '127.0.0.92', '127.0.0.93', '127.0.0.94']

    def status(self, relay, *args):
        r = relay.cli('status', *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        return r.stdout

    def hour_from_log(self, relay):
        """{status: {column: n}} of the delivery lines in the log."""
        want = {s: {c: 0 for c in TLS_COLS} for s in ('sent', 'deferred', 'bounced')}
        for relay_host, tls, status in LINE_RE.findall(relay.log_text()):
            col = 'no-conn' if relay_host == 'none' else (tls or 'none')
            want[status][col] += 1
        return want

    def fill(self, relay):
        """The known queue; returns {name: queue ID} and the mailq JSON."""
        ids = {}
        # dead.test first: its message is the oldest in the queue.
        ids['dead1'], _ = self.send(relay, SENDER, ['x@dead.test'])
        m = self.wait_deferred(relay, ids['dead1'])
        self.assertRegex(m['recipients'][0]['delay_reason'], r'^connect to mx1\.dead\.test')
        self.wait_log(relay, r'dead\.test: delivery temporarily suspended for 3600s')
        time.sleep(1.1)  # a later arrival second than dead1
        ids['ref1'], _ = self.send(relay, SENDER, ['r1@refuse.test', 'r2@refuse.test'])
        ids['ref2'], _ = self.send(relay, SENDER, ['r3@refuse.test'])
        ids['dead2'], _ = self.send(relay, SENDER, ['y@dead.test'])
        ids['held'], _ = self.send(relay, SENDER, ['h1@refuse.test'])
        for k in ('ref1', 'ref2', 'held'):
            m = self.wait_deferred(relay, ids[k])
            self.assertIn(TEMPFAIL, m['recipients'][0]['delay_reason'])
        m = self.wait_deferred(relay, ids['dead2'])
        self.assertRegex(m['recipients'][0]['delay_reason'],
                         r'^delivery temporarily suspended: connect to mx1\.dead\.test')
        r = relay.cli('queue', 'hold', ids['held'])
        self.assertEqual(r.returncode, 0, r.stderr)
        for rcpt in ('a@ok.test', 'b@ok.test', 'c@clear.test'):
            qid, _ = self.send(relay, SENDER, [rcpt])
            self.wait_gone(relay, qid)
        self.sent_line(relay, '.*', 'a@ok.test', 'mx1.ok.test', '127.0.0.91',
                       tls='untrusted')
        self.sent_line(relay, '.*', 'c@clear.test', 'mx1.clear.test', '127.0.0.92',
                       tls='none')
        return ids, relay.mailq_json()

    def check_screen(self, relay, text, ids, mailq, running):
        s = parse_screen(text)
        self.assertTrue(text.startswith('tlsrelay status of relay.test at '), text)
        if running:
            self.assertRegex(s['relay'], r'^running, pid %d, up (\d+[dhms] ?)+ \(since '
                             r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)$' % relay.proc.pid)
        else:
            self.assertEqual(s['relay'], 'not running', text)
        # Queue by state: exactly, with mailq's sizes.
        by_id = {m['queue_id']: m for m in mailq}
        deferred = [ids[k] for k in ('dead1', 'ref1', 'ref2', 'dead2')]
        self.assertEqual(sorted(by_id), sorted(deferred + [ids['held']]))
        dbytes = sum(by_id[i]['message_size'] for i in deferred)
        hbytes = by_id[ids['held']]['message_size']
        self.assertEqual(s['queue'], {'incoming': (0, 0), 'active': (0, 0),
                                      'deferred': (4, dbytes), 'hold': (1, hbytes),
                                      'total': (5, dbytes + hbytes)}, text)
        self.assertRegex(s['oldest'], r'^%s, (\d+[dhms] ?)+ old \(arrived ' % ids['dead1'])
        # The last hour, as the delivery lines say.
        want = self.hour_from_log(relay)
        self.assertEqual(want['sent']['untrusted'], 2)
        self.assertEqual(want['sent']['none'], 1)
        self.assertEqual(want['deferred']['no-conn'], 2)
        self.assertEqual(want['deferred']['untrusted'], 4)
        for st in ('sent', 'deferred', 'bounced'):
            got = dict(s['hour'][st])
            self.assertEqual(got.pop('total'), sum(want[st].values()), text)
            self.assertEqual(got, want[st], '%s row:\n%s' % (st, text))
        # Failing destinations: worst first, reasons as mailq has them.
        reason = {m['queue_id']: m['recipients'][0]['delay_reason'] for m in mailq}
        self.assertEqual(s['failing_head'], '3 destinations and reasons, worst first')
        got = [(f[0], f[1], f[3], f[4]) for f in s['failing']]
        self.assertEqual(got, [
            (2, 2 + 1, 'refuse.test', reason[ids['ref1']]),
            (1, 1, 'dead.test', reason[ids['dead1']]),
            (1, 1, 'dead.test', reason[ids['dead2']]),
        ], text)
        self.assertEqual(reason[ids['ref1']], reason[ids['ref2']])
        self.assertTrue(reason[ids['dead2']].startswith('delivery temporarily suspended: '))
        ages = [f[2] for f in s['failing']]
        self.assertGreaterEqual(ages[1], ages[2] + 1, text)  # dead1 is older
        self.assertLess(max(ages), 120, text)

    def check_json(self, relay, ids, running):
        j = json.loads(self.status(relay, '--json'))
        self.assertEqual(j['running'], running)
        if running:
            self.assertEqual(j['pid'], relay.proc.pid)
            self.assertGreaterEqual(j['uptime'], 0)
        self.assertEqual(j['queue']['deferred']['messages'], 4)
        self.assertEqual(j['queue']['hold']['messages'], 1)
        self.assertEqual(j['oldest']['queue_id'], ids['dead1'])
        self.assertEqual(j['last_hour']['sent']['untrusted'], 2)
        self.assertEqual(j['last_hour']['deferred']['no-connection'], 2)
        # Eight sessions from 127.0.0.1 (mynetworks), one message each; the
        # last one's commit carried the count of its own session.
        self.assertEqual(j['inbound_last_hour'],
                         {'allowed': {'network': 8, 'certificate': 0, 'auth': 0},
                          'refused': 0, 'auth_failed': 0})
        self.assertEqual([(f['domain'], f['messages'], f['recipients']) for f in j['failing']],
                         [('refuse.test', 2, 3), ('dead.test', 1, 1), ('dead.test', 1, 1)])

    def second_relay_refused(self, relay):
        """Another serve on the same queue (another listen port) must stop at
        once with a clear line, not run beside the first."""
        other = harness.Relay(self, start=False, queue_dir=relay.queue_dir,
                              **{k: v for k, v in relay.keys.items()
                                 if k not in ('listen', 'queue_dir', 'dns_unbound_config')})
        p = subprocess.Popen([harness.BIN, 'serve', '-c', other.conf],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=harness.base_env())
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail('a second relay on the same queue_dir kept running')
        err = err.decode('utf-8', 'replace')
        harness.check_sanitizer(err, 'second serve')
        self.assertEqual(p.returncode, 1, err)
        self.assertIn('queue %s is in use by another relay (pid %d); not starting'
                      % (relay.queue_dir, relay.proc.pid), err)

    def test_status_screen(self):
        self.mx('127.0.0.91', 'mx1.ok.test')
        self.mx('127.0.0.92', 'mx1.clear.test', tls=False)
        self.mx('127.0.0.93', 'mx1.refuse.test',
                rcpt_reply={a: TEMPFAIL for a in REFUSED})
        relay = self.relay(default_tls_level='may', retry_min='1h', retry_max='2h')
        first = parse_screen(self.status(relay))
        self.assertRegex(first['relay'], r'^running, pid %d, up ' % relay.proc.pid)
        self.assertEqual(first['queue']['total'], (0, 0))
        self.assertEqual(first['oldest'], 'none (the queue is empty)')
        self.assertEqual(first['failing_head'], 'none')

        ids, mailq = self.fill(relay)
        self.check_screen(relay, self.status(relay), ids, mailq, True)
        self.check_json(relay, ids, True)
        self.second_relay_refused(relay)
        self.assertTrue(relay.alive())

        relay.stop()
        self.check_screen(relay, self.status(relay), ids, mailq, False)
        self.check_json(relay, ids, False)


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
