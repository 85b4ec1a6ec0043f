"""Hardening of the SMTP listener against abuse by real clients: mail
loops (hopcount_limit), connection floods (per-client limit and the
mynetworks reserve), the exact message size limit and address-literal
recipients.  The memory bound for large messages is test_spill.py."""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (RelayTestCase, make_message, sized_message,  # noqa: E402
                     smtp_send)

harness.require_binary()


def looped_message(hops):
    """A message that already carries `hops` Received: fields, some folded
    and in other cases, as a loop between MTAs produces."""
    received = []
    for i in range(hops):
        name = ('Received', 'received', 'RECEIVED')[i % 3]
        received.append('%s: from mx%d.loop.test (mx%d.loop.test [127.0.0.%d])'
                        '\r\n\tby mx%d.loop.test; Mon, 1 Jan 2024 00:00:%02d +0000'
                        % (name, i, i, i % 250 + 1, i + 1, i % 60))
    return make_message(subject='loop %d' % hops, extra_headers=received,
                        body='Received: in the body does not count\r\n')


class HopLimit(RelayTestCase):

    def setUp(self):
        self.r = self.relay()

    def test_fifty_received_fields_refused(self):
        code, reply, qid = smtp_send(self.r, 'a@client.test', ['b@dest.test'],
                                     looped_message(50))
        self.assertEqual(code, 554, reply)
        self.assertTrue(reply.startswith(b'5.4.6 too many hops'), reply)
        self.assertIsNone(qid)
        self.assertEqual(self.r.mailq_json(), [])
        self.assertIn('too many hops', self.r.log_text())

    def test_forty_nine_accepted(self):
        code, reply, qid = smtp_send(self.r, 'a@client.test', ['b@dest.test'],
                                     looped_message(49))
        self.assertQueued(code, reply, qid)
        self.assertEqual(self.r.queue_ids(), {qid})

    def test_limit_is_configurable_and_session_goes_on(self):
        r = self.relay(hopcount_limit=3)
        s = r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        s.mail('a@client.test')
        s.rcpt('b@dest.test')
        code, reply = s.data(looped_message(3))
        self.assertEqual(code, 554, reply)
        # The next message in the same session is judged on its own.
        s.mail('a@client.test')
        s.rcpt('b@dest.test')
        code, reply = s.data(looped_message(2))
        self.assertEqual(code, 250, reply)
        self.assertEqual(len(r.mailq_json()), 1)


class SizeBoundary(RelayTestCase):
    """max_message_size counts the client's octets exactly; the room for
    our own Received header no longer goes to the client."""

    def setUp(self):
        self.r = self.relay(max_message_size=100000)

    def test_exact_limit_accepted(self):
        code, reply, qid = smtp_send(self.r, 'a@client.test', ['b@dest.test'],
                                     sized_message(100000))
        self.assertQueued(code, reply, qid)

    def test_one_over_refused(self):
        for size in (100001, 100700):
            code, reply, qid = smtp_send(self.r, 'a@client.test',
                                         ['b@dest.test'], sized_message(size))
            self.assertEqual(code, 552, (size, reply))
            self.assertTrue(reply.startswith(b'5.3.4'), reply)
        self.assertEqual(self.r.mailq_json(), [])


class AddressLiterals(RelayTestCase):

    def setUp(self):
        self.r = self.relay()

    def rcpt(self, s, addr):
        return s.docmd('RCPT TO:<%s>' % addr)

    def test_literal_recipients(self):
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        self.assertEqual(s.mail('a@client.test')[0], 250)
        for addr in ('u@[127.0.4.100]', 'u@[IPv6:::1]', 'u@[ipv6:2001:db8::1]'):
            code, reply = self.rcpt(s, addr)
            self.assertEqual(code, 550, (addr, reply))
            self.assertEqual(reply.decode(), '5.7.1 <%s>: address literals are '
                             'not relayed' % addr)
        for addr in ('u@[300.1.1.1]', 'u@[1.2.3]', 'u@[::1]', 'u@[IPv6:1::2::3]',
                     'u@[x-tag:foo]'):
            code, reply = self.rcpt(s, addr)
            self.assertEqual(code, 501, (addr, reply))
            self.assertTrue(reply.startswith(b'5.1.3 Bad recipient address '
                                             b'syntax'), reply)
        # A name still works, and no recipient above was kept.
        self.assertEqual(self.rcpt(s, 'u@dest.test')[0], 250)
        code, reply = s.data(make_message())
        self.assertEqual(code, 250, reply)
        m = self.r.mailq_json()
        self.assertEqual(len(m), 1)
        self.assertEqual([x['address'] for x in m[0]['recipients']],
                         ['u@dest.test'])

    def test_literal_sender_accepted(self):
        for sender in ('a@[192.0.2.1]', 'a@[IPv6:2001:db8::1]'):
            code, reply, qid = smtp_send(self.r, sender, ['b@dest.test'],
                                         make_message())
            self.assertQueued(code, reply, qid)
            self.assertEqual(self.r.find(qid)['sender'], sender)
        s = self.r.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        code, reply = s.docmd('MAIL FROM:<a@[300.1.1.1]>')
        self.assertEqual(code, 501, reply)


def connect_from(port, source):
    """A connection from `source` (a 127.0.0.x address); returns
    (socket, first reply line)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(('127.0.0.1', port))
    f = sock.makefile('rb')
    line = f.readline()
    f.close()
    return sock, line


class ConnectionLimits(RelayTestCase):
    """mynetworks = 127.0.0.1/32; every other 127.0.0.x is outside."""

    MAX = 20          # smtpd_max_connections
    PER_CLIENT = 5    # smtpd_client_connection_count_limit
    # smtpd_mynetworks_reserve 10% -> 18 slots for clients outside

    def setUp(self):
        self.r = self.relay(mynetworks='127.0.0.1/32',
                            smtpd_max_connections=self.MAX,
                            smtpd_client_connection_count_limit=self.PER_CLIENT)
        self.socks = []
        self.addCleanup(self.close_all)

    def close_all(self):
        for s in self.socks:
            s.close()

    def flood(self, source, n):
        lines = []
        for _ in range(n):
            sock, line = connect_from(self.r.port, source)
            self.socks.append(sock)
            lines.append(line)
        return lines

    def test_one_client_cannot_take_every_slot(self):
        lines = self.flood('127.0.0.9', self.MAX)
        ok = [ln for ln in lines if ln.startswith(b'220 ')]
        refused = [ln for ln in lines if ln.startswith(b'421 ')]
        self.assertEqual(len(ok), self.PER_CLIENT, lines)
        self.assertEqual(len(refused), self.MAX - self.PER_CLIENT, lines)
        self.assertEqual(refused[0].rstrip(),
                         b'421 4.7.0 relay.test Error: too many connections '
                         b'from 127.0.0.9')
        # Another client outside mynetworks still gets in.
        sock, line = connect_from(self.r.port, '127.0.0.10')
        self.socks.append(sock)
        self.assertTrue(line.startswith(b'220 '), line)
        self.assertIn('Connection concurrency limit exceeded', self.r.log_text())

    def test_outside_flood_leaves_room_for_mynetworks(self):
        # Four each from 127.0.0.20..: under the per-client limit, so only
        # the total for clients outside mynetworks stops them.
        lines = []
        for i in range(6):
            lines += self.flood('127.0.0.%d' % (20 + i), 4)
        ok = [ln for ln in lines if ln.startswith(b'220 ')]
        self.assertEqual(len(ok), 18, lines)
        self.assertTrue(all(ln.startswith(b'421 4.7.0') for ln in lines[18:]),
                        lines)
        # 127.0.0.1 is in mynetworks: it connects and relays.
        code, reply, qid = smtp_send(self.r, 'insider@client.test',
                                     ['ok@dest.test'], make_message(),
                                     source_address=('127.0.0.1', 0))
        self.assertQueued(code, reply, qid)
        # Once outside clients leave, their slots are free again.
        for s in self.socks[:3]:
            s.close()
        self.socks = self.socks[3:]
        got = harness.wait_for(lambda: self.try_connect('127.0.0.40'), 5)
        self.assertTrue(got, 'no slot freed after 3 clients left')

    def try_connect(self, source):
        sock, line = connect_from(self.r.port, source)
        self.socks.append(sock)
        return line.startswith(b'220 ')

    def test_mynetworks_exempt_from_per_client_limit(self):
        lines = self.flood('127.0.0.1', self.PER_CLIENT + 3)
        self.assertTrue(all(ln.startswith(b'220 ') for ln in lines), lines)


if __name__ == '__main__':
    unittest.main()
