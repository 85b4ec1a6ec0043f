"""MTA-STS (RFC 8461) for outbound delivery, end to end.

The peers are real: a DNSSEC-signed Knot DNS zone `test.` (dnszone.py) with,
for each destination DOMAIN,

    DOMAIN            MX    10 mx1.DOMAIN
    mx1.DOMAIN        A     127.0.0.y          (an aiosmtpd MX, mxpeer.py)
    _mta-sts.DOMAIN   TXT   "v=STSv1; id=N"
    mta-sts.DOMAIN    A     127.0.0.x          (stsserver.py on port 443)

one MTA-STS policy host per domain (Python http.server + ssl, in a
subprocess, with a certificate for mta-sts.DOMAIN) and one MX per domain,
all on one common port (the relay's remote_port).  Every certificate comes
from one test CA, the relay's tls_ca_file (for the MX hosts and for the
policy fetch).  The relay runs with default_tls_level = encrypt, so what
MTA-STS adds (or fails to add) is visible: `tls=mta-sts` and `Verified`,
or a hold, against `tls=trusted` under plain encrypt.

Each policy that must NOT be applied (fetch failures, mode none, mta_sts =
no, precedence) is a trap: an enforce policy that does not list the MX (or
an MX with a certificate for another name), which would hold the mail were
it applied.  Each delivery therefore shows the policy was ignored, and each
hold names the check that refused the peer.

    FixtureCheck   the fixtures alone (pass without MTA-STS in the relay):
                   the policy hosts with Python's ssl against the test CA,
                   each switch, the zone's records, the MX certificates
                   with `openssl s_client`, the TLSA record
    Enforce        listed MX + valid certificate -> Verified, tls=mta-sts;
                   unlisted MX -> held, no connection; wrong name -> held
    Testing        the same failures deliver and are logged for TLS-RPT
    ModeNone, Disabled (mta_sts = no)
    Cache          cached across the policy host's loss and a restart (in
                   LMDB), refetched on a new id, dropped when expired
    Precedence     a policy file entry, then DANE, beat MTA-STS (each with
                   a control in the same relay: nomatch.test, held)
    FetchFailures  404, redirect, text/html, 1 MiB, a stalled server, an
                   invalid body, a policy host with a certificate for
                   another name: delivered as without a policy, logged

TLS-RPT (RFC 8460): the deliveries of Enforce (a success), Testing (the
certificate for another name) and FetchFailures (404, invalid body, the
policy host's certificate) are checked in `tlsrpt show --day TODAY D`:
policy type and strings, summary, and one failure detail with its result
type (certificate-host-mismatch; sts-policy-fetch-error,
sts-policy-invalid or sts-webpki-invalid under no-policy-found).

Every MX logs each TCP connection (mx.py --log-connect), so "held without
connecting" is an observation, not an absence of mail.

Log lines the relay writes (the contract of this feature):
    mta-sts: DOMAIN: policy id ID fetched (mode MODE, max_age N)
    mta-sts: DOMAIN: policy fetch failed (sts-policy-fetch-error): REASON
    mta-sts: DOMAIN: policy invalid (sts-policy-invalid): REASON
    mta-sts: DOMAIN: testing policy not met: REASON
and holds under enforce have a delay_reason containing
    MTA-STS policy of DOMAIN (enforce): MX host mx1.DOMAIN does not match
    MTA-STS policy of DOMAIN (enforce): certificate not valid for mx1.DOMAIN
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import datetime
import json
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
import stsserver  # noqa: E402
from mxpeer import MX  # noqa: E402
from stsserver import StsServer  # noqa: E402
from test_delivery import (common_port, message, msg_id_of,  # noqa: E402
                           require_peers)

DELIVERY_TIMEOUT = 20.0   # the fetch, then the delivery: well under this
HOLD_TIMEOUT = 20.0
REFETCH_TIMEOUT = 30.0    # TXT TTL (5 s) + a retry (<= 2 s), with margin
REPORT_TIMEOUT = 20.0     # TLS-RPT counts are written every 5 s
SLOW_FETCH_TIMEOUT = 75.0  # the relay bounds a stalled fetch within this
SENDER = 'alice@client.test'
OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'

# key: (domain, policy host address, MX address)
DESTS = {
    'fixture': ('fixture.test', '127.0.0.150', '127.0.0.200'),
    'enforce': ('enforce.test', '127.0.0.151', '127.0.0.201'),
    'nomatch': ('nomatch.test', '127.0.0.152', '127.0.0.202'),
    'wrongcert': ('wrongcert.test', '127.0.0.153', '127.0.0.203'),
    'testing-nomatch': ('testing-nomatch.test', '127.0.0.154',
                        '127.0.0.204'),
    'testing-wrongcert': ('testing-wrongcert.test', '127.0.0.155',
                          '127.0.0.205'),
    'none': ('none.test', '127.0.0.156', '127.0.0.206'),
    'disabled': ('disabled.test', '127.0.0.157', '127.0.0.207'),
    'cache': ('cache.test', '127.0.0.158', '127.0.0.208'),
    'expired': ('expired.test', '127.0.0.159', '127.0.0.209'),
    'file': ('file.test', '127.0.0.160', '127.0.0.210'),
    'dane': ('dane.test', '127.0.0.161', '127.0.0.211'),
    'f404': ('f404.test', '127.0.0.162', '127.0.0.212'),
    'fredirect': ('fredirect.test', '127.0.0.163', '127.0.0.213'),
    'fhtml': ('fhtml.test', '127.0.0.164', '127.0.0.214'),
    'fbig': ('fbig.test', '127.0.0.165', '127.0.0.215'),
    'fslow': ('fslow.test', '127.0.0.166', '127.0.0.216'),
    'finvalid': ('finvalid.test', '127.0.0.167', '127.0.0.217'),
    'fwebpki': ('fwebpki.test', '127.0.0.168', '127.0.0.219'),
}
# A domain without MTA-STS (no TXT record, no policy host).
PLAIN = ('plain.test', '127.0.0.218')
MX_HOSTS = sorted({d[2] for d in DESTS.values()} | {PLAIN[1]})

# A certificate for a name no policy lists: CA-signed, so only the name
# check can refuse it.
OTHER_NAME = 'mx.elsewhere.test'

TLS_ENCRYPT = r'(?:trusted|untrusted)'          # default_tls_level encrypt
TLS_NOT_STS = r'(?!mta-sts\b|dane\b)[a-z]+'     # anything but a verified one


def domain(key):
    return DESTS[key][0]


def mx_host(key):
    return 'mx1.' + domain(key)


def sts_host(key):
    return 'mta-sts.' + domain(key)


def policy(mode, mx, max_age=86400):
    """A policy body (CRLF lines) in the order of RFC 8461's example."""
    lines = ['version: STSv1', 'mode: %s' % mode]
    lines += ['mx: %s' % m for m in mx]
    lines.append('max_age: %d' % max_age)
    return ''.join(l + '\r\n' for l in lines).encode()


def listed(key):
    """The mx: lines that list the domain's MX host."""
    return [mx_host(key)]


def unlisted(key):
    """mx: lines that do not match mx1.DOMAIN: another host, and a
    wildcard one label too deep (RFC 8461 4.1: *.mx1.D is not mx1.D)."""
    return ['mx9.' + domain(key), '*.' + mx_host(key)]


def trap(key):
    """An enforce policy that would hold mail to the domain's MX."""
    return policy('enforce', unlisted(key))


# -- module fixture: certificates, one zone, one MX port ---------------------

FIX = None


class Fixture:
    def __init__(self):
        self.zone = None
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-stscert-')
        try:
            self.port = common_port(MX_HOSTS)
            d = self.dir
            self.ca = certs.default_ca(d)
            mk = certs.make_cert
            self.sts_cert = {k: mk(d, sts_host(k), name='sts-' + k)
                             for k in DESTS}
            self.mx_cert = {k: mk(d, mx_host(k), name='mx-' + k)
                            for k in DESTS}
            self.mx_cert['plain'] = mk(d, 'mx1.' + PLAIN[0], name='mx-plain')
            self.wrong_cert = mk(d, OTHER_NAME, name='wrongname')
            self.ids = {k: '20240601%02d' % i
                        for i, k in enumerate(sorted(DESTS))}
            self.zone = dnszone.DnsZone(self.records())
        except BaseException:
            self.close()
            raise

    def records(self):
        recs = []
        for k, (dom, sts_ip, mx_ip) in sorted(DESTS.items()):
            recs += [
                (dom + '.', 'MX', '10 %s.' % mx_host(k)),
                (mx_host(k) + '.', 'A', mx_ip),
                ('_mta-sts.%s.' % dom, 'TXT', '"v=STSv1; id=%s"' % self.ids[k]),
                (sts_host(k) + '.', 'A', sts_ip),
            ]
        recs += [(PLAIN[0] + '.', 'MX', '10 mx1.%s.' % PLAIN[0]),
                 ('mx1.%s.' % PLAIN[0], 'A', PLAIN[1])]
        # DANE for the MX of dane.test (DANE-EE, SPKI, SHA-256).
        recs.append((dnszone.tlsa_owner(mx_host('dane'), self.port), 'TLSA',
                     dnszone.tlsa_rdata(self.mx_cert['dane'], 3, 1, 1)))
        return recs

    def set_id(self, key, new_id):
        """Publish a new id in _mta-sts.DOMAIN; returns once served."""
        self.ids[key] = new_id
        self.zone.set_records(self.records())

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


class StsBase(unittest.TestCase):
    relay = None

    def start_relay(self, policy_lines=(), **keys):
        """A relay for this test (stopped at cleanup); a policy file with
        policy_lines, checked valid with `tlsrelay policy check` first."""
        k = dict(FIX.zone.relay_keys())
        k.update({'remote_port': FIX.port,
                  'default_tls_level': 'encrypt',
                  'tls_ca_file': FIX.ca.cert,
                  'tls_loglevel': 1,
                  'retry_min': '1s', 'retry_max': '2s'})
        k.update(keys)
        relay = harness.Relay(self, start=False, **k)
        path = relay.keys['policy_file']
        with open(path, 'w') as f:
            f.write('# test_mta_sts.py\n' +
                    ''.join(l + '\n' for l in policy_lines))
        r = harness.run([harness.BIN, 'policy', 'check', path],
                        env=harness.base_env())
        if r.returncode != 0:
            raise AssertionError('test policy file is invalid: %s' % r.stderr)
        relay.start()
        self.relay = relay
        return relay

    def sts(self, key, body, behaviour='ok', status=None):
        """Start the policy host of DESTS[key]; stopped at cleanup."""
        srv = StsServer(self, sts_host(key), DESTS[key][1], FIX.sts_cert[key])
        srv.start(body=body, behaviour=behaviour, status=status)
        return srv

    def mx(self, key, cert=None, **opts):
        """Start the MX of DESTS[key] (default certificate: CA-signed for
        mx1.DOMAIN; 'wrong': CA-signed for another name), logging every
        connection; stopped at cleanup."""
        if key == 'plain':
            ip, host = PLAIN[1], 'mx1.' + PLAIN[0]
        else:
            ip, host = DESTS[key][2], mx_host(key)
        if cert is None:
            cert = FIX.mx_cert[key]
        elif cert == 'wrong':
            cert = FIX.wrong_cert
        m = MX(self)
        m.start(ip, FIX.port, hostname=host, tls_cert=cert.cert,
                tls_key=cert.key, log_connect=True, **opts)
        return m

    def send(self, key, local='bob'):
        """Submit one message to local@DOMAIN; (queue ID, Message-ID,
        recipient)."""
        dom = PLAIN[0] if key == 'plain' else domain(key)
        rcpt = '%s@%s' % (local, dom)
        data, mid = message(SENDER, [rcpt], subject='mta-sts ' + key)
        code, reply, qid = harness.smtp_send(self.relay, SENDER, [rcpt], data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def forget(self, qid):
        """Cleanup: drop a held message so that its retries stop."""
        relay = self.relay
        self.addCleanup(lambda: relay.alive() and
                        relay.cli('queue', 'delete', qid))

    def log_tail(self):
        return self.relay.log_text()[-5000:]

    def wait_log(self, regex, timeout=DELIVERY_TIMEOUT, since=0):
        """The first match of regex in the relay's log (from offset since),
        waiting up to timeout; fails with the log when none came."""
        rx = re.compile(regex, re.M)
        m = harness.wait_for(lambda: rx.search(self.relay.log_text()[since:]),
                             timeout, 0.1)
        if not m:
            self.fail('no log line matching %r within %.0f s; log:\n%s'
                      % (regex, timeout, self.log_tail()))
        return m

    def assert_not_logged(self, regex):
        self.assertIsNone(re.search(regex, self.relay.log_text(), re.M),
                          'unexpected log line matching %r; log:\n%s'
                          % (regex, self.log_tail()))

    # -- log lines ------------------------------------------------------------

    @staticmethod
    def fetched_rx(key, mode='enforce', max_age=86400, pid=None):
        return (r'mta-sts: %s: policy id %s fetched \(mode %s, max_age %d\)'
                % (re.escape(domain(key)), re.escape(pid or FIX.ids[key]),
                   mode, max_age))

    @staticmethod
    def fetch_failed_rx(key, rtype='sts-policy-fetch-error'):
        return (r'mta-sts: %s: policy fetch failed \(%s\)'
                r': \S.*$' % (re.escape(domain(key)), rtype))

    @staticmethod
    def invalid_rx(key):
        return (r'mta-sts: %s: policy invalid \(sts-policy-invalid\): \S.*$'
                % re.escape(domain(key)))

    @staticmethod
    def not_met_rx(key):
        return (r'mta-sts: %s: testing policy not met: \S.*$'
                % re.escape(domain(key)))

    @staticmethod
    def no_match_reason(key):
        return ('MTA-STS policy of %s (enforce): MX host %s does not match'
                % (domain(key), mx_host(key)))

    @staticmethod
    def bad_cert_reason(key):
        return ('MTA-STS policy of %s (enforce): certificate not valid for %s'
                % (domain(key), mx_host(key)))

    # -- TLS-RPT ----------------------------------------------------------------

    def tlsrpt_policy(self, key, ok, fail):
        """The one policy of today's TLS-RPT report of DESTS[key], once
        its summary counts ok successful and fail failed sessions (the
        counts reach the queue every 5 s); fails with the report and log."""
        day = datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d')
        last = {}

        def got():
            r = self.relay.cli('tlsrpt', 'show', '--day', day, domain(key))
            last['out'] = r.stdout + r.stderr
            if r.returncode != 0:
                return None
            pols = json.loads(r.stdout)['policies']
            if len(pols) == 1 and pols[0]['summary'] == {
                    'total-successful-session-count': ok,
                    'total-failure-session-count': fail}:
                return pols[0]
            return None
        pol = harness.wait_for(got, REPORT_TIMEOUT, 0.3)
        if not pol:
            self.fail('no TLS-RPT report of %s with %d/%d sessions within '
                      '%.0f s: %s\nlog:\n%s' % (domain(key), ok, fail,
                                                REPORT_TIMEOUT, last.get('out'),
                                                self.log_tail()))
        self.assertEqual(pol['policy']['policy-domain'], domain(key))
        self.assertEqual(pol['policy']['mx-host'], [mx_host(key)])
        return pol

    def assert_failure_detail(self, pol, key, rtype):
        """pol has exactly one failure detail: one session to the MX of
        key that failed with result type rtype."""
        self.assertEqual(pol.get('failure-details'), [{
            'result-type': rtype,
            'sending-mta-ip': '127.0.0.1',
            'receiving-mx-hostname': mx_host(key),
            'receiving-ip': DESTS[key][2],
            'failed-session-count': 1}], pol)

    def assert_fetch_failure_reported(self, key, rtype):
        """The session went without a policy and is a failure of the
        policy that could not be had (RFC 8460 4.3.2.2)."""
        pol = self.tlsrpt_policy(key, 0, 1)
        self.assertEqual(pol['policy']['policy-type'], 'no-policy-found')
        self.assertNotIn('policy-string', pol['policy'])
        self.assert_failure_detail(pol, key, rtype)

    # -- outcomes -------------------------------------------------------------

    def wait_at_mx(self, mx, qid, mid, timeout=DELIVERY_TIMEOUT,
                   was_held=False):
        """The (envelope, content) stored at mx for Message-ID mid; fails
        at once when the relay defers the message instead (unless it
        was_held before: then only the timeout ends the wait)."""
        state = {}

        def arrived():
            for env, content in mx.messages():
                if msg_id_of(content) == mid:
                    return env, content
            if was_held:
                return None
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

    def assert_delivered(self, mx, key, qid, mid, rcpt, tls, trust=None,
                         timeout=DELIVERY_TIMEOUT, was_held=False):
        """mid reached mx over TLS for rcpt only; the relay logged a
        status=sent line for it with tls= matching tls (a regex) and, when
        trust is given, `TRUST TLS connection established to HOST[IP]:PORT`;
        qid left the queue.  Returns the envelope."""
        env, _ = self.wait_at_mx(mx, qid, mid, timeout, was_held)
        self.assertEqual(env['rcpt_tos'], [rcpt], env)
        self.assertEqual(env['mail_from'], SENDER, env)
        self.assertIs(env['tls'], True, env)
        host, ip = env['mx'], mx.host
        if trust is not None:
            self.wait_log(r'\b%s TLS connection established to %s\[%s\]:%d: '
                          % (trust, re.escape(host), re.escape(ip), FIX.port))
        self.wait_log(r'%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, '
                      r'tls=%s, dsn=2\.\d{1,3}\.\d{1,3}, status=sent \('
                      % (qid, re.escape(rcpt), re.escape(host),
                         re.escape(ip), FIX.port, tls))
        if not harness.wait_for(lambda: self.relay.find(qid) is None,
                                DELIVERY_TIMEOUT):
            self.fail('%s still queued after delivery: %s'
                      % (qid, self.relay.find(qid)))
        return env

    def assert_held(self, qid, rcpt, *reasons, timeout=HOLD_TIMEOUT):
        """qid is deferred with a delay_reason for rcpt (its only
        recipient) containing every one of reasons; returns the reason."""
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

    def wait_deferrals(self, qid, n, since=0, timeout=HOLD_TIMEOUT):
        """Until the log (from offset since) has n status=deferred lines
        for qid: n delivery attempts were made and refused."""
        rx = re.compile(r'%s: to=<[^>]*>, relay=.*status=deferred \(' % qid,
                        re.M)
        ok = harness.wait_for(
            lambda: len(rx.findall(self.relay.log_text()[since:])) >= n,
            timeout, 0.1)
        if not ok:
            self.fail('fewer than %d deferrals of %s within %.0f s; log:\n%s'
                      % (n, qid, timeout, self.log_tail()))

    def assert_no_connection(self, mx, mid):
        """mid was not stored and the MX never saw a connection."""
        self.assertEqual([c for _, c in mx.messages() if msg_id_of(c) == mid],
                         [], 'held message reached the MX')
        self.assertEqual(mx.events(), [], 'the relay connected to the MX of '
                         'a host the policy does not list')

    def assert_nothing_delivered(self, mx, mid):
        """mid was not stored and no mail transaction reached the MX."""
        self.assertEqual([c for _, c in mx.messages() if msg_id_of(c) == mid],
                         [], 'held message reached the MX')
        self.assertEqual([e for e in mx.events() if e['event'] in
                          ('mail', 'rcpt', 'data')], [],
                         'a transaction reached the MX of a held domain')

    def assert_ignored_policy(self, key, srv, mx, qid, mid, rcpt):
        """Delivered under default_tls_level (encrypt), as if the domain
        had no policy; the relay is still running."""
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT)
        self.assert_not_logged(r'mta-sts: %s: policy id \S+ fetched'
                               % re.escape(domain(key)))
        self.assertTrue(srv.gets(), 'the policy was never asked for')
        self.assertTrue(self.relay.alive(), 'the relay died')


# -- the fixtures, checked without the relay ----------------------------------


class FixtureCheck(StsBase):
    """Passes without any MTA-STS support in the relay."""

    KEY = 'fixture'

    def fetch(self, host=None, path=stsserver.POLICY_PATH, **kw):
        return stsserver.fetch(DESTS[self.KEY][1], host or sts_host(self.KEY),
                               FIX.ca.cert, path=path, **kw)

    def test_policy_host_serves_the_body_with_its_certificate(self):
        body = policy('enforce', listed(self.KEY))
        self.assertEqual(body, b'version: STSv1\r\nmode: enforce\r\n'
                         b'mx: mx1.fixture.test\r\nmax_age: 86400\r\n')
        srv = self.sts(self.KEY, body)
        # Python's ssl, against the test CA, for mta-sts.DOMAIN: chain and
        # name verified (create_default_context checks both).
        status, headers, got = self.fetch()
        self.assertEqual(status, 200)
        self.assertEqual(headers['content-type'], 'text/plain')
        self.assertEqual(got, body)
        # The same certificate is refused for any other name.
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.fetch(host='mta-sts.other.test')
        # Recorded: path, Host header and SNI of the good request (the
        # refused one ended in the handshake, before any request).
        reqs = srv.requests()
        self.assertEqual(len(reqs), 1, reqs)
        self.assertEqual(reqs[0]['path'], '/.well-known/mta-sts.txt')
        self.assertEqual(reqs[0]['host'], sts_host(self.KEY))
        self.assertEqual(reqs[0]['sni'], sts_host(self.KEY))
        self.assertEqual(len(srv.gets()), 1)
        # Other paths: 404.
        self.assertEqual(self.fetch(path='/moved')[0], 404)

    def test_switches(self):
        body = trap(self.KEY)
        srv = self.sts(self.KEY, body, behaviour='status', status=404)
        status, headers, got = self.fetch()
        self.assertEqual((status, got), (404, body))

        srv.set(behaviour='redirect')
        status, headers, _ = self.fetch()
        self.assertEqual(status, 301)
        self.assertEqual(headers['location'],
                         'https://%s/moved' % sts_host(self.KEY))
        self.assertEqual(self.fetch(path='/moved')[::2], (200, body))

        srv.set(behaviour='html')
        status, headers, got = self.fetch()
        self.assertEqual((status, headers['content-type'], got),
                         (200, 'text/html', body))

        srv.set(behaviour='big')
        status, headers, got = self.fetch()
        self.assertEqual(status, 200)
        self.assertEqual(headers['content-type'], 'text/plain')
        self.assertEqual(int(headers['content-length']), 1024 * 1024)
        self.assertEqual(len(got), 1024 * 1024)
        self.assertTrue(got.startswith(body))
        pad = got[len(body):].split(b'\r\n')
        self.assertEqual(pad[-1], b'')
        self.assertEqual([l for l in pad[:-1] if not l.startswith(b'pad: ')],
                         [])

        # Slow: the headers come, the body never does.
        srv.set(behaviour='slow')
        t0 = time.monotonic()
        with self.assertRaises(socket.timeout):
            self.fetch(timeout=2)
        self.assertLess(time.monotonic() - t0, 10)
        status, headers, _ = self.fetch(timeout=2, read_body=False)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers['content-length']), len(body))
        ends = harness.wait_for(lambda: [e for e in srv.events()
                                         if e['event'] == 'stall-end'], 5)
        self.assertTrue(ends, srv.events())
        self.assertEqual(ends[0]['why'], 'client closed')

        # A new body at runtime; stop and start again on the same address
        # (the request log goes on).
        srv.set(body=b'version: STSv1\r\nmode: testing\r\n', behaviour='ok')
        self.assertEqual(self.fetch()[2], b'version: STSv1\r\nmode: testing\r\n')
        n = len(srv.gets())
        srv.stop()
        with self.assertRaises(OSError):
            self.fetch(timeout=2)
        srv.start()
        self.assertEqual(self.fetch()[0], 200)
        self.assertEqual(len(srv.gets()), n + 1)

    def test_stalled_handler_ends_when_the_server_stops(self):
        srv = self.sts(self.KEY, b'x', behaviour='slow')
        s = socket.create_connection((DESTS[self.KEY][1], 443), 5)
        ctx = ssl.create_default_context(cafile=FIX.ca.cert)
        t = ctx.wrap_socket(s, server_hostname=sts_host(self.KEY))
        try:
            t.sendall(b'GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: %s\r\n'
                      b'\r\n' % sts_host(self.KEY).encode())
            t.settimeout(5)
            self.assertTrue(t.recv(4096).startswith(b'HTTP/1.1 200'))
            srv.stop()
        finally:
            t.close()
        self.assertEqual([e['why'] for e in srv.events()
                          if e['event'] == 'stall-end'], ['stopped'])

    def test_zone_answers(self):
        z = FIX.zone
        for key in sorted(DESTS):
            with self.subTest(key=key):
                self.assertEqual(z.query(domain(key), 'MX'),
                                 ['10 %s.' % mx_host(key)])
                self.assertEqual(z.query(mx_host(key), 'A'), [DESTS[key][2]])
                self.assertEqual(z.query('_mta-sts.' + domain(key), 'TXT'),
                                 ['"v=STSv1; id=%s"' % FIX.ids[key]])
                self.assertEqual(z.query(sts_host(key), 'A'), [DESTS[key][1]])
        self.assertEqual(z.query('_mta-sts.' + PLAIN[0], 'TXT'), [])
        tlsa = [rr.split() for rr in z.query(
            dnszone.tlsa_owner(mx_host('dane'), FIX.port), 'TLSA')]
        self.assertEqual([f[:3] + [''.join(f[3:]).upper()] for f in tlsa],
                         [dnszone.tlsa_rdata(FIX.mx_cert['dane'], 3, 1, 1)
                          .split()])
        # A new id is served once set_id() returns.
        old = FIX.ids[self.KEY]
        try:
            FIX.set_id(self.KEY, 'changed1')
            self.assertEqual(z.query('_mta-sts.' + domain(self.KEY), 'TXT'),
                             ['"v=STSv1; id=changed1"'])
        finally:
            FIX.set_id(self.KEY, old)
        # The answers are DNSSEC-signed.
        r = subprocess.run([dnszone.KDIG, '@127.0.0.1', '-p', str(z.port),
                            '+dnssec', '+timeout=2', 'TXT',
                            '_mta-sts.' + domain(self.KEY)],
                           stdout=subprocess.PIPE, encoding='utf-8',
                           timeout=10)
        self.assertRegex(r.stdout, r'\sRRSIG\s+TXT\s')

    def openssl_verify(self, ip, name):
        """(exit status, output) of STARTTLS with the MX at ip, verified
        against the test CA for name."""
        r = subprocess.run(
            [OPENSSL, 's_client', '-connect', '%s:%d' % (ip, FIX.port),
             '-starttls', 'smtp', '-servername', name, '-brief',
             '-verify_return_error', '-CAfile', FIX.ca.cert,
             '-verify_hostname', name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, encoding='utf-8', errors='replace',
            timeout=30)
        return r.returncode, r.stdout

    def test_mx_certificates(self):
        key = self.KEY
        mx = self.mx(key)
        rc, out = self.openssl_verify(DESTS[key][2], mx_host(key))
        self.assertEqual(rc, 0, out)
        self.assertIn('Verification: OK', out)
        # The MX logged the connection (before EHLO): what
        # assert_no_connection() relies on.
        self.assertEqual(mx.events()[0]['event'], 'connect', mx.events())
        mx.close()
        mx = self.mx(key, 'wrong')
        rc, out = self.openssl_verify(DESTS[key][2], mx_host(key))
        self.assertNotEqual(rc, 0, out)
        self.assertIn('hostname mismatch', out)
        rc, out = self.openssl_verify(DESTS[key][2], OTHER_NAME)
        self.assertEqual(rc, 0, out)
        mx.close()

    def test_tlsa_record_matches_the_dane_mx(self):
        mx = self.mx('dane')
        rrs = FIX.zone.query(dnszone.tlsa_owner(mx_host('dane'), FIX.port),
                             'TLSA')
        args = [OPENSSL, 's_client', '-connect',
                '%s:%d' % (DESTS['dane'][2], FIX.port), '-starttls', 'smtp',
                '-brief', '-verify_return_error',
                '-dane_tlsa_domain', mx_host('dane')]
        for rr in rrs:
            f = rr.split()
            args += ['-dane_tlsa_rrdata', ' '.join(f[:3] + [''.join(f[3:])])]
        r = subprocess.run(args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           encoding='utf-8', errors='replace', timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn('matched EE certificate at depth 0', r.stdout)
        mx.close()


# -- enforce ------------------------------------------------------------------


class Enforce(StsBase):

    def test_listed_mx_with_valid_certificate_is_verified(self):
        key = 'enforce'
        srv = self.sts(key, policy('enforce', listed(key)))
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, 'mta-sts', 'Verified')
        self.wait_log(self.fetched_rx(key))
        gets = srv.gets()
        self.assertEqual(len(gets), 1, gets)
        self.assertEqual(gets[0]['host'], sts_host(key))
        self.assertEqual(gets[0]['sni'], sts_host(key))
        # TLS-RPT: one successful session under the policy.
        pol = self.tlsrpt_policy(key, 1, 0)
        self.assertEqual(pol['policy']['policy-type'], 'sts')
        self.assertEqual(pol['policy']['policy-string'], [
            'version: STSv1', 'mode: enforce', 'max_age: 86400',
            'mx: ' + mx_host(key)])
        self.assertNotIn('failure-details', pol)

    def test_unlisted_mx_is_held_without_connecting(self):
        key = 'nomatch'
        self.sts(key, policy('enforce', unlisted(key)))
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.forget(qid)
        self.assert_held(qid, rcpt, self.no_match_reason(key))
        self.wait_log(self.fetched_rx(key))
        self.wait_log(r'%s: to=<%s>, relay=none, .*status=deferred \(.*%s'
                      % (qid, re.escape(rcpt),
                         re.escape(self.no_match_reason(key))))
        # A retry later, still no connection.
        self.wait_deferrals(qid, 2)
        self.assert_no_connection(mx, mid)

    def test_certificate_for_another_name_is_held(self):
        key = 'wrongcert'
        self.sts(key, policy('enforce', listed(key)))
        mx = self.mx(key, 'wrong')
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.forget(qid)
        self.assert_held(qid, rcpt, self.bad_cert_reason(key))
        self.wait_log(self.fetched_rx(key))
        self.assert_nothing_delivered(mx, mid)
        self.assert_not_logged(r'Verified TLS connection established to '
                               r'\S+\[%s\]' % re.escape(DESTS[key][2]))


# -- testing ------------------------------------------------------------------


class Testing(StsBase):

    def test_unlisted_mx_delivers_and_is_logged(self):
        key = 'testing-nomatch'
        self.sts(key, policy('testing', unlisted(key)))
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_NOT_STS)
        self.wait_log(self.fetched_rx(key, 'testing'))
        self.wait_log(self.not_met_rx(key))

    def test_certificate_for_another_name_delivers_and_is_logged(self):
        key = 'testing-wrongcert'
        self.sts(key, policy('testing', listed(key)))
        mx = self.mx(key, 'wrong')
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_NOT_STS)
        self.wait_log(self.fetched_rx(key, 'testing'))
        self.wait_log(self.not_met_rx(key))
        self.assert_not_logged(r'Verified TLS connection established to '
                               r'\S+\[%s\]' % re.escape(DESTS[key][2]))
        # TLS-RPT: a failure under the policy, although the mail went.  A
        # trusted certificate for another name is RFC 8460 4.3.1's
        # certificate-host-mismatch (sts-webpki-invalid is about the
        # policy host's certificate, 4.3.2.2).
        pol = self.tlsrpt_policy(key, 0, 1)
        self.assertEqual(pol['policy']['policy-type'], 'sts')
        self.assertEqual(pol['policy']['policy-string'], [
            'version: STSv1', 'mode: testing', 'max_age: 86400',
            'mx: ' + mx_host(key)])
        self.assert_failure_detail(pol, key, 'certificate-host-mismatch')


# -- mode none; mta_sts = no -------------------------------------------------


class ModeNone(StsBase):

    def test_mode_none_delivers_as_without_policy(self):
        key = 'none'
        # mx lines that would hold the mail, were the mode ignored.
        self.sts(key, policy('none', unlisted(key)))
        mx = self.mx(key, 'wrong')
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT)
        self.wait_log(self.fetched_rx(key, 'none'))
        self.assert_not_logged(self.not_met_rx(key))


class Disabled(StsBase):

    def test_mta_sts_no_never_fetches(self):
        key = 'disabled'
        srv = self.sts(key, trap(key))
        mx = self.mx(key)
        self.start_relay(mta_sts='no')
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT)
        self.assertEqual(srv.requests(), [])
        self.assert_not_logged(r'mta-sts: ')


# -- the cache ----------------------------------------------------------------


class Cache(StsBase):

    def test_cached_across_server_loss_and_restart_refetched_on_new_id(self):
        key = 'cache'
        srv = self.sts(key, policy('enforce', listed(key)))
        mx = self.mx(key)
        self.start_relay()
        old_id = FIX.ids[key]
        self.addCleanup(lambda: FIX.ids[key] != old_id and
                        FIX.set_id(key, old_id))

        # 1. Fetched once, delivered under it.
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, 'mta-sts', 'Verified')
        self.wait_log(self.fetched_rx(key))
        self.assertEqual(len(srv.gets()), 1)

        # 2. The policy host is gone, the MX shows a certificate for
        # another name: the cached policy holds the mail (plain encrypt
        # would deliver it, Trusted).
        srv.stop()
        mx.close()
        mx2 = self.mx(key, 'wrong')
        qid2, mid2, rcpt2 = self.send(key, 'carol')
        self.forget(qid2)
        self.assert_held(qid2, rcpt2, self.bad_cert_reason(key))
        self.assert_nothing_delivered(mx2, mid2)

        # 3. The policy host is back (a fetch would show in its log); the
        # relay restarts on the same queue_dir: the policy comes from LMDB,
        # unchanged id, so no fetch, and the mail is still held.
        srv.start()
        since = len(self.relay.log_text())
        self.relay.restart()
        self.wait_deferrals(qid2, 2, since=since)
        self.assert_held(qid2, rcpt2, self.bad_cert_reason(key))
        self.assert_nothing_delivered(mx2, mid2)
        self.assertEqual(len(srv.gets()), 1, srv.gets())
        self.assert_not_logged(self.fetch_failed_rx(key))

        # 4. A new id: the relay fetches again when the mail is retried.
        # The new policy (testing) then lets the held mail go.
        srv.set(body=policy('testing', listed(key)))
        FIX.set_id(key, 'refetch2')
        if not harness.wait_for(lambda: len(srv.gets()) >= 2,
                                REFETCH_TIMEOUT, 0.1):
            self.fail('no second GET within %.0f s of the id change; '
                      'requests: %s\nlog:\n%s'
                      % (REFETCH_TIMEOUT, srv.requests(), self.log_tail()))
        self.wait_log(self.fetched_rx(key, 'testing', pid='refetch2'))
        self.assert_delivered(mx2, key, qid2, mid2, rcpt2, TLS_NOT_STS,
                              was_held=True)
        self.wait_log(self.not_met_rx(key))
        self.assertEqual(len(srv.gets()), 2, srv.gets())

    def test_expired_policy_is_dropped_when_it_cannot_be_fetched(self):
        key = 'expired'
        srv = self.sts(key, policy('enforce', listed(key), max_age=2))
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, 'mta-sts', 'Verified')
        self.wait_log(self.fetched_rx(key, max_age=2))

        # Down, and the MX's certificate would now fail the policy.
        srv.stop()
        last = max(g['t'] for g in srv.gets())
        mx.close()
        mx2 = self.mx(key, 'wrong')
        # max_age 2: let 3 s pass since the last fetch.
        time.sleep(max(0.0, last + 3.0 - time.time()))
        qid2, mid2, rcpt2 = self.send(key, 'carol')
        self.assert_delivered(mx2, key, qid2, mid2, rcpt2, TLS_ENCRYPT)
        self.wait_log(self.fetch_failed_rx(key))


# -- precedence ---------------------------------------------------------------


class Precedence(StsBase):
    """Each test has a control: the same kind of policy for a domain
    without the higher rule (nomatch.test) holds its mail in the same
    relay, so a delivery here is the precedence, not a relay that ignores
    MTA-STS."""

    def control(self):
        key = 'nomatch'
        self.sts(key, trap(key))
        return self.mx(key)

    def assert_control_held(self, mx):
        qid, mid, rcpt = self.send('nomatch')
        self.forget(qid)
        self.assert_held(qid, rcpt, self.no_match_reason('nomatch'))
        self.assert_no_connection(mx, mid)

    def test_policy_file_entry_beats_mta_sts(self):
        key = 'file'
        self.sts(key, trap(key))
        mx = self.mx(key)
        ctl = self.control()
        self.start_relay(['%s encrypt' % domain(key)])
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT)
        self.assert_control_held(ctl)

    def test_dane_beats_mta_sts(self):
        key = 'dane'
        self.sts(key, trap(key))
        mx = self.mx(key)
        ctl = self.control()
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, 'dane', 'Verified')
        self.assert_control_held(ctl)


# -- fetch failures -----------------------------------------------------------


class FetchFailures(StsBase):
    """Each policy host answers with something RFC 8461 3.3 says is no
    policy; what it carries would hold the mail, were it taken."""

    def failed_fetch(self, key, behaviour, status=None):
        srv = self.sts(key, trap(key), behaviour=behaviour, status=status)
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_ignored_policy(key, srv, mx, qid, mid, rcpt)
        self.wait_log(self.fetch_failed_rx(key))
        return srv

    def test_404(self):
        self.failed_fetch('f404', 'status', 404)
        self.assert_fetch_failure_reported('f404', 'sts-policy-fetch-error')

    def test_policy_host_certificate_for_another_name(self):
        key = 'fwebpki'
        srv = StsServer(self, sts_host(key), DESTS[key][1], FIX.wrong_cert)
        srv.start(body=trap(key))
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT)
        self.wait_log(self.fetch_failed_rx(key, 'sts-webpki-invalid'))
        self.assertEqual(srv.gets(), [], 'a request went over TLS with a '
                         'certificate for another name')
        self.assert_fetch_failure_reported(key, 'sts-webpki-invalid')

    def test_redirect_is_not_followed(self):
        srv = self.failed_fetch('fredirect', 'redirect')
        self.assertEqual(srv.gets(stsserver.MOVED_PATH), [])

    def test_text_html(self):
        self.failed_fetch('fhtml', 'html')

    def test_one_megabyte_body(self):
        self.failed_fetch('fbig', 'big')

    def test_invalid_body(self):
        key = 'finvalid'
        srv = self.sts(key, b'version: STSv1\r\nmode: bogus\r\nmx: mx9.%s\r\n'
                       b'max_age: 86400\r\n' % domain(key).encode())
        mx = self.mx(key)
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        self.assert_ignored_policy(key, srv, mx, qid, mid, rcpt)
        self.wait_log(self.invalid_rx(key))
        self.assert_fetch_failure_reported(key, 'sts-policy-invalid')

    def test_stalled_server_blocks_nothing(self):
        key = 'fslow'
        srv = self.sts(key, trap(key), behaviour='slow')
        mx = self.mx(key)
        plain = self.mx('plain')
        self.start_relay()
        qid, mid, rcpt = self.send(key)
        if not harness.wait_for(srv.gets, DELIVERY_TIMEOUT, 0.1):
            self.fail('no policy request within %.0f s; log:\n%s'
                      % (DELIVERY_TIMEOUT, self.log_tail()))

        # While the fetch hangs, other mail flows.
        qid2, mid2, rcpt2 = self.send('plain')
        self.assert_delivered(plain, 'plain', qid2, mid2, rcpt2,
                                    TLS_ENCRYPT)
        ends = [e for e in srv.events() if e['event'] == 'stall-end']
        self.assertEqual(ends, [], 'the stalled fetch ended before the '
                         'other mail was delivered: nothing shown')

        # The relay gives up on the fetch and delivers as without policy
        # (the mail may have been deferred while the fetch was pending).
        self.assert_delivered(mx, key, qid, mid, rcpt, TLS_ENCRYPT,
                              timeout=SLOW_FETCH_TIMEOUT, was_held=True)
        self.wait_log(self.fetch_failed_rx(key), SLOW_FETCH_TIMEOUT)
        ends = harness.wait_for(lambda: [e for e in srv.events()
                                         if e['event'] == 'stall-end'], 5)
        self.assertTrue(ends, 'the relay never closed the stalled fetch')
        self.assertEqual(ends[0]['why'], 'client closed')
        self.assertTrue(self.relay.alive())
        self.assert_not_logged(r'mta-sts: %s: policy id \S+ fetched'
                               % re.escape(domain(key)))


if __name__ == '__main__':
    require_peers()
    if not os.access(OPENSSL, os.X_OK):
        sys.stderr.write('openssl not installed; skipping\n')
        sys.exit(77)
    unittest.main(verbosity=2)
