"""Destinations that turn the relay against itself or others: mail loops
(an MX that is the relay itself), fan-out (a domain listing hundreds of
addresses) and starvation (tarpit MX hosts holding every session).

Each test reproduces an attack with real processes: the relay, a signed
Knot zone under the test's control, aiosmtpd MX hosts and hostile TCP
peers (peers_tcp.py) on 127.0.0.0/8.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_delivery  # noqa: E402
from peers_tcp import TcpPeers  # noqa: E402
from test_delivery import DeliveryBase  # noqa: E402

ACCEPT_RE = re.compile(r': from=<[^>]*>, size=\d+, nrcpt=\d+', re.M)


def accepted_count(relay):
    """Messages the relay's SMTP listener accepted (one log line each)."""
    return len(ACCEPT_RE.findall(relay.log_text()))


class Loops(DeliveryBase):
    """An MX that resolves to the relay's own listener on remote_port."""

    RECORDS = [
        ('loop.test.', 'MX', '10 mx.loop.test.'),
        ('mx.loop.test.', 'A', '127.0.0.1'),
        ('zero.test.', 'MX', '10 mx.zero.test.'),
        ('mx.zero.test.', 'A', '0.0.0.0'),
        ('lh.test.', 'MX', '10 localhost.'),
        # We are the backup: the primary is down, so the mail waits; it is
        # never handed to ourselves.
        ('backup.test.', 'MX', '10 mx1.backup.test.'),
        ('backup.test.', 'MX', '20 mx.loop.test.'),
        ('mx1.backup.test.', 'A', '127.0.0.61'),
        # We are the best MX: bounce, and the worse MX gets nothing.
        ('pself.test.', 'MX', '10 mx.loop.test.'),
        ('pself.test.', 'MX', '20 mx1.pself.test.'),
        ('mx1.pself.test.', 'A', '127.0.0.62'),
        # We are the backup and the primary's name does not resolve: the
        # mail waits (Postfix), it is not bounced as a loop.
        ('bk3.test.', 'MX', '10 nx.bk3.test.'),
        ('bk3.test.', 'MX', '20 mx.loop.test.'),
    ]
    HOSTS = ['127.0.0.1', '127.0.0.61', '127.0.0.62']

    def self_relay(self, **keys):
        """A relay whose remote_port is its own listening port."""
        r = self.relay(start=False, **keys)
        r.keys['remote_port'] = str(r.port)
        harness.write_config(r.conf, r.keys)
        r.start()
        return r

    def relay(self, start=True, **keys):
        k = dict(self.zone.relay_keys())
        k.update({'retry_min': '1h', 'retry_max': '1h'})
        k.update(keys)
        return harness.Relay(self, start=start, **k)

    def mx_at(self, relay, host, hostname):
        """An MX on host at the relay's remote_port (its own port here)."""
        m = test_delivery.MX(self)
        m.start(host, relay.port, hostname=hostname)
        return m

    def assert_loop_bounced(self, relay, rcpt, domain):
        qid, _ = self.send(relay, 'sender@nowhere.invalid', [rcpt])
        self.wait_log(relay, r'%s: to=<%s>, relay=none, delay=[0-9.]+, dsn=5\.4\.6, '
                      r'status=bounced \(mail for %s loops back to myself\)'
                      % (qid, re.escape(rcpt), re.escape(domain)))
        # The relay never received its own mail: one acceptance only,
        # also a while later (the old relay made thousands of copies).
        time.sleep(1.0)
        self.assertEqual(accepted_count(relay), 1, relay.log_text()[-3000:])
        return qid

    def test_mx_is_our_listen_address(self):
        relay = self.self_relay()
        self.assert_loop_bounced(relay, 'u@loop.test', 'loop.test')

    def test_mx_address_unspecified(self):
        relay = self.self_relay()
        self.assert_loop_bounced(relay, 'u@zero.test', 'zero.test')

    def test_mx_localhost(self):
        relay = self.self_relay()
        self.assert_loop_bounced(relay, 'u@lh.test', 'lh.test')

    def test_we_are_the_best_mx(self):
        relay = self.self_relay(default_tls_level='may')
        mx = self.mx_at(relay, '127.0.0.62', 'mx1.pself.test')
        self.assert_loop_bounced(relay, 'u@pself.test', 'pself.test')
        self.assertEqual(mx.messages(), [])

    def test_backup_with_unresolvable_primary_defers(self):
        relay = self.self_relay()
        qid, _ = self.send(relay, 'sender@nowhere.invalid', ['u@bk3.test'])
        m = self.wait_deferred(relay, qid)
        self.assertNotIn('loops back', m['recipients'][0]['delay_reason'])
        self.assertEqual(accepted_count(relay), 1)

    def test_we_are_a_backup_mx(self):
        relay = self.self_relay(default_tls_level='may')
        qid, msg_id = self.send(relay, 'sender@nowhere.invalid', ['u@backup.test'])
        m = self.wait_deferred(relay, qid)
        reason = m['recipients'][0]['delay_reason']
        self.assertIn('127.0.0.61', reason)
        time.sleep(1.0)
        self.assertEqual(accepted_count(relay), 1, relay.log_text()[-3000:])
        # Once the primary is up, the mail goes there.
        mx = self.mx_at(relay, '127.0.0.61', 'mx1.backup.test')
        relay.cli('queue', 'flush')
        self.messages_with(mx, msg_id)
        self.wait_gone(relay, qid)


class QueuedChecks(DeliveryBase):
    """What the listener refuses, checked again on queued mail (mail put
    in by `tlsrelay sendmail`, or by an older version)."""

    RECORDS = [('hops.test.', 'MX', '10 mx.hops.test.'),
               ('mx.hops.test.', 'A', '127.0.0.63')]
    HOSTS = ['127.0.0.63']

    def inject(self, relay, nhops, rcpt):
        msg = ''.join('Received: from h%d.example by h%d.example; '
                      'Mon, 1 Jan 2024 00:00:00 +0000\n' % (i, i + 1) for i in range(nhops))
        msg += 'Subject: hops %d\nMessage-ID: <hops%d@client.test>\n\nbody\n' % (nhops, nhops)
        p = relay.cli('sendmail', '-f', 'sender@nowhere.invalid', rcpt, input=msg)
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = [m['queue_id'] for m in relay.mailq_json()
               if m['recipients'] and m['recipients'][0]['address'] == rcpt]
        return ids

    def test_queued_message_with_too_many_hops_bounces(self):
        mx = self.mx('127.0.0.63', 'mx.hops.test', tls=False)
        relay = self.relay(default_tls_level='may', retry_min='1h', retry_max='1h')
        self.inject(relay, 50, 'loop@hops.test')
        self.wait_log(relay, r'to=<loop@hops\.test>, relay=none, delay=[0-9.]+, dsn=5\.4\.6, '
                      r'status=bounced \(too many hops \(51 Received: header fields\)\)')
        # 49 and sendmail's own make 50: that goes through, as at the listener.
        self.inject(relay, 49, 'ok49@hops.test')
        self.messages_with(mx, '<hops49@client.test>')
        # Fewer hops go through.
        self.inject(relay, 10, 'ok@hops.test')
        found = self.messages_with(mx, '<hops10@client.test>')
        self.assertEqual(len(found), 1)
        self.assertFalse([c for e, c in mx.messages() if b'hops50' in c])

    def test_sendmail_refuses_address_literals(self):
        relay = self.relay()
        p = relay.cli('sendmail', '-f', 's@client.test', 'u@[127.0.4.100]',
                      input='Subject: x\n\nbody\n')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('address literals are not relayed', p.stderr)
        self.assertEqual(relay.mailq_json(), [])


class IdnPolicy(DeliveryBase):
    """A policy entry (written, as in Postfix, in A-labels) applies to mail
    addressed in U-labels: no downgrade for internationalised domains."""

    RECORDS = [('xn--bcher-kva.test.', 'MX', '10 mx.xn--bcher-kva.test.'),
               ('mx.xn--bcher-kva.test.', 'A', '127.0.0.64')]
    HOSTS = ['127.0.0.64']

    def test_a_label_entry_applies_to_u_label_mail(self):
        mx = self.mx('127.0.0.64', 'mx.xn--bcher-kva.test', tls=False)
        relay = self.relay(default_tls_level='may', retry_min='1h', retry_max='1h')
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('xn--bcher-kva.test encrypt\n')
        relay.stop()
        relay.start()
        rcpt = 'u@b\u00fccher.test'
        data, _ = test_delivery.message('s@client.test', [rcpt])
        code, reply, qid = harness.smtp_send(relay, 's@client.test', [rcpt], data,
                                             mail_options=['SMTPUTF8'])
        self.assertEqual(code, 250, reply)
        m = self.wait_deferred(relay, qid)
        # The MX offers no STARTTLS: under `encrypt` nothing is sent (the
        # old relay could not look the name up, or would have used `may`).
        self.assertIn('TLS is required, but was not offered by host mx.xn--bcher-kva.test',
                      m['recipients'][0]['delay_reason'])
        self.assertEqual(mx.messages(), [])
        # Without the entry, the same mail goes (under `may`, in clear).
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('other.test encrypt\n')
        relay.cli('queue', 'flush')
        self.assertTrue(harness.wait_for(lambda: mx.messages(), 15), relay.log_text()[-2000:])


def fan_records(domain, net, nmx, naddr):
    recs = []
    for i in range(nmx):
        host = 'mx%d.%s' % (i, domain)
        recs.append((domain + '.', 'MX', '%d %s.' % (10 + i, host)))
        for k in range(naddr):
            recs.append((host + '.', 'A', '127.%d.%d.%d' % (net, i, k + 1)))
    return recs


def fan_addrs(net, nmx, naddr):
    return ['127.%d.%d.%d' % (net, i, k + 1) for i in range(nmx) for k in range(naddr)]


class FanOut(DeliveryBase):
    """32 MX names of 16 addresses each: one delivery round may touch only
    smtp_mx_address_limit addresses and smtp_mx_session_limit hosts that
    answer."""

    RECORDS = (fan_records('fan.test', 21, 32, 16) +
               fan_records('fan2.test', 22, 8, 4))
    HOSTS = ['127.21.0.1']

    def relay(self, **keys):
        k = dict(self.zone.relay_keys())
        k.update({'remote_port': self.port, 'retry_min': '1h', 'retry_max': '1h'})
        k.update(keys)
        return harness.Relay(self, **k)

    def test_address_limit(self):
        peers = TcpPeers(self, fan_addrs(21, 32, 16), self.port, mode='close')
        relay = self.relay()
        qid, _ = self.send(relay, 'sender@nowhere.invalid', ['u@fan.test'])
        self.wait_deferred(relay, qid, timeout=30)
        time.sleep(1.0)
        # Postfix's smtp_mx_address_limit = 5 (the old relay: 512).
        self.assertEqual(peers.total(), 5, relay.log_text()[-2000:])

    def test_address_limit_configured(self):
        peers = TcpPeers(self, fan_addrs(21, 32, 16), self.port, mode='close')
        relay = self.relay(smtp_mx_address_limit=3)
        qid, _ = self.send(relay, 'sender@nowhere.invalid', ['u@fan.test'])
        self.wait_deferred(relay, qid, timeout=30)
        time.sleep(1.0)
        self.assertEqual(peers.total(), 3)

    def test_session_limit(self):
        # Every host greets and answers EHLO but offers no STARTTLS, which
        # `encrypt` requires: each is a session that failed.
        peers = TcpPeers(self, fan_addrs(22, 8, 4), self.port, mode='no-tls')
        relay = self.relay(default_tls_level='encrypt')
        qid, _ = self.send(relay, 'sender@nowhere.invalid', ['u@fan2.test'])
        m = self.wait_deferred(relay, qid, timeout=30)
        self.assertIn('TLS is required', m['recipients'][0]['delay_reason'])
        time.sleep(1.0)
        # Postfix's smtp_mx_session_limit = 2 (the old relay: 32).
        self.assertEqual(peers.total(), 2, relay.log_text()[-2000:])


class Starvation(DeliveryBase):
    """Tarpit destinations must not keep a healthy one waiting."""

    NTARPIT = 5
    RECORDS = ([('tar%d.test.' % i, 'MX', '10 mx.tar%d.test.' % i) for i in range(5)] +
               [('mx.tar%d.test.' % i, 'A', '127.0.0.%d' % (70 + i)) for i in range(5)] +
               [('healthy.test.', 'MX', '10 mx.healthy.test.'),
                ('mx.healthy.test.', 'A', '127.0.0.80')])
    HOSTS = ['127.0.0.%d' % (70 + i) for i in range(5)] + ['127.0.0.80']

    def relay(self, **keys):
        k = dict(self.zone.relay_keys())
        k.update({'remote_port': self.port, 'retry_min': '1h', 'retry_max': '1h',
                  'default_tls_level': 'may'})
        k.update(keys)
        return harness.Relay(self, **k)

    def flood(self, relay, per_domain):
        data, _ = test_delivery.message('s@client.test', ['x@tar.test'])
        s = relay.smtp()
        try:
            s.ehlo()
            for i in range(self.NTARPIT):
                for n in range(per_domain):
                    s.sendmail('s@client.test', ['u%d@tar%d.test' % (n, i)], data)
            s.quit()
        finally:
            s.close()

    def healthy_delivered_within(self, relay, seconds):
        mx = self.mx('127.0.0.80', 'mx.healthy.test', tls=False)
        t0 = time.monotonic()
        qid, msg_id = self.send(relay, 's@client.test', ['ok@healthy.test'])
        self.messages_with(mx, msg_id, timeout=seconds)
        return time.monotonic() - t0

    def test_tarpits_that_never_greet(self):
        peers = TcpPeers(self, self.HOSTS[:-1], self.port, mode='tarpit')
        relay = self.relay()
        self.flood(relay, 25)
        # The tarpits take what the feedback window gives them (5 each),
        # not all 100 outbound sessions (the old relay: 100, and the
        # healthy message waited for the 300 s greeting timeout).
        self.assertTrue(harness.wait_for(lambda: peers.open_now() >= 10, 10))
        took = self.healthy_delivered_within(relay, 5)
        self.assertLessEqual(peers.open_now(), 25)
        self.assertLess(took, 5)

    def test_tarpits_cannot_take_every_slot(self):
        # Fewer slots than 5 tarpit domains x the initial window: while the
        # relay is more than half busy, a destination none of whose hosts
        # has answered gets one session, so slots stay free for the others.
        peers = TcpPeers(self, self.HOSTS[:-1], self.port, mode='tarpit')
        relay = self.relay(smtp_max_connections=20)
        self.flood(relay, 25)
        self.assertTrue(harness.wait_for(lambda: peers.open_now() >= 10, 10))
        time.sleep(1.0)
        held = peers.open_now()
        self.assertLess(held, 20)  # the old relay: all 20
        took = self.healthy_delivered_within(relay, 5)
        self.assertLess(took, 5)

    def test_tarpits_that_churn(self):
        # Hosts that close after a second, and few session slots: a freed
        # slot goes to the destination that waited longest, and a
        # destination whose hosts all failed is suspended.
        peers = TcpPeers(self, self.HOSTS[:-1], self.port, mode='close-after', delay=1.0)
        relay = self.relay(smtp_max_connections=10)
        self.flood(relay, 10)
        harness.wait_for(lambda: peers.open_now() >= 10, 10)
        took = self.healthy_delivered_within(relay, 6)
        self.assertLess(took, 6)
        # Every tarpit domain ends up suspended after its failed round.
        for i in range(self.NTARPIT):
            self.wait_log(relay, r'tar%d\.test: delivery temporarily suspended for '
                          r'3600s: lost connection with mx\.tar%d\.test' % (i, i))
        time.sleep(1.5)
        before = peers.total()
        # The old relay: thousands of connections in the same time.
        self.assertLess(before, 60)
        # New mail for a suspended destination is deferred at once, with
        # the reason in mailq, and no connection is made.
        qid, _ = self.send(relay, 's@client.test', ['new@tar3.test'])
        m = self.wait_deferred(relay, qid, timeout=5)
        self.assertRegex(m['recipients'][0]['delay_reason'],
                         r'^delivery temporarily suspended: lost connection with '
                         r'mx\.tar3\.test\[127\.0\.0\.73\] while receiving the initial '
                         r'server greeting$')
        self.assertIn('delivery temporarily suspended', relay.mailq_text())
        time.sleep(1.0)
        self.assertEqual(peers.total(), before, 'connections went on to dead destinations')
        # `queue flush` ends the suspension: the hosts are tried again.
        relay.cli('queue', 'flush')
        self.assertTrue(harness.wait_for(lambda: peers.total() > before, 5))


if __name__ == '__main__':
    test_delivery.require_peers()
    unittest.main(verbosity=2)
