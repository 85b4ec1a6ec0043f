"""SNI as Postfix sends it: the TLS policy attribute `servername=` decides
the server name in the relay's ClientHello, and without it none is sent.

    (no servername=)          no SNI at all (Postfix's default), under
                              `secure` and under `encrypt`
    servername=hostname       the MX host name in use
    servername=nexthop        the next-hop (recipient) domain
    servername=NAME           that name, literally

The peers are real, as in test_policy_delivery.py: a DNSSEC-signed Knot DNS
zone `test.`, one aiosmtpd MX per destination on 127.0.0.80-89 (tests/
peers/mx.py, which records the SNI name of each TLS session as `tls_sni`),
certificates made with certtool.  Every case observes the message stored at
its MX together with the name recorded for that very session; the MX
serves the same certificate whatever name is asked for, so SNI changes
nothing but what is observed.

`PeerRecordsSni` first proves the recorder itself, with a direct client
that sends a name and one that sends none: without it, a `None` below could
mean "recorder broken" as well as "no SNI".

The relay runs with `tls_loglevel = 2`: after the summary line of each TLS
session (`... TLS connection established to HOST[IP]:PORT: ...`) it logs
`HOST[IP]:PORT: level=LEVEL, chain=N, certificate SHA-256 X, public key
SHA-256 Y` for it (relay/smtpc.c smtpc_tls_check), which each case checks
against the MX certificate's digests.
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
from mxpeer import MX  # noqa: E402
from test_delivery import (common_port, message, msg_id_of,  # noqa: E402
                           require_peers)
from test_policy_delivery import replace_file  # noqa: E402

DELIVERY_TIMEOUT = 10.0   # loopback delivery takes well under a second
SENDER = 'alice@client.test'
LITERAL = 'other.example.test'

# key: (domain, MX host, address, policy entry, cert kind, trust word,
#       expected SNI).  Host names differ from their domains, so that
#       hostname and nexthop can never be mistaken for each other.
CASES = {
    'secure': ('sni-secure.test', 'mx1.sni-secure.test', '127.0.0.80',
               'secure', 'ca', 'Verified', None),
    'encrypt': ('sni-encrypt.test', 'mx1.sni-encrypt.test', '127.0.0.81',
                'encrypt', 'self', 'Untrusted', None),
    'hostname': ('sni-host.test', 'mx1.sni-host.test', '127.0.0.82',
                 'secure servername=hostname', 'ca', 'Verified',
                 'mx1.sni-host.test'),
    'nexthop': ('sni-nexthop.test', 'mx1.sni-nexthop.test', '127.0.0.83',
                'encrypt servername=nexthop', 'self', 'Untrusted',
                'sni-nexthop.test'),
    'literal': ('sni-literal.test', 'mx1.sni-literal.test', '127.0.0.84',
                'encrypt servername=' + LITERAL, 'self', 'Untrusted',
                LITERAL),
}
PROBE_IP = '127.0.0.89'   # PeerRecordsSni's own MX
HOSTS = sorted({c[2] for c in CASES.values()} | {PROBE_IP})


def zone_records():
    recs = []
    for domain, host, ip, *_ in CASES.values():
        recs.append((domain + '.', 'MX', '10 %s.' % host))
        recs.append((host + '.', 'A', ip))
    return recs


FIX = None


class Fixture:
    def __init__(self):
        self.zone = dnszone.DnsZone(zone_records())
        try:
            self.port = common_port(HOSTS)
            self.dir = tempfile.mkdtemp(prefix='tlsrelay-snicert-')
            self.ca = certs.default_ca(self.dir)
            self.cert = {}
            for key, (_, host, _, _, kind, _, _) in CASES.items():
                self.cert[key] = certs.make_cert(
                    self.dir, host, self_signed=(kind == 'self'))
            self.cert['probe'] = certs.make_cert(self.dir, 'mx.probe.test',
                                                 self_signed=True)
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.zone.close()
        finally:
            if getattr(self, 'dir', None):
                shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global FIX
    FIX = Fixture()


def tearDownModule():
    if FIX is not None:
        FIX.close()


class PeerRecordsSni(unittest.TestCase):
    """mx.py's tls_sni, seen from a client whose ClientHello we choose."""

    def session(self, mx, server_hostname, local):
        rcpt = '%s@probe.test' % local
        with harness.RawSMTP(mx.port, host=mx.host, timeout=5.0) as c:
            c.expect(220)
            c.expect_cmd('EHLO client.test', 250)
            c.expect_cmd('STARTTLS', 220)
            c.starttls(server_hostname=server_hostname)
            c.expect_cmd('EHLO client.test', 250)
            c.expect_cmd('MAIL FROM:<%s>' % SENDER, 250)
            c.expect_cmd('RCPT TO:<%s>' % rcpt, 250)
            c.expect_cmd('DATA', 354)
            c.send(b'Subject: sni probe\r\n\r\nhello\r\n.\r\n')
            c.expect(250)
            c.expect_cmd('QUIT', 221)
        for env, _ in mx.wait_messages(1, DELIVERY_TIMEOUT):
            if env['rcpt_tos'] == [rcpt]:
                return env
        self.fail('probe message for %s not stored' % rcpt)

    def test_sni_name_and_none_are_recorded(self):
        c = FIX.cert['probe']
        mx = MX(self)
        mx.start(PROBE_IP, FIX.port, tls_cert=c.cert, tls_key=c.key,
                 hostname='mx.probe.test')
        env = self.session(mx, 'asked.probe.test', 'named')
        self.assertIs(env['tls'], True, env)
        self.assertEqual(env['tls_sni'], 'asked.probe.test', env)
        env = self.session(mx, None, 'anonymous')
        self.assertIs(env['tls'], True, env)
        self.assertIn('tls_sni', env)
        self.assertIsNone(env['tls_sni'], env)
        starttls = [e for e in mx.events() if e['event'] == 'starttls']
        self.assertEqual([e['tls_sni'] for e in starttls],
                         ['asked.probe.test', None], starttls)


class Sni(unittest.TestCase):
    """One relay (tls_loglevel = 2) with one policy entry per case."""

    @classmethod
    def policy_text(cls):
        return ''.join('%-18s %s\n' % (c[0], c[3]) for c in CASES.values())

    @classmethod
    def setUpClass(cls):
        keys = dict(FIX.zone.relay_keys())
        keys.update({'remote_port': FIX.port,
                     # No entry, no delivery: each delivery below proves
                     # that its domain's entry was applied.
                     'default_tls_level': 'dane-only',
                     'tls_ca_file': FIX.ca.cert,
                     'tls_loglevel': 2,
                     'retry_min': '1s', 'retry_max': '2s'})
        relay = harness.Relay(None, start=False, **keys)
        cls.addClassCleanup(relay.close)
        policy = relay.keys['policy_file']
        replace_file(policy, cls.policy_text())
        r = harness.run([harness.BIN, 'policy', 'check', policy],
                        env=harness.base_env())
        if r.returncode != 0:
            raise AssertionError('test policy file is invalid: %s' % r.stderr)
        relay.start()
        cls.relay = relay

    def log_tail(self):
        return self.relay.log_text()[-4000:]

    def deliver(self, key):
        """Start the MX of CASES[key], send one message there and return
        the envelope stored for it (the MX is stopped at cleanup)."""
        domain, host, ip, _, _, _, _ = CASES[key]
        cert = FIX.cert[key]
        mx = MX(self)
        mx.start(ip, FIX.port, hostname=host, tls_cert=cert.cert,
                 tls_key=cert.key)
        rcpt = 'bob@' + domain
        data, mid = message(SENDER, [rcpt], subject='sni ' + key)
        code, reply, qid = harness.smtp_send(self.relay, SENDER, [rcpt], data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)

        def arrived():
            for env, content in mx.messages():
                if msg_id_of(content) == mid:
                    return env
            m = self.relay.find(qid)
            if m and m['queue_name'] == 'deferred' and any(
                    r.get('delay_reason') for r in m['recipients']):
                return {'deferred': m}
            return None
        env = harness.wait_for(arrived, DELIVERY_TIMEOUT, 0.1)
        if not env or 'deferred' in env:
            self.fail('%s for %s not delivered within %.0f s: %s\n'
                      'MX events: %s\nlog:\n%s'
                      % (qid, rcpt, DELIVERY_TIMEOUT,
                         env and env['deferred'], mx.events()[-6:],
                         self.log_tail()))
        self.assertEqual(env['rcpt_tos'], [rcpt], env)
        self.assertIs(env['tls'], True, env)
        self.assertIn('tls_sni', env, 'mx.py records no tls_sni')
        sent = (r'%s: to=<%s>, relay=%s\[%s\]:%d, .*status=sent'
                % (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
                   FIX.port))
        if not self.relay.wait_log(sent, DELIVERY_TIMEOUT):
            self.fail('no status=sent line for %s\nlog:\n%s'
                      % (qid, self.log_tail()))
        return env, mx

    def check_log(self, key):
        """The TLS summary line for the case's MX, then (tls_loglevel = 2)
        the level/chain/digests line for the same session."""
        _, host, ip, entry, _, trust, _ = CASES[key]
        peer = '%s[%s]:%d' % (host, ip, FIX.port)
        cert = FIX.cert[key]
        log = self.relay.log_text()
        tls = re.search(r'\b%s TLS connection established to %s: TLSv1\.[23] '
                        r'with cipher \S+' % (trust, re.escape(peer)), log)
        self.assertTrue(tls, 'no "%s TLS connection established to %s" '
                        'line\nlog:\n%s' % (trust, peer, self.log_tail()))
        level = entry.split()[0]
        rx = (r'%s: level=%s, chain=1, certificate SHA-256 %s, public key '
              r'SHA-256 %s$' % (re.escape(peer), level,
                                re.escape(cert.cert_sha256()),
                                re.escape(cert.pubkey_sha256())))
        detail = re.compile(rx, re.M).search(log, tls.end())
        if not detail:
            near = [ln for ln in log.splitlines() if 'level=' in ln]
            self.fail('tls_loglevel = 2: no "%s: level=%s, chain=1, '
                      'certificate SHA-256 ..., public key SHA-256 ..." line '
                      'after the TLS line; level= lines: %s\nlog:\n%s'
                      % (peer, level, near, self.log_tail()))
        # The detail line belongs to this session: no other TLS session
        # with this MX was logged between the two.
        self.assertNotIn('TLS connection established to %s' % peer,
                         log[tls.end():detail.start()])
        # Then each certificate of the chain and the verification steps.
        depth = re.compile(r'%s: depth=0 subject=CN=%s, issuer=CN=' %
                           (re.escape(peer), re.escape(host)), re.M)
        self.assertTrue(depth.search(log, detail.end()),
                        'no depth=0 line\nlog:\n%s' % self.log_tail())
        steps = re.compile(r'%s: verification: chain ([a-z]+)(.*)$' % re.escape(peer), re.M)
        m = steps.search(log, detail.end())
        self.assertTrue(m, 'no verification line\nlog:\n%s' % self.log_tail())
        if level == 'secure':
            self.assertEqual(m.group(1), 'trusted', m.group(0))
            self.assertIn('; name matched', m.group(2))

    def check_case(self, key):
        env, mx = self.deliver(key)
        want = CASES[key][6]
        self.assertEqual(env['tls_sni'], want,
                         'policy "%s": SNI %r at the MX, wanted %r'
                         % (CASES[key][3], env['tls_sni'], want))
        # Every TLS session the MX saw asked for the same name (none in
        # clear, none with another name).
        starttls = [e for e in mx.events() if e['event'] == 'starttls']
        self.assertTrue(starttls, mx.events())
        self.assertEqual({e['tls_sni'] for e in starttls}, {want}, starttls)
        self.check_log(key)

    # (a) No servername=: no SNI, under secure and under encrypt.

    def test_a_secure_sends_no_sni(self):
        self.check_case('secure')

    def test_a_encrypt_sends_no_sni(self):
        self.check_case('encrypt')

    # (b) servername=hostname: the MX host name.

    def test_b_servername_hostname(self):
        self.check_case('hostname')

    # (c) servername=nexthop: the next-hop domain.

    def test_c_servername_nexthop(self):
        self.check_case('nexthop')

    # (d) servername=NAME: that name.

    def test_d_servername_literal(self):
        self.check_case('literal')


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
