"""Does DNSSEC validation work through the configured DNS servers?

At start the relay asks for the DNSKEY records of its trust anchor's zone
(the root, or here `test.`, the owner of the first record in
dns_trust_anchor_file) and logs one line: that validation works, or, when
it does not, which servers it went through and what failed.  `policy show`
prints the same check as its DNSSEC line.  Mail under a failing anchor is
deferred with a reason that starts "DNSSEC validation failed".

Real Knot DNS servers (dnszone.py) stand in for the resolvers a new user
meets: the signed zone through a stub (works), the same with a wrong trust
anchor (bogus), an unsigned copy of the zone as forwarder (a resolver that
strips DNSSEC records: "no DNSKEY rrset"), and a server that serves another
zone only (SERVFAIL).  No query leaves the machine: dns_servers is always a
loopback address.
"""

import os
import re
import sys
import tempfile
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnszone  # noqa: E402
import harness  # noqa: E402

harness.require_binary()
dnszone.require_knot()

RECORDS = [
    ('mx.test.', 'A', '127.0.0.5'),
    ('dest.test.', 'MX', '10 mx.test.'),
]
FAIL_LINE = 'DNSSEC validation does not work through'
LOG_WAIT = 15.0
CHECK_LINE_RE = re.compile(r'DNSSEC validation (works|does not work) through')


class DnssecCheck(unittest.TestCase):
    zone = None

    @classmethod
    def setUpClass(cls):
        cls.zone = dnszone.DnsZone(RECORDS)
        cls.addClassCleanup(cls.zone.close)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-dnssec-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    # -- helpers ----------------------------------------------------------

    def plain_unbound_conf(self):
        """An unbound.conf without stub zones: every query goes to
        dns_servers (test. is a local NXDOMAIN zone unless told otherwise;
        127.0.0.1 is skipped unless told otherwise)."""
        path = os.path.join(self.dir, 'plain-unbound.conf')
        with open(path, 'w') as f:
            f.write('server:\n    local-zone: "test." nodefault\n'
                    '    local-zone: "other." nodefault\n'
                    '    do-not-query-localhost: no\n')
        return path

    def relay(self, **keys):
        return harness.Relay(self, **keys)

    def servers(self, relay):
        """What the check says the queries went through."""
        return '%s (dns_servers, dns_unbound_config = %s)' % (
            relay.keys['dns_servers'], relay.keys['dns_unbound_config'])

    def wait_check_line(self, relay):
        m = relay.wait_log(CHECK_LINE_RE.pattern + ' .*$', LOG_WAIT)
        self.assertTrue(m, 'no DNSSEC check line in the log:\n%s'
                        % relay.log_text())
        return m.group(0)

    def policy_show_dnssec(self, relay):
        r = relay.cli('policy', 'show', 'dest.test')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'domain: dest.test')
        dnssec = [l for l in lines if l.startswith('DNSSEC: ')]
        self.assertEqual(len(dnssec), 1, r.stdout)
        self.assertEqual(lines[-1], dnssec[0])
        return dnssec[0]

    def deferral_reason(self, relay, rcpt):
        msg = harness.make_message(subject='dnssec check')
        code, reply, qid = harness.smtp_send(
            relay, 'alice@client.test', [rcpt], msg)
        self.assertEqual(code, 250, reply)

        def reason():
            m = relay.find(qid)
            if m and m['recipients'] and m['recipients'][0].get('delay_reason'):
                return m['recipients'][0]['delay_reason']
            return None
        why = harness.wait_for(reason, LOG_WAIT)
        self.assertTrue(why, relay.mailq_text() + relay.log_text())
        return why

    def assert_one_failure(self, relay, must_have):
        line = self.wait_check_line(relay)
        self.assertIn('warning: ' + FAIL_LINE + ' ' + self.servers(relay)
                      + ': name=test type=DNSKEY: ', relay.log_text())
        for text in must_have:
            self.assertIn(text, line)
        self.assertEqual(len(CHECK_LINE_RE.findall(relay.log_text())), 1,
                         relay.log_text())
        return line

    # -- the cases --------------------------------------------------------

    def test_start_says_validation_works(self):
        relay = self.relay(**self.zone.relay_keys())
        line = self.wait_check_line(relay)
        self.assertEqual(line, 'DNSSEC validation works through %s: the '
                         'DNSKEY records of test validate'
                         % self.servers(relay))
        self.assertNotIn(FAIL_LINE, relay.log_text())
        self.assertEqual(self.policy_show_dnssec(relay),
                         'DNSSEC: validation works through %s: the DNSKEY '
                         'records of test validate' % self.servers(relay))

    def test_wrong_trust_anchor(self):
        bad = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad)
        relay = self.relay(dns_unbound_config=ub, dns_trust_anchor_file=bad)
        line = self.assert_one_failure(relay, [
            'DNSSEC validation failed: validation failure <test. DNSKEY IN>: '
            'DS hash mismatches key from 127.0.0.1',
            'mail to domains under test is deferred until it does; see '
            'README "DNS" (dns_servers = recursive)'])
        self.assertTrue(line.endswith('(dns_servers = recursive)'), line)
        # Mail under the anchor is deferred, and the reason says why first.
        why = self.deferral_reason(relay, 'bob@dest.test')
        self.assertTrue(why.startswith('DNSSEC validation failed for '
                                       'name=dest.test type=MX: validation '
                                       'failure <dest.test. MX IN>'), why)
        self.assertNotIn('not found', why)
        self.assertIn('(DNSSEC validation failed for name=dest.test type=MX',
                      relay.mailq_text())
        self.assertTrue(self.policy_show_dnssec(relay).startswith(
            'DNSSEC: validation FAILS through %s: name=test type=DNSKEY: '
            'DNSSEC validation failed: validation failure <test. DNSKEY IN>: '
            'DS hash mismatches key from 127.0.0.1' % self.servers(relay)))
        self.assertTrue(relay.alive())

    def test_recursive_is_named(self):
        """dns_servers = recursive: the line says so, and does not advise
        it again.  The zone is reached through the stub zone of
        dns_unbound_config, so nothing leaves the machine."""
        relay = self.relay(dns_servers='recursive', **self.zone.relay_keys())
        self.assertEqual(self.wait_check_line(relay),
                         'DNSSEC validation works through the root name '
                         'servers (dns_servers = recursive, dns_unbound_config'
                         ' = %s): the DNSKEY records of test validate'
                         % relay.keys['dns_unbound_config'])
        bad = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad)
        relay = self.relay(dns_servers='recursive', dns_unbound_config=ub,
                           dns_trust_anchor_file=bad)
        line = self.wait_check_line(relay)
        self.assertTrue(line.startswith(
            'DNSSEC validation does not work through the root name servers '
            '(dns_servers = recursive, dns_unbound_config = %s): name=test '
            'type=DNSKEY: DNSSEC validation failed: ' % ub), line)
        self.assertTrue(line.endswith('is deferred until it does; see README '
                                      '"DNS"'), line)

    def test_forwarder_that_strips_dnssec(self):
        """The issue's case: a resolver that answers, but without DNSSEC
        records (here: an unsigned copy of the zone), for a relay that
        holds the signed zone's anchor."""
        with dnszone.DnsZone(RECORDS, signed=False) as stripped:
            relay = self.relay(
                dns_servers='127.0.0.1@%d' % stripped.port,
                dns_unbound_config=self.plain_unbound_conf(),
                dns_trust_anchor_file=self.zone.ta_file)
            self.assert_one_failure(relay, [
                'DNSSEC validation failed: validation failure <test. DNSKEY '
                'IN>: no DNSKEY rrset from 127.0.0.1 for trust anchor test.',
                'see README "DNS" (dns_servers = recursive)'])
            why = self.deferral_reason(relay, 'bob@dest.test')
            self.assertRegex(why, r'^DNSSEC validation failed for '
                             r'name=dest\.test type=MX: .*no DNSKEY rrset')
            self.assertIn('DNSSEC: validation FAILS through 127.0.0.1@%d '
                          % stripped.port, self.policy_show_dnssec(relay))

    def test_forwarder_without_the_anchor_zone(self):
        """A server that is not authoritative for test. (it serves other.
        only) answers the DNSKEY question with an error."""
        with dnszone.DnsZone([('a.other.', 'A', '127.0.0.5')],
                             zone='other.') as other:
            relay = self.relay(
                dns_servers='127.0.0.1@%d' % other.port,
                dns_unbound_config=self.plain_unbound_conf(),
                dns_trust_anchor_file=self.zone.ta_file)
            line = self.assert_one_failure(relay, ['no answer (SERVFAIL)'])
            self.assertIn('through 127.0.0.1@%d (dns_servers' % other.port,
                          line)
            self.assertEqual(
                self.policy_show_dnssec(relay),
                'DNSSEC: validation FAILS through %s: name=test type=DNSKEY: '
                'no answer (SERVFAIL)' % self.servers(relay))

    def test_start_does_not_wait_for_the_check(self):
        """Queries to a port nobody answers take libunbound about 17 s to
        give up; the relay takes mail meanwhile, and stops at once."""
        relay = self.relay(dns_unbound_config=self.plain_unbound_conf(),
                           dns_trust_anchor_file=self.zone.ta_file)
        code, reply, qid = harness.smtp_send(
            relay, 'alice@client.test', ['bob@dest.test'],
            harness.make_message(subject='early'))
        self.assertEqual(code, 250, reply)
        self.assertNotRegex(relay.log_text(), CHECK_LINE_RE)
        self.assertEqual(relay.stop(), 0)
        self.assertNotRegex(relay.log_text(), CHECK_LINE_RE)


if __name__ == '__main__':
    unittest.main(verbosity=2)
