"""Issue 4, the relay as a TLS client: its optional client certificate
(tls_cert_file, tls_key_file) and the global tls_protocols floor.

The peers are real: a DNSSEC-signed Knot DNS zone `test.` (dnszone.py), one
aiosmtpd MX per destination on its own 127.0.0.6x address (tests/peers/mx.py
through mxpeer.py), certificates made with certtool (certs.py).  Every relay
runs with `default_tls_level = encrypt` and no policy file entries, so the
outcomes below come from the configuration keys alone.

    ClientCertificate  an MX that requests (does not require) a client
                       certificate records the one the relay showed: the
                       relay's own (SHA-256 and CN), under TLS 1.3 and 1.2;
                       none when the relay has none; a key file readable by
                       its group keeps `tlsrelay serve` from starting.
    Protocols          tls_protocols = >=TLSv1.3 defers mail to a TLS 1.2-only
                       MX (reason in mailq --json, nothing received) yet
                       delivers to a TLS 1.3 MX; the default settings deliver
                       to the same TLS 1.2 MX over TLSv1.2.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
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
REFUSE_TIMEOUT = 10.0     # `serve` with a bad key must exit well within this
SENDER = 'alice@client.test'
CLIENT_CN = 'relay-client.test'

# Destinations: (domain, MX host, address); one MX host per domain.
DESTS = {
    'ccert13': ('ccert13.test', 'mx1.ccert13.test', '127.0.0.60'),
    'ccert12': ('ccert12.test', 'mx1.ccert12.test', '127.0.0.61'),
    'nocert': ('nocert.test', 'mx1.nocert.test', '127.0.0.62'),
    'tls12': ('tls12.test', 'mx1.tls12.test', '127.0.0.63'),
    'tls13': ('tls13.test', 'mx1.tls13.test', '127.0.0.64'),
}
HOSTS = sorted({ip for _, _, ip in DESTS.values()})


def zone_records():
    recs = []
    for domain, host, ip in DESTS.values():
        recs.append((domain + '.', 'MX', '10 %s.' % host))
        recs.append((host + '.', 'A', ip))
    return recs


# -- module fixture: one zone, one MX port, one set of certificates -------

FIX = None


class Fixture:
    def __init__(self):
        self.zone = dnszone.DnsZone(zone_records())
        try:
            self.port = common_port(HOSTS)
            self.dir = tempfile.mkdtemp(prefix='tlsrelay-tlsclient-')
            d = self.dir
            self.ca = certs.default_ca(d)
            # The relay's client certificate, signed by the CA the MX
            # hosts accept client certificates from.
            self.client = certs.make_cert(d, CLIENT_CN, name='relay-client')
            os.chmod(self.client.key, 0o600)
            self.mx_cert = {k: certs.make_cert(d, host, name=k)
                            for k, (_, host, _) in DESTS.items()}
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


class TlsClientBase(unittest.TestCase):

    @staticmethod
    def relay_keys(extra):
        k = dict(FIX.zone.relay_keys())
        k.update({'remote_port': FIX.port,
                  'default_tls_level': 'encrypt',
                  'tls_ca_file': FIX.ca.cert,
                  'tls_loglevel': 1,
                  'retry_min': '1s', 'retry_max': '2s'})
        k.update(extra)
        return k

    @classmethod
    def new_relay(cls, testcase=None, **keys):
        """A running relay (stopped at testcase's cleanup, if given)."""
        return harness.Relay(testcase, **cls.relay_keys(keys))

    def mx(self, key, **opts):
        """Start the MX of DESTS[key] (its own CA-signed certificate);
        stopped at cleanup."""
        _, host, ip = DESTS[key]
        cert = FIX.mx_cert[key]
        m = MX(self)
        m.start(ip, FIX.port, hostname=host, tls_cert=cert.cert,
                tls_key=cert.key, **opts)
        return m

    def send(self, relay, key, local='bob'):
        """Submit one message to local@domain of DESTS[key]; returns
        (queue ID, Message-ID, recipient)."""
        rcpt = '%s@%s' % (local, DESTS[key][0])
        data, mid = message(SENDER, [rcpt], subject='tls client ' + key)
        code, reply, qid = harness.smtp_send(relay, SENDER, [rcpt], data)
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def forget(self, relay, qid):
        """Cleanup: drop a held message so that its retries stop (runs
        before the relay's own cleanup stops it)."""
        self.addCleanup(relay.cli, 'queue', 'delete', qid)

    @staticmethod
    def log_tail(relay):
        return relay.log_text()[-4000:]

    def delivered(self, relay, mx, key, qid, mid, rcpt):
        """The envelope stored at mx for mid, once the relay says
        status=sent and qid left the queue; fails at once if the relay
        defers qid instead."""
        state = {}

        def arrived():
            for env, content in mx.messages():
                if msg_id_of(content) == mid:
                    return env
            m = relay.find(qid)
            if m and m['queue_name'] == 'deferred' and any(
                    r.get('delay_reason') for r in m['recipients']):
                state['deferred'] = m
                return 'deferred'
            return None
        env = harness.wait_for(arrived, DELIVERY_TIMEOUT, 0.1)
        if env == 'deferred':
            self.fail('%s was deferred instead of delivered: %s\nMX events: '
                      '%s\nlog:\n%s' % (qid, state['deferred'],
                                        mx.events()[-6:],
                                        self.log_tail(relay)))
        if not env:
            self.fail('%s not at %s within %.0f s; queue: %s\nMX events: %s'
                      '\nlog:\n%s' % (qid, mx.host, DELIVERY_TIMEOUT,
                                      relay.find(qid), mx.events()[-6:],
                                      self.log_tail(relay)))
        self.assertEqual(env['rcpt_tos'], [rcpt], env)
        self.assertIs(env['tls'], True, env)
        _, host, ip = DESTS[key]
        sent = (r'%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, tls=[a-z]+, '
                r'dsn=2\.\d{1,3}\.\d{1,3}, status=sent \(' %
                (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
                 FIX.port))
        if not relay.wait_log(sent, DELIVERY_TIMEOUT):
            self.fail('no status=sent line for %s to %s\nlog:\n%s'
                      % (qid, rcpt, self.log_tail(relay)))
        if not harness.wait_for(lambda: relay.find(qid) is None,
                                DELIVERY_TIMEOUT):
            self.fail('%s still queued after delivery: %s'
                      % (qid, relay.find(qid)))
        return env

    def tls_line(self, relay, key, version):
        """The relay's `... TLS connection established to HOST[IP]:PORT:
        VERSION with cipher ...` line for DESTS[key]."""
        _, host, ip = DESTS[key]
        rx = (r'\b(Verified|Trusted|Untrusted|Anonymous) TLS connection '
              r'established to %s\[%s\]:%d: %s with cipher \S+'
              % (re.escape(host), re.escape(ip), FIX.port,
                 re.escape(version)))
        if not relay.wait_log(rx, DELIVERY_TIMEOUT):
            self.fail('no "TLS connection established to %s[%s]:%d: %s" '
                      'line\nlog:\n%s' % (host, ip, FIX.port, version,
                                          self.log_tail(relay)))

    def held(self, relay, qid, rcpt):
        """qid deferred with a delay_reason for rcpt; returns the reason."""
        def check():
            m = relay.find(qid)
            if m is None:
                return 'gone'
            if m['queue_name'] == 'deferred' and m['recipients'] and all(
                    r.get('delay_reason') for r in m['recipients']):
                return m
            return None
        m = harness.wait_for(check, HOLD_TIMEOUT, 0.1)
        if m == 'gone':
            self.fail('%s left the queue: it should have been deferred\n'
                      'log:\n%s' % (qid, self.log_tail(relay)))
        if not m:
            self.fail('%s not deferred with a reason within %.0f s: %s\n'
                      'log:\n%s' % (qid, HOLD_TIMEOUT, relay.find(qid),
                                    self.log_tail(relay)))
        self.assertEqual([r['address'] for r in m['recipients']], [rcpt], m)
        return m['recipients'][0]['delay_reason']


# -- part 1: the client certificate -------------------------------------------


class ClientCertificate(TlsClientBase):
    """One relay with tls_cert_file/tls_key_file for the class."""

    @classmethod
    def setUpClass(cls):
        cls.relay = cls.new_relay(tls_cert_file=FIX.client.cert,
                                  tls_key_file=FIX.client.key)
        cls.addClassCleanup(cls.relay.close)

    def assert_saw_relay_cert(self, rec, what):
        self.assertEqual(rec.get('tls_client_sha256'),
                         FIX.client.cert_sha256(),
                         '%s: the MX did not see the relay\'s client '
                         'certificate: %s' % (what, rec))
        self.assertEqual(rec.get('tls_client_cn'), CLIENT_CN, rec)

    def test_01_mx_sees_client_cert_tls13(self):
        mx = self.mx('ccert13', tls_client_ca=FIX.ca.cert)
        qid, mid, rcpt = self.send(self.relay, 'ccert13')
        env = self.delivered(self.relay, mx, 'ccert13', qid, mid, rcpt)
        self.assertEqual(env['tls_version'], 'TLSv1.3', env)
        self.assert_saw_relay_cert(env, 'stored envelope')
        starttls = mx.wait_event('starttls')
        self.assert_saw_relay_cert(starttls, 'starttls event')

    def test_02_mx_sees_client_cert_tls12(self):
        mx = self.mx('ccert12', tls_client_ca=FIX.ca.cert,
                     tls_max_version='TLSv1.2')
        qid, mid, rcpt = self.send(self.relay, 'ccert12')
        env = self.delivered(self.relay, mx, 'ccert12', qid, mid, rcpt)
        self.assertEqual(env['tls_version'], 'TLSv1.2', env)
        self.assert_saw_relay_cert(env, 'stored envelope')

    def test_03_no_client_cert_when_not_configured(self):
        """Control: a relay without tls_cert_file shows no certificate to
        the same kind of MX (so the fields above are not set by the MX on
        its own), and the MX, which only requests one, takes the mail."""
        relay = self.new_relay(self)
        mx = self.mx('nocert', tls_client_ca=FIX.ca.cert)
        qid, mid, rcpt = self.send(relay, 'nocert')
        env = self.delivered(relay, mx, 'nocert', qid, mid, rcpt)
        self.assertIn('tls_client_sha256', env)
        self.assertIsNone(env['tls_client_sha256'], env)
        self.assertIsNone(env['tls_client_cn'], env)

    def test_04_group_readable_key_refused(self):
        """tls_key_file with mode 0640: `serve` exits 1 at once naming the
        key and never listens; the same files with mode 0600 start."""
        d = tempfile.mkdtemp(prefix='tlsrelay-keymode-')
        self.addCleanup(shutil.rmtree, d, True)
        key = os.path.join(d, 'client.key')
        shutil.copyfile(FIX.client.key, key)
        os.chmod(key, 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o640)
        relay = harness.Relay(self, start=False, **self.relay_keys(
            {'tls_cert_file': FIX.client.cert, 'tls_key_file': key}))
        t0 = time.monotonic()
        try:
            r = harness.run([harness.BIN, 'serve', '-c', relay.conf],
                            env=harness.base_env(), timeout=REFUSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail('tlsrelay serve kept running for %.0f s with a 0640 '
                      'tls_key_file (killed)' % REFUSE_TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, 'serve with a 0640 key: exit %d, '
                         'stderr: %r' % (r.returncode, r.stderr))
        self.assertIn(key, r.stderr)
        self.assertLessEqual(len([ln for ln in r.stderr.splitlines()
                                  if key in ln]), 3, r.stderr)
        self.assertLess(took, 5.0)
        self.assertFalse(harness.port_open(relay.port))
        # The mode alone made the difference.
        os.chmod(key, 0o600)
        relay.start()
        self.assertTrue(relay.alive())


# -- part 2: tls_protocols ----------------------------------------------------


class Protocols(TlsClientBase):

    def test_05_tls13_floor_defers_tls12_mx_default_delivers(self):
        mx12 = self.mx('tls12', tls_max_version='TLSv1.2')
        strict = self.new_relay(self, tls_protocols='>=TLSv1.3')
        qid, mid, rcpt = self.send(strict, 'tls12')
        self.forget(strict, qid)
        reason = self.held(strict, qid, rcpt)
        self.assertRegex(reason, r'(?i)TLS', 'delay_reason %r does not say '
                         'that TLS failed' % reason)
        # The relay did reach this MX (so TLS, not DNS or TCP, is why the
        # mail waits) and never started a transaction: not in clear, not
        # over TLS 1.2.
        failed = mx12.wait_event('starttls_failed', HOLD_TIMEOUT)
        self.assertRegex(failed.get('error', ''), r'(?i)protocol|version',
                         'the handshake with the TLS 1.2 MX failed for '
                         'another reason than the version: %s' % failed)
        events = mx12.events()
        self.assertTrue([e for e in events if e['event'] == 'ehlo'],
                        'the relay never reached the TLS 1.2 MX: %s' % events)
        self.assertEqual([e for e in events if e['event'] in
                          ('mail', 'rcpt', 'data')], [],
                         'a transaction reached the TLS 1.2 MX under '
                         'tls_protocols = >=TLSv1.3: %s' % events)
        self.assertEqual(mx12.messages(), [])
        self.assertFalse(re.search(r'TLS connection established to '
                                   r'mx1\.tls12\.test\[', strict.log_text()),
                         'a TLS session was established with the TLS 1.2 MX '
                         'under tls_protocols = >=TLSv1.3\n'
                         + self.log_tail(strict))

        # The same relay delivers to an MX that speaks TLS 1.3.
        mx13 = self.mx('tls13')
        qid13, mid13, rcpt13 = self.send(strict, 'tls13')
        env = self.delivered(strict, mx13, 'tls13', qid13, mid13, rcpt13)
        self.assertEqual(env['tls_version'], 'TLSv1.3', env)
        self.tls_line(strict, 'tls13', 'TLSv1.3')

        # Default settings deliver to the same TLS 1.2 MX, over TLS 1.2.
        default = self.new_relay(self)
        self.assertNotIn('tls_protocols', default.keys)
        qid2, mid2, rcpt2 = self.send(default, 'tls12', 'carol')
        env = self.delivered(default, mx12, 'tls12', qid2, mid2, rcpt2)
        self.assertEqual(env['tls_version'], 'TLSv1.2', env)
        self.tls_line(default, 'tls12', 'TLSv1.2')

        # The strict relay's message is still waiting and never arrived.
        self.assertIsNotNone(strict.find(qid), 'the >=TLSv1.3 mail left the '
                             'queue')
        self.assertEqual([c for _, c in mx12.messages()
                          if msg_id_of(c) == mid], [])


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
