"""Issue 4 end to end: the per-domain TLS policy file decides how mail is
delivered to real MX hosts, and a changed file takes effect without restart.

The peers are real: a DNSSEC-signed Knot DNS zone `test.` (dnszone.py), one
aiosmtpd MX per destination on its own 127.0.0.x address (tests/peers/mx.py
through mxpeer.py), certificates made with certtool (certs.py) and signed by
a test CA that the relay trusts through `tls_ca_file`.

Every relay here runs with `default_tls_level = dane-only`: without DANE
support no domain without a policy entry can ever be delivered, so each
delivery below proves that the domain's entry was loaded and applied, and
each hold shows, by its reason, which check refused the peer.

    StaticPolicy   one relay for the whole class, started with a policy file
                   holding one entry per case (1-5, 9, 10)
    LiveReload     one relay per test, retry_min = 1h, so only a reload can
                   make held mail go (6, 7, 8)

An outcome is always something that could have gone the other way: the
message stored at the MX (with TLS) and the `Verified`/`Trusted`/
`Untrusted` TLS log line, or the mail deferred with its reason in
`mailq --json` and nothing (not even MAIL FROM) seen by the MX.
"""

import hashlib
import os
import re
import shutil
import signal
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

DELIVERY_TIMEOUT = 10.0   # loopback delivery takes well under a second
HOLD_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0     # a saved policy edit or SIGHUP acts within this
SENDER = 'alice@client.test'
NOT_VERIFIED = 'Server certificate not verified'
NOT_TRUSTED = 'Server certificate not trusted'

# Destinations: (domain, MX host, address).  Every domain has one MX host.
# The fingerprint domains share one address, as do tls12/tls13 (the same
# TLS 1.2-only MX seen under two policies).
DESTS = {
    'secure': ('secure.test', 'mx1.secure.test', '127.0.0.40'),
    'wrongname': ('wrongname.test', 'mx1.wrongname.test', '127.0.0.41'),
    'wildcard': ('example.test', 'mx1.example.test', '127.0.0.42'),
    'expired': ('expired.test', 'mx1.expired.test', '127.0.0.43'),
    'selfsigned': ('selfsigned.test', 'mx1.selfsigned.test', '127.0.0.44'),
    'fp-cert': ('fp-cert.test', 'mx1.fp-cert.test', '127.0.0.45'),
    'fp-pkey': ('fp-pkey.test', 'mx1.fp-pkey.test', '127.0.0.45'),
    'fp-sha1': ('fp-sha1.test', 'mx1.fp-sha1.test', '127.0.0.45'),
    'fp-wrong': ('fp-wrong.test', 'mx1.fp-wrong.test', '127.0.0.45'),
    'tls12': ('tls12.test', 'mx1.tls12.test', '127.0.0.46'),
    'tls13': ('tls13.test', 'mx1.tls12.test', '127.0.0.46'),
    'daneonly': ('daneonly.test', 'mx1.daneonly.test', '127.0.0.47'),
    'live': ('live.test', 'mx1.live.test', '127.0.0.48'),
    'keep': ('keep.test', 'mx1.keep.test', '127.0.0.49'),
    'hup': ('hup.test', 'mx1.hup.test', '127.0.0.50'),
}
HOSTS = sorted({ip for _, _, ip in DESTS.values()})


def zone_records():
    recs, hosts = [], {}
    for domain, host, ip in DESTS.values():
        recs.append((domain + '.', 'MX', '10 %s.' % host))
        hosts[host] = ip
    for host, ip in sorted(hosts.items()):
        recs.append((host + '.', 'A', ip))
    return recs


def colon_hex(digest):
    return ':'.join('%02X' % b for b in digest)


def replace_file(path, text):
    """Save text to path as an editor does: write a new file next to it,
    then rename it over the old one (a new inode; no half-written file is
    ever visible)."""
    d, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.swp', dir=d)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- module fixture: one zone, one MX port, one set of certificates -------

FIX = None


class Fixture:
    def __init__(self):
        self.zone = dnszone.DnsZone(zone_records())
        try:
            self.port = common_port(HOSTS)
            self.dir = tempfile.mkdtemp(prefix='tlsrelay-polcert-')
            d = self.dir
            self.ca = certs.default_ca(d)
            mk = certs.make_cert
            self.cert = {
                'secure': mk(d, 'mx1.secure.test'),
                # CA-signed and valid, for another name.
                'wrongname': mk(d, 'mx.elsewhere.test', name='wrongname'),
                'wildcard': mk(d, '*.example.test', name='wildcard'),
                'expired': mk(d, 'mx1.expired.test', expired=True),
                'selfsigned': mk(d, 'mx1.selfsigned.test', self_signed=True),
                # Self-signed: only a fingerprint can authenticate it.
                'fp': mk(d, 'mx.fingerprint.test', self_signed=True),
                'tls12': mk(d, 'mx1.tls12.test', self_signed=True),
                # Valid under verify/secure: dane-only must still refuse it.
                'daneonly': mk(d, 'mx1.daneonly.test'),
                'live': mk(d, 'mx1.live.test', self_signed=True),
                'keep': mk(d, 'mx1.keep.test', self_signed=True),
                'hup': mk(d, 'mx1.hup.test', self_signed=True),
            }
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


# -- shared helpers -----------------------------------------------------------


class PolicyBase(unittest.TestCase):

    @classmethod
    def new_relay(cls, policy_text, testcase=None, **keys):
        """A relay whose policy file holds policy_text (checked valid with
        `tlsrelay policy check` first: a mistake here is the test's)."""
        relay = harness.Relay(testcase, start=False, **cls.relay_keys(keys))
        try:
            policy = relay.keys['policy_file']
            replace_file(policy, policy_text)
            r = harness.run([harness.BIN, 'policy', 'check', policy],
                            env=harness.base_env())
            if r.returncode != 0:
                raise AssertionError('test policy file is invalid: %s'
                                     % r.stderr)
            relay.start()
        except BaseException:
            if testcase is None:
                relay.close()
            raise
        return relay

    @staticmethod
    def relay_keys(extra):
        k = dict(FIX.zone.relay_keys())
        k.update({'remote_port': FIX.port,
                  'default_tls_level': 'dane-only',
                  'tls_ca_file': FIX.ca.cert,
                  'tls_loglevel': 1,
                  'retry_min': '1s', 'retry_max': '2s'})
        k.update(extra)
        return k

    def mx(self, key, cert, **opts):
        """Start the MX of DESTS[key] with cert; stopped at cleanup."""
        _, host, ip = DESTS[key]
        m = MX(self)
        m.start(ip, FIX.port, hostname=host, tls_cert=cert.cert,
                tls_key=cert.key, **opts)
        return m

    def send(self, relay, key, local='bob'):
        """Submit one message to local@domain of DESTS[key]; returns
        (queue ID, Message-ID, recipient)."""
        rcpt = '%s@%s' % (local, DESTS[key][0])
        data, mid = message(SENDER, [rcpt], subject='policy ' + key)
        code, reply, qid = harness.smtp_send(relay, SENDER, [rcpt], data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def log_tail(self, relay):
        return relay.log_text()[-4000:]

    # -- outcomes ----------------------------------------------------------

    def tls_line(self, relay, key, trust, timeout=DELIVERY_TIMEOUT):
        """Wait for `TRUST TLS connection established to HOST[IP]:PORT: `."""
        _, host, ip = DESTS[key]
        rx = (r'\b%s TLS connection established to %s\[%s\]:%d: TLSv1\.[23] '
              r'with cipher \S+' % (trust, re.escape(host), re.escape(ip),
                                     FIX.port))
        if not relay.wait_log(rx, timeout):
            lines = [ln for ln in relay.log_text().splitlines()
                     if 'TLS connection established to %s[' % host in ln]
            self.fail('no "%s TLS connection established to %s[%s]" line; '
                      'TLS lines for that host: %s\nlog:\n%s'
                      % (trust, host, ip, lines, self.log_tail(relay)))

    def wait_at_mx(self, relay, mx, qid, mid, timeout=DELIVERY_TIMEOUT,
                   fail_fast=True):
        """The (envelope, content) stored at mx for Message-ID mid.  With
        fail_fast, fails as soon as the relay defers the message instead
        (not for mail that was held already and is waiting to be released)."""
        state = {}

        def arrived():
            for env, content in mx.messages():
                if msg_id_of(content) == mid:
                    return env, content
            m = relay.find(qid) if fail_fast else None
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
                         self.log_tail(relay)))
        if not got:
            self.fail('%s (%s) not at %s within %.0f s; queue: %s\nMX events:'
                      ' %s\nlog:\n%s' % (qid, mid, mx.host, timeout,
                                         relay.find(qid), mx.events()[-6:],
                                         self.log_tail(relay)))
        return got

    def assert_delivered(self, relay, mx, key, qid, mid, rcpt, trust,
                         timeout=DELIVERY_TIMEOUT, released=False):
        """mid reached mx over TLS for rcpt only, the relay logged the TLS
        line with that trust word and status=sent, and the queue is empty
        of qid.  released: qid was held before (waiting for it to go, not
        failing because it is deferred)."""
        env, _ = self.wait_at_mx(relay, mx, qid, mid, timeout,
                                 fail_fast=not released)
        self.assertEqual(env['rcpt_tos'], [rcpt], env)
        self.assertEqual(env['mail_from'], SENDER, env)
        self.assertIs(env['tls'], True, env)
        self.tls_line(relay, key, trust)
        _, host, ip = DESTS[key]
        # tls= in the delivery line is the trust word of the TLS line.
        sent = (r'%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, tls=%s, '
                r'dsn=2\.\d{1,3}\.\d{1,3}, status=sent \(' %
                (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
                 FIX.port, trust.lower()))
        if not relay.wait_log(sent, DELIVERY_TIMEOUT):
            self.fail('no status=sent line for %s to %s\nlog:\n%s'
                      % (qid, rcpt, self.log_tail(relay)))
        if not harness.wait_for(lambda: relay.find(qid) is None,
                                DELIVERY_TIMEOUT):
            self.fail('%s still queued after delivery: %s'
                      % (qid, relay.find(qid)))
        return env

    def assert_held(self, relay, qid, rcpt, reason=None,
                    timeout=HOLD_TIMEOUT):
        """qid is in the deferred queue with a delay_reason for rcpt
        (containing `reason` when given); returns the reason."""
        def held():
            m = relay.find(qid)
            if m is None:
                return 'gone'
            if m['queue_name'] == 'deferred' and m['recipients'] and all(
                    r.get('delay_reason') for r in m['recipients']):
                return m
            return None
        m = harness.wait_for(held, timeout, 0.1)
        if m == 'gone':
            self.fail('%s left the queue: it should have been held\nlog:\n%s'
                      % (qid, self.log_tail(relay)))
        if not m:
            self.fail('%s not deferred with a reason within %.0f s: %s\n'
                      'log:\n%s' % (qid, timeout, relay.find(qid),
                                    self.log_tail(relay)))
        self.assertEqual([r['address'] for r in m['recipients']], [rcpt], m)
        got = m['recipients'][0]['delay_reason']
        if reason is not None:
            self.assertIn(reason, got, m)
        return got

    def assert_nothing_at_mx(self, mx, mid, rcpt, strict=True):
        """mid was not stored and rcpt never got as far as RCPT TO; with
        strict, the MX saw no MAIL FROM at all (it serves only this test's
        held domain)."""
        self.assertEqual([c for _, c in mx.messages() if msg_id_of(c) == mid],
                         [], 'held message reached the MX')
        events = mx.events()
        self.assertEqual([e for e in events if e['event'] == 'rcpt'
                          and e.get('address', '').lower() == rcpt], [],
                         'RCPT TO for a held recipient reached the MX')
        if strict:
            self.assertEqual([e for e in events if e['event'] in
                              ('mail', 'rcpt', 'data')], [],
                             'a transaction reached the MX of a held domain')
        # Never in clear: no transaction without TLS, whatever the domain.
        self.assertEqual([e for e in events if e['event'] in
                          ('mail', 'rcpt', 'data') and not e['tls']], [],
                         'mail transaction without TLS at the MX')


# -- cases 1-5, 9, 10: one relay, one policy file ---------------------------


class StaticPolicy(PolicyBase):
    """One relay for the class, with one entry per destination."""

    @classmethod
    def policy_text(cls):
        fp = FIX.cert['fp']
        sha1 = colon_hex(hashlib.sha1(fp.der()).digest())
        # A real digest, of the wrong certificate (the CA's).
        wrong = FIX.ca.cert_sha256()
        return '\n'.join([
            '# test_policy_delivery.py: one entry per case',
            'secure.test       secure',
            'wrongname.test    secure',
            'example.test      secure       match=.example.test',
            'expired.test      verify',
            'selfsigned.test   encrypt',
            'fp-cert.test      fingerprint  match=' + fp.cert_sha256(),
            'fp-pkey.test      fingerprint  match=' + fp.pubkey_sha256(),
            'fp-sha1.test      fingerprint  match=' + sha1,
            'fp-wrong.test     fingerprint  match=' + wrong,
            'tls12.test        encrypt',
            'tls13.test        encrypt      protocols=>=TLSv1.3',
            'daneonly.test     dane-only',
        ]) + '\n'

    @classmethod
    def setUpClass(cls):
        cls.relay = cls.new_relay(cls.policy_text())
        cls.addClassCleanup(cls.relay.close)

    def forget(self, qid):
        """Cleanup: drop a held message so that its retries stop."""
        self.addCleanup(self.relay.cli, 'queue', 'delete', qid)

    # 1. secure: the right name delivers, a wrong name holds.

    def test_01_secure_right_name_delivers(self):
        mx = self.mx('secure', FIX.cert['secure'])
        qid, mid, rcpt = self.send(self.relay, 'secure')
        self.assert_delivered(self.relay, mx, 'secure', qid, mid, rcpt,
                              'Verified')

    def test_01_secure_wrong_name_holds(self):
        mx = self.mx('wrongname', FIX.cert['wrongname'])
        qid, mid, rcpt = self.send(self.relay, 'wrongname')
        self.forget(qid)
        self.assert_held(self.relay, qid, rcpt, NOT_VERIFIED)
        # The chain is good (our CA), only the name is wrong: Postfix says
        # Trusted, not Verified.
        self.tls_line(self.relay, 'wrongname', 'Trusted')
        self.assert_nothing_at_mx(mx, mid, rcpt)

    # 2. secure with match=.example.test and a *.example.test certificate.

    def test_02_secure_wildcard_delivers(self):
        mx = self.mx('wildcard', FIX.cert['wildcard'])
        qid, mid, rcpt = self.send(self.relay, 'wildcard')
        self.assert_delivered(self.relay, mx, 'wildcard', qid, mid, rcpt,
                              'Verified')

    # 3. verify with an expired certificate (right name, our CA).

    def test_03_verify_expired_holds(self):
        mx = self.mx('expired', FIX.cert['expired'])
        qid, mid, rcpt = self.send(self.relay, 'expired')
        self.forget(qid)
        self.assert_held(self.relay, qid, rcpt, NOT_TRUSTED)
        self.tls_line(self.relay, 'expired', 'Untrusted')
        self.assert_nothing_at_mx(mx, mid, rcpt)

    # 4. encrypt takes a self-signed certificate.

    def test_04_encrypt_self_signed_delivers(self):
        mx = self.mx('selfsigned', FIX.cert['selfsigned'])
        qid, mid, rcpt = self.send(self.relay, 'selfsigned')
        self.assert_delivered(self.relay, mx, 'selfsigned', qid, mid, rcpt,
                              'Untrusted')

    # 5. fingerprint: certificate SHA-256, public-key SHA-256, certificate
    #    SHA-1 deliver; a wrong digest holds.

    def test_05_fingerprint_cert_sha256_delivers(self):
        mx = self.mx('fp-cert', FIX.cert['fp'])
        qid, mid, rcpt = self.send(self.relay, 'fp-cert')
        self.assert_delivered(self.relay, mx, 'fp-cert', qid, mid, rcpt,
                              'Verified')

    def test_05_fingerprint_pubkey_sha256_delivers(self):
        mx = self.mx('fp-pkey', FIX.cert['fp'])
        qid, mid, rcpt = self.send(self.relay, 'fp-pkey')
        self.assert_delivered(self.relay, mx, 'fp-pkey', qid, mid, rcpt,
                              'Verified')

    def test_05_fingerprint_cert_sha1_delivers(self):
        mx = self.mx('fp-sha1', FIX.cert['fp'])
        qid, mid, rcpt = self.send(self.relay, 'fp-sha1')
        self.assert_delivered(self.relay, mx, 'fp-sha1', qid, mid, rcpt,
                              'Verified')

    def test_05_fingerprint_wrong_digest_holds(self):
        mx = self.mx('fp-wrong', FIX.cert['fp'])
        qid, mid, rcpt = self.send(self.relay, 'fp-wrong')
        self.forget(qid)
        self.assert_held(self.relay, qid, rcpt, NOT_VERIFIED)
        self.tls_line(self.relay, 'fp-wrong', 'Untrusted')
        self.assert_nothing_at_mx(mx, mid, rcpt)

    # 9. protocols=>=TLSv1.3 against a TLS 1.2-only MX holds (and never
    #    falls back to clear); the same MX without the attribute delivers.

    def test_09_protocols_tls13_holds_tls12_delivers(self):
        mx = self.mx('tls12', FIX.cert['tls12'], tls_max_version='TLSv1.2')
        qid, mid, rcpt = self.send(self.relay, 'tls13')
        self.forget(qid)
        reason = self.assert_held(self.relay, qid, rcpt)
        self.assertIn('TLS', reason)
        self.assertNotIn('not verified', reason)
        self.assertNotIn('not trusted', reason)
        self.assert_nothing_at_mx(mx, mid, rcpt)
        self.assertFalse(re.search(r'TLS connection established to mx1\.tls12'
                                   r'\.test\[', self.relay.log_text()),
                         'a TLS session was established with the TLS 1.2 MX '
                         'under protocols=>=TLSv1.3')
        # The MX itself is fine: tls12.test (same host, no protocols=)
        # delivers, over TLS 1.2.
        qid2, mid2, rcpt2 = self.send(self.relay, 'tls12')
        env = self.assert_delivered(self.relay, mx, 'tls12', qid2, mid2,
                                    rcpt2, 'Untrusted')
        self.assertEqual(env['tls_version'], 'TLSv1.2', env)
        self.assertIsNotNone(self.relay.find(qid), 'tls13.test mail left '
                             'the queue')
        self.assert_nothing_at_mx(mx, mid, rcpt, strict=False)

    # 10. dane-only without DANE support never delivers, even to an MX whose
    #     certificate would pass verify and secure.

    def test_10_dane_only_never_delivers(self):
        mx = self.mx('daneonly', FIX.cert['daneonly'])
        qid, mid, rcpt = self.send(self.relay, 'daneonly')
        self.forget(qid)
        self.assert_held(self.relay, qid, rcpt)
        # Let it be retried (retry_min = 1s here) and refused again.
        deferred = re.compile(r'%s: to=<%s>, .*status=deferred'
                              % (qid, re.escape(rcpt)))
        if not harness.wait_for(
                lambda: len(deferred.findall(self.relay.log_text())) >= 2,
                HOLD_TIMEOUT, 0.2):
            self.fail('%s not retried and deferred again within %.0f s\n'
                      'log:\n%s' % (qid, HOLD_TIMEOUT,
                                    self.log_tail(self.relay)))
        self.assert_held(self.relay, qid, rcpt)
        self.assert_nothing_at_mx(mx, mid, rcpt)
        self.assertFalse(re.search(r'\bVerified TLS connection established to '
                                   r'mx1\.daneonly\.test\[',
                                   self.relay.log_text()))


# -- cases 6, 7, 8: changes while the relay runs ----------------------------


class LiveReload(PolicyBase):
    """One relay per test; retry_min = retry_max = 1h, so held mail can only
    go out through the retry that a policy change triggers."""

    def live_relay(self, text):
        return self.new_relay(text, self, retry_min='1h', retry_max='1h')

    def fingerprint_output(self, cert):
        r = harness.run([harness.BIN, 'certs', 'fingerprint', cert.cert],
                        env=harness.base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        matches = [ln for ln in lines if ln.startswith('match=')]
        self.assertTrue(matches, 'no match= line in:\n' + r.stdout)
        for ln in lines:
            self.assertRegex(ln, r'^(# .*|match=([0-9A-F]{2}:)+[0-9A-F]{2})$')
        return lines

    # 6. A saved edit (no restart, no signal) releases held mail.

    def test_06_live_edit_fingerprint_releases_held_mail(self):
        mx = self.mx('live', FIX.cert['live'])
        wrong = FIX.cert['keep'].cert_sha256()   # someone else's certificate
        header = '# live edit test\n'
        relay = self.live_relay(header + 'live.test fingerprint match=%s\n'
                                % wrong)
        policy = relay.keys['policy_file']
        qid, mid, rcpt = self.send(relay, 'live')
        self.assert_held(relay, qid, rcpt, NOT_VERIFIED)
        self.tls_line(relay, 'live', 'Untrusted')
        self.assert_nothing_at_mx(mx, mid, rcpt)

        # The administrator pastes what `certs fingerprint` printed: the
        # comments on lines of their own, the match= values onto the entry.
        out = self.fingerprint_output(FIX.cert['live'])
        comments = [ln for ln in out if ln.startswith('#')]
        matches = [ln for ln in out if ln.startswith('match=')]
        new = (header + '\n'.join(comments) + '\n' +
               'live.test fingerprint match=%s %s\n' % (wrong,
                                                        ' '.join(matches)))
        replace_file(policy, new)
        r = harness.run([harness.BIN, 'policy', 'check', policy],
                        env=harness.base_env())
        self.assertEqual(r.returncode, 0, 'edited file invalid: ' + r.stderr)
        self.assert_delivered(relay, mx, 'live', qid, mid, rcpt, 'Verified',
                              timeout=RELOAD_TIMEOUT, released=True)
        self.assertTrue(relay.alive())

    # 7. An invalid edit is refused as a whole: FILE:LINE: in the log, and
    #    mail keeps following the last good policy.

    KEEP_GOOD = '# keep test\nkeep.test encrypt\n'
    # Line 2 would hold keep.test (dane-only) if it were applied; line 3 is
    # the error.  A half-loaded file would hold the second message.
    KEEP_BAD = ('# keep test, edited\nkeep.test dane-only\n'
                'other.test frobnicate\n')
    KEEP_BAD_LINE = 3

    def test_07_invalid_edit_keeps_old_policy(self):
        mx = self.mx('keep', FIX.cert['keep'])
        relay = self.live_relay(self.KEEP_GOOD)
        policy = relay.keys['policy_file']
        qid, mid, rcpt = self.send(relay, 'keep', 'first')
        self.assert_delivered(relay, mx, 'keep', qid, mid, rcpt, 'Untrusted')

        replace_file(policy, self.KEEP_BAD)
        rx = r'%s:%d: \S' % (re.escape(policy), self.KEEP_BAD_LINE)
        if not relay.wait_log(rx, RELOAD_TIMEOUT):
            self.fail('no "%s:%d: ..." log line within %.0f s of saving an '
                      'invalid policy file\nlog:\n%s'
                      % (policy, self.KEEP_BAD_LINE, RELOAD_TIMEOUT,
                         self.log_tail(relay)))
        self.assertNotRegex(relay.log_text(),
                            r'%s:2: ' % re.escape(policy))
        self.assertTrue(relay.alive(), 'relay died on an invalid policy')
        # Still encrypt (the old entry), not dane-only (the new line 2).
        qid2, mid2, rcpt2 = self.send(relay, 'keep', 'second')
        self.assert_delivered(relay, mx, 'keep', qid2, mid2, rcpt2,
                              'Untrusted')

    def test_07_policy_check_names_bad_line(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-polchk-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'tls_policy')
        replace_file(path, self.KEEP_BAD)
        r = harness.run([harness.BIN, 'policy', 'check', path],
                        env=harness.base_env())
        self.assertNotEqual(r.returncode, 0, r.stdout)
        errors = r.stderr.splitlines()
        self.assertTrue(errors, 'no message on stderr')
        for ln in errors:
            self.assertTrue(ln.startswith('%s:%d: ' % (path,
                                                       self.KEEP_BAD_LINE)),
                            errors)
        self.assertIn('frobnicate', r.stderr)

    # 8. SIGHUP reloads the policy too.  The configuration is switched to a
    #    policy file in another directory, which no watcher of the old file
    #    would notice: only the SIGHUP can make the change.

    def test_08_sighup_applies_policy_change(self):
        mx = self.mx('hup', FIX.cert['hup'])
        relay = self.live_relay('hup.test dane-only\n')
        qid, mid, rcpt = self.send(relay, 'hup', 'first')
        self.assert_held(relay, qid, rcpt)
        self.assert_nothing_at_mx(mx, mid, rcpt)

        other = os.path.join(relay.dir, 'reloaded')
        os.mkdir(other)
        new_policy = os.path.join(other, 'tls_policy')
        replace_file(new_policy, 'hup.test encrypt\n')
        relay.keys['policy_file'] = new_policy
        harness.write_config(relay.conf, relay.keys)
        relay.proc.send_signal(signal.SIGHUP)

        # The held message: its domain's entry changed, so it goes at once.
        held_arrived = harness.wait_for(
            lambda: any(msg_id_of(c) == mid for _, c in mx.messages()),
            RELOAD_TIMEOUT, 0.1)
        # New mail follows the new policy.
        qid2, mid2, rcpt2 = self.send(relay, 'hup', 'second')
        self.assert_delivered(relay, mx, 'hup', qid2, mid2, rcpt2,
                              'Untrusted')
        self.assertTrue(held_arrived, 'mail held under the old entry was not '
                        'retried within %.0f s of the SIGHUP that changed it'
                        '; queue: %s' % (RELOAD_TIMEOUT, relay.find(qid)))
        self.assert_delivered(relay, mx, 'hup', qid, mid, rcpt, 'Untrusted',
                              released=True)
        self.assertTrue(relay.alive())


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
