"""Issue 9 end to end: DANE (RFC 7672) for outbound delivery.

The peers are real: a DNSSEC-signed Knot DNS zone `test.` with TLSA records
computed from the certificates the MX hosts present (dnszone.tlsa_rdata),
an unsigned child zone `insecure.test.`, a child zone `bogus.test.` whose
DS in the parent does not match its key (every answer from it is bogus),
one aiosmtpd MX per host on its own 127.0.0.x address (mxpeer.py), and for
the timeout case a proxy in front of Knot that never answers TLSA queries
(dnsproxy.py).  The relay validates with the zone's trust anchor.

Certificates: DANE-EE(3) hosts mostly present self-signed certificates
(nothing but the TLSA record could vouch for them); DANE-TA(2) hosts a leaf
issued by a CA that only the TLSA record names (the MX sends leaf + CA).
The relay's tls_ca_file holds another CA (`PKIX CA`), which issued the
certificates of the hosts where a trusted chain must not be enough (the
mismatch) or is what the log must show (Trusted, outside DANE).

    FixtureCheck    OpenSSL's own DANE verifier (s_client -dane_tlsa_*) against
                    each MX with the TLSA RRset Knot serves for it: the
                    fixtures match where a delivery is expected, and fail
                    for the reason the relay must give where a hold is
    PolicyEntries   one relay, one policy entry per destination (dane-only
                    or dane); default level dane-only; a malformed-only TLSA
                    RRset under dane-only holds and counts tlsa-invalid
    DefaultEncrypt  no entry, default_tls_level = encrypt: DANE raises it;
                    a malformed-only TLSA RRset delivers as encrypt and is
                    counted tlsa-invalid for TLS-RPT
    TlsaTimeout     the relay's resolver goes through the TLSA-dropping proxy
    RequireTls      REQUIRETLS (RFC 8689) mail: only to a DANE-Verified MX
                    (secure MX RRset) that offers the extension, else a
                    5.7.30 bounce with a DSN to the sender's MX

An outcome is always something that could have gone the other way: the
message at the MX with the TLS log line, the `tls=` word of the delivery
line and the SNI name the MX saw; or the mail deferred with its reason in
`mailq --json` and no transaction at the MX.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnsproxy  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
from mxpeer import MX  # noqa: E402
from test_delivery import (common_port, dsn_parts, message,  # noqa: E402
                           msg_id_of, null_sender, per_recipient,
                           require_peers)

DELIVERY_TIMEOUT = 15.0
HOLD_TIMEOUT = 15.0
# The relay bounds a lookup at 30 s (libunbound gives up on an unanswered
# server sooner); a TLSA lookup that times out defers within this.
TLSA_TIMEOUT_HOLD = 60.0
SENDER = 'alice@client.test'

NOT_VERIFIED = 'Server certificate not verified'
NO_TLSA_MATCH = 'Server certificate not verified: no TLSA record matches'
BOGUS = 'DNSSEC validation failed'
NO_STARTTLS = 'TLS is required, but was not offered'

# key: (domain, MX host as in the MX record, address).  One host per
# address, except where two domains share an MX host on purpose.
DESTS = {
    # dane-only, signed zone
    'ee311': ('ee311.test', 'mx.ee311.test', '127.0.0.60'),
    'ee301': ('ee301.test', 'mx.ee301.test', '127.0.0.61'),
    'ta201': ('ta201.test', 'mx.ta201.test', '127.0.0.62'),
    'ee312': ('ee312.test', 'mx.ee312.test', '127.0.0.63'),
    'ee300': ('ee300.test', 'mx.ee300.test', '127.0.0.64'),
    'mixed-ee': ('mixed-ee.test', 'mx.mixed-ee.test', '127.0.0.65'),
    'mixed-ta': ('mixed-ta.test', 'mx.mixed-ta.test', '127.0.0.66'),
    'mismatch': ('mismatch.test', 'mx.mismatch.test', '127.0.0.67'),
    'expired-ee': ('expired-ee.test', 'mx.expired-ee.test', '127.0.0.68'),
    'expired-ta': ('expired-ta.test', 'mx.expired-ta.test', '127.0.0.69'),
    # Address secure, TLSA owner an alias into the bogus child.
    'bogus-tlsa': ('bogus-tlsa.test', 'mx.bogus-tlsa.test', '127.0.0.70'),
    # The MX host itself in the bogus child.
    'bogus-host': ('bogus-host.test', 'mx.bogus.test', '127.0.0.71'),
    # MX host names that are aliases (CNAME) of the real host.
    'cname': ('cname.test', 'mx.cname.test', '127.0.0.72'),
    'cname-orig': ('cname-orig.test', 'mx.cname-orig.test', '127.0.0.73'),
    # level dane
    'insecure': ('insecure.test', 'mx.insecure.test', '127.0.0.74'),
    'insecure-notls': ('notls.insecure.test', 'mx2.insecure.test',
                       '127.0.0.75'),
    'pointer': ('pointer.insecure.test', 'mx.pointer.test', '127.0.0.76'),
    'dane-match': ('dane-match.test', 'mx.dane-match.test', '127.0.0.77'),
    'dane-notlsa': ('dane-notlsa.test', 'mx.dane-notlsa.test', '127.0.0.78'),
    'dane-bogus': ('dane-bogus.test', 'mx.bogus-tlsa.test', '127.0.0.70'),
    # the timeout relay: the same host under dane-only and dane
    'slow': ('slow.test', 'mx.slow.test', '127.0.0.79'),
    'slow-dane': ('slow-dane.test', 'mx.slow.test', '127.0.0.79'),
    # no entry, default may: TLSA records present, none usable (PKIX-EE)
    'unusable': ('unusable.test', 'mx.unusable.test', '127.0.0.82'),
    # A secure TLSA RRset whose only record is malformed (a 2-octet
    # SHA-256 digest): no usable record, TLS-RPT's tlsa-invalid.
    'malformed': ('malformed.test', 'mx.malformed.test', '127.0.0.81'),
}
# The targets of the CNAME'd MX hosts: (alias, target).
CNAMES = {
    'cname': ('mx.cname.test', 'real-mx.test'),
    'cname-orig': ('mx.cname-orig.test', 'real-mx2.test'),
}
# The sender's domain (SENDER) and its MX: where DSNs go.  Plain SMTP
# (policy `may` in RequireTls); no other class starts it.
SENDER_MX = ('client.test', 'mx.client.test', '127.0.0.80')
HOSTS = sorted({ip for _, _, ip in DESTS.values()} | {SENDER_MX[2]})

# The policy file of PolicyEntries; every other domain defaults to dane-only.
LEVELS = {k: 'dane-only' for k in DESTS}
LEVELS.update({k: 'dane' for k in ('insecure', 'insecure-notls', 'pointer',
                                   'dane-match', 'dane-notlsa', 'dane-bogus',
                                   'slow-dane')})


# -- module fixture: certificates, then the zone that publishes them ---------

FIX = None


class Fixture:
    def __init__(self):
        self.zone = None
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-danecert-')
        try:
            self.port = common_port(HOSTS)
            self._certs()
            self.zone = dnszone.DnsZone(
                self.records(), unsigned_children={
                    'insecure.test.': self.insecure_records()},
                bogus_children={'bogus.test.': self.bogus_records()})
        except BaseException:
            self.close()
            raise

    def _certs(self):
        d = self.dir
        mk = certs.make_cert
        # In the relay's tls_ca_file: its chains are "trusted".
        self.pkix_ca = certs.default_ca(d)
        # Named by DANE-TA records only; other_ca by none that matches.
        self.dane_ca = certs.make_ca(d, cn='tlsrelay DANE TA', name='daneca')
        self.other_ca = certs.make_ca(d, cn='tlsrelay other CA',
                                      name='otherca')
        c = {}
        for k in ('ee311', 'ee301', 'ee312', 'ee300', 'mixed-ee',
                  'dane-match', 'dane-notlsa', 'cname', 'cname-orig', 'slow',
                  'pointer', 'unusable'):
            c[k] = mk(d, DESTS[k][1], self_signed=True, name=k)
        for k in ('ta201', 'mixed-ta'):
            c[k] = mk(d, DESTS[k][1], ca=self.dane_ca, name=k)
        # One expired certificate (valid only in 2020) for two host names:
        # DANE-EE ignores its dates, DANE-TA does not.
        c['expired'] = mk(d, DESTS['expired-ee'][1],
                          [DESTS['expired-ee'][1], DESTS['expired-ta'][1]],
                          ca=self.dane_ca, expired=True, name='expired')
        # Trusted by tls_ca_file and valid for its name: only the TLSA
        # record (of someone else) says no.
        c['mismatch'] = mk(d, DESTS['mismatch'][1], ca=self.pkix_ca,
                           name='mismatch')
        # Outside DANE: chains to tls_ca_file, so Trusted.
        for k in ('insecure', 'insecure-notls', 'malformed'):
            c[k] = mk(d, DESTS[k][1], ca=self.pkix_ca, name=k)
        # Matched by the TLSA record in the bogus child (were it believed).
        c['bogus'] = mk(d, 'mx.bogus.test', self_signed=True, name='bogus')
        self.cert = c
        # What each MX serves: leaf, plus the DANE-TA anchor where needed.
        self.serve = {k: v.cert for k, v in c.items()}
        for k in ('ta201', 'mixed-ta', 'expired'):
            path = os.path.join(d, k + '.chain.pem')
            with open(path, 'w') as f:
                f.write(c[k].pem() + self.dane_ca.pem())
            self.serve[k] = path

    def cert_of(self, key):
        """(certificate file to serve, key file) of DESTS[key]'s MX."""
        name = {'expired-ee': 'expired', 'expired-ta': 'expired',
                'bogus-tlsa': 'bogus', 'bogus-host': 'bogus',
                'dane-bogus': 'bogus', 'slow-dane': 'slow'}.get(key, key)
        return self.serve[name], self.cert[name].key

    def owner(self, host):
        return dnszone.tlsa_owner(host, self.port)

    def records(self):
        t = dnszone.tlsa_rdata
        c = self.cert
        recs = []
        for key, (domain, host, ip) in DESTS.items():
            if domain.endswith('.insecure.test') or domain == 'insecure.test':
                continue
            recs.append((domain + '.', 'MX', '10 %s.' % host))
        hosts = {}
        for key, (_, host, ip) in DESTS.items():
            if key in CNAMES or host.endswith('.bogus.test') or \
                    host.endswith('.insecure.test'):
                continue
            hosts[host] = ip
        for host, ip in sorted(hosts.items()):
            recs.append((host + '.', 'A', ip))
        recs.append((SENDER_MX[0] + '.', 'MX', '10 %s.' % SENDER_MX[1]))
        recs.append((SENDER_MX[1] + '.', 'A', SENDER_MX[2]))
        tlsa = {
            'ee311': [t(c['ee311'], 3, 1, 1)],
            'ee301': [t(c['ee301'], 3, 0, 1)],
            'ta201': [t(self.dane_ca, 2, 0, 1)],
            'ee312': [t(c['ee312'], 3, 1, 2)],
            'ee300': [t(c['ee300'], 3, 0, 0)],
            # 2+3 sets where one record matches: the EE, or the TA.
            'mixed-ee': [t(self.other_ca, 2, 0, 1), t(c['mixed-ee'], 3, 1, 1)],
            'mixed-ta': [t(c['ee311'], 3, 1, 1), t(self.dane_ca, 2, 0, 1)],
            # Records that are all someone else's.
            'mismatch': [t(c['ee311'], 3, 1, 1), t(self.other_ca, 2, 0, 1),
                         t(self.pkix_ca, 3, 0, 1)],
            'expired-ee': [t(c['expired'], 3, 1, 1)],
            'expired-ta': [t(self.dane_ca, 2, 0, 1)],
            'pointer': [t(c['pointer'], 3, 1, 1)],
            'dane-match': [t(c['dane-match'], 3, 1, 1)],
            'slow': [t(c['slow'], 3, 1, 1)],
            # PKIX-EE: present and matching, but not usable for SMTP.
            'unusable': [t(c['unusable'], 1, 1, 1)],
        }
        for key, rdatas in tlsa.items():
            for rd in rdatas:
                recs.append((self.owner(DESTS[key][1]), 'TLSA', rd))
        recs.append((self.owner(DESTS['malformed'][1]), 'TLSA', '3 1 1 0011'))
        # A TLSA owner that is an alias into the bogus child.
        recs.append((self.owner(DESTS['bogus-tlsa'][1]), 'CNAME',
                     self.owner('mx.bogus.test')))
        # CNAME'd MX hosts: TLSA at the target, or at the alias only.
        for key, (alias, target) in CNAMES.items():
            recs.append((alias + '.', 'CNAME', target + '.'))
            recs.append((target + '.', 'A', DESTS[key][2]))
        recs.append((self.owner(CNAMES['cname'][1]), 'TLSA',
                     t(c['cname'], 3, 1, 1)))
        recs.append((self.owner(CNAMES['cname-orig'][0]), 'TLSA',
                     t(c['cname-orig'], 3, 1, 1)))
        return recs

    def insecure_records(self):
        t = dnszone.tlsa_rdata
        _, host, ip = DESTS['insecure']
        _, host2, ip2 = DESTS['insecure-notls']
        return [
            ('insecure.test.', 'MX', '10 %s.' % host),
            (host + '.', 'A', ip),
            # A matching record, but unsigned: it must not be used.
            (self.owner(host), 'TLSA', t(self.cert['insecure'], 3, 1, 1)),
            ('notls.insecure.test.', 'MX', '10 %s.' % host2),
            (host2 + '.', 'A', ip2),
            (self.owner(host2), 'TLSA',
             t(self.cert['insecure-notls'], 3, 1, 1)),
            # An insecure MX RRset naming a host of the signed zone.
            ('pointer.insecure.test.', 'MX', '10 %s.' % DESTS['pointer'][1]),
        ]

    def bogus_records(self):
        return [
            ('mx.bogus.test.', 'A', DESTS['bogus-host'][2]),
            (self.owner('mx.bogus.test'), 'TLSA',
             dnszone.tlsa_rdata(self.cert['bogus'], 3, 1, 1)),
        ]

    def close(self):
        try:
            if self.zone is not None:
                self.zone.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global FIX
    FIX = Fixture()


def tearDownModule():
    if FIX is not None:
        FIX.close()


# -- shared helpers -----------------------------------------------------------


class DaneBase(unittest.TestCase):
    relay = None

    @classmethod
    def start_relay(cls, policy_lines, **keys):
        """A relay for the class with this policy file (checked valid with
        `tlsrelay policy check` first: a mistake there is the test's)."""
        k = dict(FIX.zone.relay_keys())
        k.update({'remote_port': FIX.port,
                  'default_tls_level': 'dane-only',
                  'tls_ca_file': FIX.pkix_ca.cert,
                  'tls_loglevel': 1,
                  'retry_min': '1s', 'retry_max': '2s'})
        k.update(keys)
        relay = harness.Relay(None, start=False, **k)
        try:
            policy = relay.keys['policy_file']
            with open(policy, 'w') as f:
                f.write('# test_dane.py\n' + ''.join(l + '\n'
                                                     for l in policy_lines))
            r = harness.run([harness.BIN, 'policy', 'check', policy],
                            env=harness.base_env())
            if r.returncode != 0:
                raise AssertionError('test policy file is invalid: %s'
                                     % r.stderr)
            relay.start()
        except BaseException:
            relay.close()
            raise
        cls.relay = relay
        cls.addClassCleanup(relay.close)
        return relay

    def mx(self, key, **opts):
        """Start the MX of DESTS[key] with its certificate; stopped at
        cleanup."""
        _, host, ip = DESTS[key]
        cert, certkey = FIX.cert_of(key)
        if not opts.pop('no_tls', False):
            opts.update(tls_cert=cert, tls_key=certkey)
        m = MX(self)
        m.start(ip, FIX.port, hostname=host, **opts)
        return m

    def send(self, key, local='bob'):
        """Submit one message to local@domain of DESTS[key]; returns
        (queue ID, Message-ID, recipient)."""
        rcpt = '%s@%s' % (local, DESTS[key][0])
        data, mid = message(SENDER, [rcpt], subject='dane ' + key)
        code, reply, qid = harness.smtp_send(self.relay, SENDER, [rcpt], data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def forget(self, qid):
        """Cleanup: drop a held message so that its retries stop."""
        self.addCleanup(self.relay.cli, 'queue', 'delete', qid)

    def log_tail(self):
        return self.relay.log_text()[-5000:]

    @staticmethod
    def host_rx(key):
        """The MX host name(s) the relay may log for DESTS[key]: a CNAME'd
        host may be logged by its alias or by its target."""
        if key in CNAMES:
            return '(?:%s)' % '|'.join(re.escape(h) for h in CNAMES[key])
        return re.escape(DESTS[key][1])

    # -- outcomes ----------------------------------------------------------

    def tls_line(self, key, trust, timeout=DELIVERY_TIMEOUT):
        """Wait for `TRUST TLS connection established to HOST[IP]:PORT: `."""
        ip = DESTS[key][2]
        rx = (r'\b%s TLS connection established to %s\[%s\]:%d: TLSv1\.[23] '
              r'with cipher \S+' % (trust, self.host_rx(key), re.escape(ip),
                                     FIX.port))
        if not self.relay.wait_log(rx, timeout):
            lines = [ln for ln in self.relay.log_text().splitlines()
                     if 'TLS connection established to' in ln
                     and '[%s]' % ip in ln]
            self.fail('no "%s TLS connection established to %s[%s]" line; '
                      'TLS lines for that address: %s\nlog:\n%s'
                      % (trust, DESTS[key][1], ip, lines, self.log_tail()))

    def assert_no_verified(self, key):
        ip = DESTS[key][2]
        self.assertNotRegex(self.relay.log_text(),
                            r'\bVerified TLS connection established to '
                            r'\S+\[%s\]' % re.escape(ip))

    def wait_at_mx(self, mx, qid, mid, timeout=DELIVERY_TIMEOUT):
        """The (envelope, content) stored at mx for Message-ID mid; fails
        as soon as the relay defers the message instead."""
        state = {}

        def arrived():
            for env, content in mx.messages():
                if msg_id_of(content) == mid:
                    return env, content
            m = self.relay.find(qid)
            if m and m['queue_name'] == 'deferred' and any(
                    r.get('delay_reason') for r in m['recipients']):
                state['deferred'] = m
                return 'deferred'
            return None
        got = harness.wait_for(arrived, timeout, 0.1)
        if got == 'deferred':
            self.fail('%s was deferred instead of delivered: %s\n'
                      'MX events: %s\nlog:\n%s'
                      % (qid, state['deferred'], mx.events()[-6:],
                         self.log_tail()))
        if not got:
            self.fail('%s (%s) not at %s within %.0f s; queue: %s\nMX events:'
                      ' %s\nlog:\n%s' % (qid, mid, mx.host, timeout,
                                         self.relay.find(qid),
                                         mx.events()[-6:], self.log_tail()))
        return got

    def assert_delivered(self, mx, key, qid, mid, rcpt, trust, tls_word,
                         sni=None):
        """mid reached mx over TLS, for rcpt only; the relay logged the
        TLS line with that trust word and a status=sent line with tls=
        tls_word (a regex); the MX saw SNI sni (when given); qid left the
        queue.  Returns the envelope."""
        env, _ = self.wait_at_mx(mx, qid, mid)
        self.assertEqual(env['rcpt_tos'], [rcpt], env)
        self.assertEqual(env['mail_from'], SENDER, env)
        self.assertIs(env['tls'], True, env)
        if sni is not None:
            self.assertEqual(env['tls_sni'], sni, env)
        self.tls_line(key, trust)
        ip = DESTS[key][2]
        sent = (r'%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, tls=%s, '
                r'dsn=2\.\d{1,3}\.\d{1,3}, status=sent \(' %
                (qid, re.escape(rcpt), self.host_rx(key), re.escape(ip),
                 FIX.port, tls_word))
        if not self.relay.wait_log(sent, DELIVERY_TIMEOUT):
            self.fail('no status=sent line with tls=%s for %s to %s\nlog:\n%s'
                      % (tls_word, qid, rcpt, self.log_tail()))
        if not harness.wait_for(lambda: self.relay.find(qid) is None,
                                DELIVERY_TIMEOUT):
            self.fail('%s still queued after delivery: %s'
                      % (qid, self.relay.find(qid)))
        return env

    def assert_dane_delivered(self, key, mx, qid, mid, rcpt, sni=None):
        """Delivered through DANE: Verified, tls=dane, SNI the MX host name
        (or the given TLSA base domain)."""
        return self.assert_delivered(mx, key, qid, mid, rcpt, 'Verified',
                                     'dane', sni or DESTS[key][1])

    def assert_held(self, qid, rcpt, *reasons, timeout=HOLD_TIMEOUT):
        """qid is in the deferred queue with a delay_reason for rcpt that
        contains every one of reasons; returns the reason."""
        def held():
            m = self.relay.find(qid)
            if m is None:
                return 'gone'
            if m['queue_name'] == 'deferred' and m['recipients'] and all(
                    r.get('delay_reason') for r in m['recipients']):
                return m
            return None
        m = harness.wait_for(held, timeout, 0.1)
        if m == 'gone':
            self.fail('%s left the queue: it should have been held\nlog:\n%s'
                      % (qid, self.log_tail()))
        if not m:
            self.fail('%s not deferred with a reason within %.0f s: %s\n'
                      'log:\n%s' % (qid, timeout, self.relay.find(qid),
                                    self.log_tail()))
        self.assertEqual([r['address'] for r in m['recipients']], [rcpt], m)
        got = m['recipients'][0]['delay_reason']
        for reason in reasons:
            self.assertIn(reason, got, m)
        return got

    def assert_nothing_at_mx(self, mx, mid):
        """mid was not stored, and the MX saw no mail transaction at all
        (it serves only this test's held domain)."""
        self.assertEqual([c for _, c in mx.messages() if msg_id_of(c) == mid],
                         [], 'held message reached the MX')
        self.assertEqual([e for e in mx.events() if e['event'] in
                          ('mail', 'rcpt', 'data')], [],
                         'a transaction reached the MX of a held domain')


# -- the fixtures, checked by another DANE implementation ---------------------


OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'


class FixtureCheck(DaneBase):
    """Each MX with the TLSA RRset Knot serves for it (read with kdig, no
    validation), verified by `openssl s_client -dane_tlsa_rrdata`: what the
    relay must deliver matches, what it must hold fails for that reason.
    Passes without any DANE support in the relay."""

    def openssl_dane(self, key, base, owner, ca_file=None):
        """(exit status, output) of a STARTTLS handshake with DESTS[key]'s
        MX, DANE-verified against the TLSA RRset at owner for base (or,
        without owner, PKIX-verified against ca_file for base)."""
        _, host, ip = DESTS[key]
        args = [OPENSSL, 's_client', '-connect', '%s:%d' % (ip, FIX.port),
                '-starttls', 'smtp', '-servername', base, '-brief',
                '-verify_return_error']
        if owner:
            rrs = FIX.zone.query(owner, 'TLSA')
            self.assertTrue(rrs, 'no TLSA at %s' % owner)
            # RFC 7672 3.1.1: DANE-EE(3) ignores names (as Postfix asks).
            args += ['-dane_tlsa_domain', base, '-dane_ee_no_namechecks']
            for rr in rrs:
                f = rr.split()
                args += ['-dane_tlsa_rrdata',
                         ' '.join(f[:3] + [''.join(f[3:])])]
        else:
            args += ['-CAfile', ca_file, '-verify_hostname', base]
        r = subprocess.run(args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           encoding='utf-8', errors='replace', timeout=30)
        return r.returncode, r.stdout

    # key: (TLSA base domain, where its RRset is, expected output)
    MATCH_EE = 'matched EE certificate at depth 0'
    MATCH_TA = 'matched TA certificate at depth 1'

    def cases(self):
        own = FIX.owner
        c = {k: (DESTS[k][1], own(DESTS[k][1]), self.MATCH_EE)
             for k in ('ee311', 'ee301', 'ee312', 'ee300', 'mixed-ee',
                       'expired-ee', 'dane-match', 'slow', 'pointer',
                       'insecure', 'insecure-notls')}
        c.update({k: (DESTS[k][1], own(DESTS[k][1]), self.MATCH_TA)
                  for k in ('ta201', 'mixed-ta')})
        c['mismatch'] = (DESTS['mismatch'][1], own(DESTS['mismatch'][1]),
                         'no matching DANE TLSA records')
        c['expired-ta'] = (DESTS['expired-ta'][1],
                           own(DESTS['expired-ta'][1]),
                           'certificate has expired')
        c['cname'] = (CNAMES['cname'][1], own(CNAMES['cname'][1]),
                      self.MATCH_EE)
        c['cname-orig'] = (CNAMES['cname-orig'][0],
                           own(CNAMES['cname-orig'][0]), self.MATCH_EE)
        # Were the bogus child believed, its record would match.
        c['bogus-host'] = ('mx.bogus.test', own('mx.bogus.test'),
                           self.MATCH_EE)
        return c

    def test_tlsa_records_match_the_mx_certificates(self):
        for key, (base, owner, want) in sorted(self.cases().items()):
            with self.subTest(key=key):
                # (insecure-notls: here with the STARTTLS it lacks later.)
                mx = self.mx(key)
                rc, out = self.openssl_dane(key, base, owner)
                self.assertIn(want, out, out)
                if want in (self.MATCH_EE, self.MATCH_TA):
                    self.assertEqual(rc, 0, out)
                    self.assertIn('Verification: OK', out)
                else:
                    self.assertNotEqual(rc, 0, out)
                mx.close()

    def test_other_records(self):
        own = FIX.owner
        z = FIX.zone
        # The bogus-tlsa host's TLSA owner is an alias into the bogus child.
        for key in ('bogus-tlsa', 'dane-bogus'):
            self.assertEqual(z.query(own(DESTS[key][1]), 'CNAME'),
                             [own('mx.bogus.test')])
        # Where DANE must not apply for want of records.
        self.assertEqual(z.query(own(DESTS['dane-notlsa'][1]), 'TLSA'), [])
        self.assertEqual(z.query(own(CNAMES['cname'][0]), 'TLSA'), [])
        self.assertEqual(z.query(own(CNAMES['cname-orig'][1]), 'TLSA'), [])
        for key, (alias, target) in CNAMES.items():
            self.assertEqual(z.query(alias, 'CNAME'), [target + '.'])
            self.assertEqual(z.query(target, 'A'), [DESTS[key][2]])
        # Outside DANE, the mismatch host chains to tls_ca_file with its
        # name: only its TLSA records can refuse it.  (The pointer host is
        # self-signed: only its TLSA record can make it Trusted.)
        for key in ('mismatch',):
            mx = self.mx(key)
            rc, out = self.openssl_dane(key, DESTS[key][1], None,
                                        FIX.pkix_ca.cert)
            self.assertEqual(rc, 0, out)
            self.assertIn('Verification: OK', out)
            mx.close()


# -- one relay, one policy entry per destination ------------------------------


class PolicyEntries(DaneBase):

    @classmethod
    def setUpClass(cls):
        cls.start_relay(['%-22s %s' % (DESTS[k][0], LEVELS[k])
                         for k in sorted(DESTS)])

    # dane-only: DANE-EE and DANE-TA records that match deliver, Verified.

    def test_ee_3_1_1_delivers(self):
        mx = self.mx('ee311')
        qid, mid, rcpt = self.send('ee311')
        self.assert_dane_delivered('ee311', mx, qid, mid, rcpt)

    def test_ee_3_0_1_delivers(self):
        mx = self.mx('ee301')
        qid, mid, rcpt = self.send('ee301')
        self.assert_dane_delivered('ee301', mx, qid, mid, rcpt)

    def test_ee_3_1_2_delivers(self):
        mx = self.mx('ee312')
        qid, mid, rcpt = self.send('ee312')
        self.assert_dane_delivered('ee312', mx, qid, mid, rcpt)

    def test_ee_3_0_0_delivers(self):
        mx = self.mx('ee300')
        qid, mid, rcpt = self.send('ee300')
        self.assert_dane_delivered('ee300', mx, qid, mid, rcpt)

    def test_ta_2_0_1_delivers(self):
        # The MX sends leaf + anchor; the anchor is in no CA file.
        mx = self.mx('ta201')
        qid, mid, rcpt = self.send('ta201')
        self.assert_dane_delivered('ta201', mx, qid, mid, rcpt)

    def test_mixed_set_ee_matches(self):
        mx = self.mx('mixed-ee')
        qid, mid, rcpt = self.send('mixed-ee')
        self.assert_dane_delivered('mixed-ee', mx, qid, mid, rcpt)

    def test_mixed_set_ta_matches(self):
        mx = self.mx('mixed-ta')
        qid, mid, rcpt = self.send('mixed-ta')
        self.assert_dane_delivered('mixed-ta', mx, qid, mid, rcpt)

    # dane-only: no matching record holds, even with a certificate that
    # chains to tls_ca_file and carries the right name.

    def test_mismatch_holds(self):
        mx = self.mx('mismatch')
        qid, mid, rcpt = self.send('mismatch')
        self.forget(qid)
        self.assert_held(qid, rcpt, NO_TLSA_MATCH)
        self.assert_nothing_at_mx(mx, mid)
        self.assert_no_verified('mismatch')

    def test_malformed_tlsa_under_dane_only_holds_and_counts_tlsa_invalid(self):
        # dane-only and no usable record: held without connecting; the
        # TLS-RPT report says the TLSA RRset is invalid (RFC 8460
        # 4.3.2.1), not dane-required (there are records).
        key = 'malformed'
        mx = self.mx(key)
        qid, mid, rcpt = self.send(key)
        self.forget(qid)
        self.assert_held(qid, rcpt, 'has no usable TLSA records')
        self.assert_nothing_at_mx(mx, mid)
        day = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
        last = {}

        def report():
            r = self.relay.cli('tlsrpt', 'show', '--day', day, DESTS[key][0])
            last['out'] = r.stdout + r.stderr
            return json.loads(r.stdout) if r.returncode == 0 else None
        rep = harness.wait_for(report, 20.0, 0.3)
        self.assertTrue(rep, 'no TLS-RPT counts for %s: %s\nlog:\n%s'
                        % (DESTS[key][0], last.get('out'), self.log_tail()))
        pol = rep['policies'][0]
        self.assertEqual(pol['policy']['policy-type'], 'tlsa')
        self.assertEqual(pol['summary']['total-successful-session-count'], 0)
        self.assertEqual([d['result-type'] for d in pol['failure-details']],
                         ['tlsa-invalid'], pol)

    def test_expired_cert_ee_delivers(self):
        mx = self.mx('expired-ee')
        qid, mid, rcpt = self.send('expired-ee')
        self.assert_dane_delivered('expired-ee', mx, qid, mid, rcpt)

    def test_expired_cert_ta_holds(self):
        mx = self.mx('expired-ta')
        qid, mid, rcpt = self.send('expired-ta')
        self.forget(qid)
        self.assert_held(qid, rcpt, NOT_VERIFIED)
        self.assert_nothing_at_mx(mx, mid)
        self.assert_no_verified('expired-ta')

    # Bogus: deferred, never delivered and never downgraded.

    def test_bogus_tlsa_defers(self):
        # The address is secure; the TLSA RRset (via a CNAME) is bogus.
        mx = self.mx('bogus-tlsa')
        qid, mid, rcpt = self.send('bogus-tlsa')
        self.forget(qid)
        self.assert_held(qid, rcpt, 'TLSA lookup error for %s'
                         % FIX.owner(DESTS['bogus-tlsa'][1]).rstrip('.'),
                         BOGUS)
        self.assert_nothing_at_mx(mx, mid)

    def test_bogus_tlsa_defers_under_dane(self):
        # `dane` falls back to encrypt only when DANE is proven absent.
        mx = self.mx('dane-bogus')
        qid, mid, rcpt = self.send('dane-bogus')
        self.forget(qid)
        self.assert_held(qid, rcpt, 'TLSA lookup error for %s'
                         % FIX.owner(DESTS['dane-bogus'][1]).rstrip('.'),
                         BOGUS)
        self.assert_nothing_at_mx(mx, mid)

    def test_bogus_host_defers(self):
        # The MX host's own records are bogus: the address lookup fails
        # first (or the TLSA lookup; either names the validation failure).
        mx = self.mx('bogus-host')
        qid, mid, rcpt = self.send('bogus-host')
        self.forget(qid)
        self.assert_held(qid, rcpt, BOGUS)
        self.assert_nothing_at_mx(mx, mid)

    # CNAME'd MX host names (RFC 7672 2.2.3): TLSA at the fully expanded
    # name, else at the original one; that name is the TLSA base domain,
    # which the client sends as SNI (RFC 7672 8.1).

    def test_cname_tlsa_at_target_delivers(self):
        mx = self.mx('cname')
        qid, mid, rcpt = self.send('cname')
        self.assert_dane_delivered('cname', mx, qid, mid, rcpt,
                                   sni=CNAMES['cname'][1])

    def test_cname_tlsa_at_alias_delivers(self):
        mx = self.mx('cname-orig')
        qid, mid, rcpt = self.send('cname-orig')
        self.assert_dane_delivered('cname-orig', mx, qid, mid, rcpt,
                                   sni=CNAMES['cname-orig'][0])

    # dane: DANE when usable, else encrypt; never cleartext.

    def test_dane_with_matching_tlsa_delivers_verified(self):
        mx = self.mx('dane-match')
        qid, mid, rcpt = self.send('dane-match')
        self.assert_dane_delivered('dane-match', mx, qid, mid, rcpt)

    def test_dane_without_tlsa_is_encrypt(self):
        # Signed zone, proven absence of TLSA: encrypt (self-signed peer).
        mx = self.mx('dane-notlsa')
        qid, mid, rcpt = self.send('dane-notlsa')
        self.assert_delivered(mx, 'dane-notlsa', qid, mid, rcpt, 'Untrusted',
                              'untrusted')
        self.assert_no_verified('dane-notlsa')

    def test_dane_insecure_zone_is_encrypt(self):
        # The unsigned zone's TLSA record would match; it must not be used.
        mx = self.mx('insecure')
        qid, mid, rcpt = self.send('insecure')
        self.assert_delivered(mx, 'insecure', qid, mid, rcpt,
                              '(?:Trusted|Untrusted)', '(?:trusted|untrusted)')
        self.assert_no_verified('insecure')

    def test_dane_insecure_zone_without_starttls_holds(self):
        mx = self.mx('insecure-notls', no_tls=True, no_starttls=True)
        qid, mid, rcpt = self.send('insecure-notls')
        self.forget(qid)
        self.assert_held(qid, rcpt, NO_STARTTLS)
        self.assert_nothing_at_mx(mx, mid)
        # It did reach the MX and found no STARTTLS (not a DNS failure).
        self.assertTrue(any(e['event'] == 'ehlo' for e in mx.events()),
                        mx.events())

    def test_insecure_mx_to_signed_host_is_trusted(self):
        # The host and its TLSA records are secure, but the MX RRset that
        # named it is not: the host's own records are used, as Postfix
        # does, and a match is only Trusted.  The certificate is
        # self-signed, so without the TLSA match it would be Untrusted.
        mx = self.mx('pointer')
        qid, mid, rcpt = self.send('pointer')
        self.assert_delivered(mx, 'pointer', qid, mid, rcpt, 'Trusted',
                              'trusted')
        self.assert_no_verified('pointer')


# -- no policy entry: DANE raises default_tls_level -------------------------


class DefaultMay(DaneBase):

    @classmethod
    def setUpClass(cls):
        cls.start_relay([], default_tls_level='may')

    def test_unusable_tlsa_still_requires_tls(self):
        # RFC 7672 2.2: TLSA records, none usable (1 1 1): TLS is
        # mandatory all the same; `may` would have sent this in clear.
        mx = self.mx('unusable', no_tls=True, no_starttls=True)
        qid, mid, rcpt = self.send('unusable')
        self.forget(qid)
        self.assert_held(qid, rcpt, NO_STARTTLS)
        self.assert_nothing_at_mx(mx, mid)


class DefaultEncrypt(DaneBase):

    @classmethod
    def setUpClass(cls):
        cls.start_relay([], default_tls_level='encrypt')

    def test_matching_tlsa_is_verified(self):
        mx = self.mx('ee311')
        qid, mid, rcpt = self.send('ee311')
        self.assert_dane_delivered('ee311', mx, qid, mid, rcpt)

    def test_mismatching_tlsa_holds(self):
        # encrypt alone would take this certificate (it even chains to
        # tls_ca_file); the TLSA records raise the level.
        mx = self.mx('mismatch')
        qid, mid, rcpt = self.send('mismatch')
        self.forget(qid)
        self.assert_held(qid, rcpt, NO_TLSA_MATCH)
        self.assert_nothing_at_mx(mx, mid)
        self.assert_no_verified('mismatch')

    def test_malformed_tlsa_delivers_and_counts_tlsa_invalid(self):
        # No usable record: RFC 7672 2.2 leaves the session unauthenticated
        # (encrypt delivers, Trusted through tls_ca_file); the TLS-RPT
        # report says the TLSA RRset is invalid (RFC 8460 4.3.2.1).
        key = 'malformed'
        self.assertEqual(FIX.zone.query(FIX.owner(DESTS[key][1]), 'TLSA'),
                         ['3 1 1 0011'])
        mx = self.mx(key)
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, 'Trusted', 'trusted')
        day = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
        last = {}

        def report():
            r = self.relay.cli('tlsrpt', 'show', '--day', day, DESTS[key][0])
            last['out'] = r.stdout + r.stderr
            return json.loads(r.stdout) if r.returncode == 0 else None
        rep = harness.wait_for(report, 20.0, 0.3)
        self.assertTrue(rep, 'no TLS-RPT counts for %s: %s\nlog:\n%s'
                        % (DESTS[key][0], last.get('out'), self.log_tail()))
        self.assertEqual(len(rep['policies']), 1, rep)
        pol = rep['policies'][0]
        self.assertEqual(pol['policy']['policy-type'], 'tlsa')
        self.assertEqual(pol['summary'], {'total-successful-session-count': 0,
                                          'total-failure-session-count': 1})
        self.assertEqual(pol['failure-details'], [{
            'result-type': 'tlsa-invalid', 'sending-mta-ip': '127.0.0.1',
            'receiving-mx-hostname': DESTS[key][1],
            'receiving-ip': DESTS[key][2], 'failed-session-count': 1}])


# -- TLSA queries that are never answered -------------------------------------


class TlsaTimeout(DaneBase):
    """The relay's resolver reaches Knot through a proxy that drops every
    TLSA query (MX, A and DNSSEC keys are answered).  retry_min = 1h: the
    one attempt is the one whose reason is read."""

    @classmethod
    def setUpClass(cls):
        cls.proxy = dnsproxy.DnsProxy(FIX.zone.port)
        cls.addClassCleanup(cls.proxy.close)
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-danetmo-')
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        ub = FIX.zone.write_unbound_conf(os.path.join(cls.dir, 'unbound.conf'),
                                         stub_port=cls.proxy.port)
        cls.start_relay(['%s %s' % (DESTS[k][0], LEVELS[k])
                         for k in ('slow', 'slow-dane')],
                        dns_unbound_config=ub, retry_min='1h',
                        retry_max='1h')

    def test_tlsa_timeout_defers(self):
        mx = self.mx('slow')
        owner = FIX.owner(DESTS['slow'][1])
        sent = [self.send(k) for k in ('slow', 'slow-dane')]
        for qid, _, _ in sent:
            self.forget(qid)
        # dane-only, and dane too: a failed lookup is not "no TLSA".
        for qid, mid, rcpt in sent:
            self.assert_held(qid, rcpt, 'TLSA lookup error for %s'
                             % owner.rstrip('.'), timeout=TLSA_TIMEOUT_HOLD)
        for _, mid, _ in sent:
            self.assert_nothing_at_mx(mx, mid)
        self.assertIn((owner, dnsproxy.TLSA, 'udp'), self.proxy.dropped)
        # The MX and address lookups did go through the proxy.
        names = {n for n, _, _ in self.proxy.forwarded}
        self.assertIn('slow.test.', names)
        self.assertIn(DESTS['slow'][1] + '.', names)


# -- REQUIRETLS (RFC 8689) meets DANE -----------------------------------------


RTLS_SECRET = 'secret-subject-dane-8689'


class RequireTls(DaneBase):
    """Mail taken with `MAIL FROM:<..> REQUIRETLS` (over STARTTLS) goes
    only over TLS that DANE Verified, which needs a DNSSEC-secure MX RRset
    (RFC 8689 section 4.2.1, RFC 7672 2.2.1), and only to an MX that offers
    REQUIRETLS.  Otherwise it bounces at once with 5.7.30, before MAIL: no
    transaction at that MX, and a redacted DSN at the sender's MX.

    Each case reaches the MX over TLS, so the outcome turns on what the
    relay made of it: the trust word of the TLS line, the tls= word and
    status of the delivery line, the MX's MAIL options.  Retries are an hour
    away: a bounce seen here is the first attempt's, and a deferral fails
    the test instead of a later retry passing it."""

    @classmethod
    def setUpClass(cls):
        smtpd = certs.make_cert(FIX.dir, harness.HOSTNAME, name='smtpd-rtls')
        cls.start_relay(['%s dane' % DESTS[k][0]
                         for k in ('dane-match', 'dane-notlsa', 'pointer')] +
                        ['%s may' % SENDER_MX[0]],
                        smtpd_tls_cert_file=smtpd.cert,
                        smtpd_tls_key_file=smtpd.key,
                        retry_min='1h', retry_max='1h')

    def send_rtls(self, key):
        """Submit over STARTTLS, with REQUIRETLS, one message to
        bob@DESTS[key]'s domain; returns (queue ID, Message-ID, rcpt)."""
        rcpt = 'bob@%s' % DESTS[key][0]
        data, mid = message(SENDER, [rcpt], subject=RTLS_SECRET)
        code, reply, qid = harness.smtp_send(
            self.relay, SENDER, [rcpt], data, starttls=True,
            mail_options=['REQUIRETLS'])
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def sender_mx(self):
        """The MX of the sender's domain (no TLS); stopped at cleanup."""
        _, host, ip = SENDER_MX
        m = MX(self)
        m.start(ip, FIX.port, hostname=host)
        return m

    def outcome(self, key, qid, rcpt):
        """The first delivery line of qid for rcpt at DESTS[key]'s MX, or
        with relay=none when no connection was made (sent, bounced or
        deferred): (tls word or None, dsn, status, reason)."""
        _, host, ip = DESTS[key]
        rx = (r'%s: to=<%s>, relay=(?:%s\[%s\]:%d|none), delay=[0-9.]+, '
              r'(?:tls=([a-z-]+), )?'
              r'dsn=(\d\.\d{1,3}\.\d{1,3}), status=([a-z]+) \((.*)\)$'
              % (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
                 FIX.port))
        m = self.relay.wait_log(rx, DELIVERY_TIMEOUT)
        if not m:
            self.fail('no delivery line for %s to %s within %.0f s: %s\n'
                      'log:\n%s' % (qid, rcpt, DELIVERY_TIMEOUT,
                                    self.relay.find(qid), self.log_tail()))
        return m.groups()

    def assert_bounced(self, key, snd, qid, mid, rcpt, tls_word, reason):
        """qid's rcpt bounced at once with 5.7.30 and reason after a TLS
        session the relay called tls_word; the queue holds nothing of it;
        one redacted DSN reached the sender's MX snd."""
        tls, dsn, status, got = self.outcome(key, qid, rcpt)
        self.assertEqual((status, dsn), ('bounced', '5.7.30'),
                         'the REQUIRETLS message was %s (%s, tls=%s): %s'
                         % (status, dsn, tls, got))
        self.assertEqual(tls, tls_word, got)
        self.assertIn(reason, got)
        if not harness.wait_for(lambda: self.relay.find(qid) is None,
                                DELIVERY_TIMEOUT):
            self.fail('%s still queued after its bounce: %s'
                      % (qid, self.relay.find(qid)))
        dsns = harness.wait_for(lambda: [
            (e, c) for e, c in snd.messages() if null_sender(e['mail_from'])],
            DELIVERY_TIMEOUT)
        self.assertTrue(dsns, 'no DSN at %s; events: %s\nlog:\n%s'
                        % (SENDER_MX[1], snd.events(), self.log_tail()))
        self.assertEqual(len(dsns), 1, dsns)
        env, content = dsns[0]
        self.assertEqual(env['rcpt_tos'], [SENDER])
        # The DSN is ordinary mail (redacted, RFC 8689 section 5).
        self.assertNotIn('REQUIRETLS', env['mail_options'])
        _, blocks = dsn_parts(content)
        fields = per_recipient(blocks)[rcpt]
        self.assertEqual(fields['Status'].strip(), '5.7.30')
        self.assertEqual(fields['Action'].strip().lower(), 'failed')
        self.assertIn(reason, ' '.join(fields.get('Diagnostic-Code',
                                                  '').split()))
        self.assertIn(('Message-ID: %s' % mid).encode(), content)
        self.assertNotIn(RTLS_SECRET.encode(), content)
        self.assertIn(b'only its Message-ID is attached', content)

    def assert_no_session(self, mx, mid):
        """The relay bounced without talking to mx at all."""
        self.assertEqual([e for e in mx.events() if e['event'] in
                          ('ehlo', 'starttls', 'mail', 'rcpt', 'data')], [])
        self.assert_nothing_at_mx(mx, mid)

    def assert_tls_but_no_mail(self, mx, mid):
        """The relay got as far as STARTTLS with mx (so the bounce is its
        verdict on that session), and no further: no MAIL, RCPT or DATA."""
        self.assertTrue(any(e['event'] == 'starttls' for e in mx.events()),
                        mx.events())
        self.assert_nothing_at_mx(mx, mid)

    def test_dane_verified_mx_with_requiretls_delivers(self):
        mx = self.mx('dane-match', requiretls=True)
        qid, mid, rcpt = self.send_rtls('dane-match')
        env = self.assert_dane_delivered('dane-match', mx, qid, mid, rcpt)
        self.assertIn('REQUIRETLS', env['mail_options'])

    def test_dane_verified_mx_without_requiretls_bounces(self):
        mx = self.mx('dane-match')
        snd = self.sender_mx()
        qid, mid, rcpt = self.send_rtls('dane-match')
        # DANE did verify it (tls=dane): the missing extension is the cause.
        self.tls_line('dane-match', 'Verified')
        self.assert_bounced('dane-match', snd, qid, mid, rcpt, 'dane',
                            'REQUIRETLS: host %s[%s] does not offer '
                            'REQUIRETLS' % DESTS['dane-match'][1:])
        self.assert_tls_but_no_mail(mx, mid)

    def test_insecure_mx_rrset_to_dane_host_bounces(self):
        # The host's TLSA records match, but the MX RRset that named it is
        # unsigned: Trusted, not Verified, so not enough for REQUIRETLS.
        # The relay knows before connecting: it bounces without a session.
        mx = self.mx('pointer', requiretls=True)
        snd = self.sender_mx()
        qid, mid, rcpt = self.send_rtls('pointer')
        self.assert_bounced('pointer', snd, qid, mid, rcpt, None,
                            'REQUIRETLS: the TLS policy of %s (level dane) '
                            'cannot verify %s' % DESTS['pointer'][:2])
        self.assert_no_session(mx, mid)
        self.assert_no_verified('pointer')

    def test_dane_without_tlsa_bounces(self):
        # `dane` with no TLSA records is encrypt: never verified.
        mx = self.mx('dane-notlsa', requiretls=True)
        snd = self.sender_mx()
        qid, mid, rcpt = self.send_rtls('dane-notlsa')
        self.assert_bounced('dane-notlsa', snd, qid, mid, rcpt, None,
                            'REQUIRETLS: the TLS policy of %s (level dane) '
                            'cannot verify %s' % DESTS['dane-notlsa'][:2])
        self.assert_no_session(mx, mid)
        self.assert_no_verified('dane-notlsa')


if __name__ == '__main__':
    require_peers()
    if not os.access(OPENSSL, os.X_OK):
        sys.stderr.write('openssl not installed; skipping\n')
        sys.exit(77)
    unittest.main(verbosity=2)
