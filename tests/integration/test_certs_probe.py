"""`tlsrelay certs probe [--domain D] HOST[:PORT]` against mx.py (aiosmtpd
with STARTTLS) on 127.0.0.7x, with certificates made by certtool:

- a valid certificate under a `secure` entry: Verified, and the printed
  match= lines are certtool's digests (and, pasted into a `fingerprint`
  entry, verify that same server);
- a certificate for another name, or from an unknown CA: the reason, exit 0
  (a diagnostic);
- no entry: default_tls_level and remote_port from the configuration;
- `verify` through a host name (localhost, from /etc/hosts);
- no STARTTLS, a dead port: exit 1 with one clear line; bad usage: exit 2;
- a `dane-only` domain: the probe fails with the very reason the relay
  defers mail for that domain with (one decision, policy/pol_peer.c): by
  name after the relay's own TLSA lookup, by address without one.
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
import mxpeer  # noqa: E402
from harness import BIN, base_env, free_port, run  # noqa: E402
from test_certs_cli import (certtool_cert_sha256,  # noqa: E402
                            certtool_pubkey_sha256, plain)

harness.require_binary()
if shutil.which(certs.CERTTOOL) is None:
    sys.stderr.write('certtool (gnutls-bin) not found; skipping\n')
    sys.exit(77)
if not mxpeer.aiosmtpd_available():
    sys.stderr.write('python3-aiosmtpd not found; skipping\n')
    sys.exit(77)

MATCH_RE = re.compile(r'^match=((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$', re.M)
DATE_RE = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC'


class CertsProbe(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-probe-')
        cls.ca = certs.make_ca(cls.dir)
        cls.good = certs.make_cert(cls.dir, 'mx.example.test',
                                   ['mx.example.test'], ca=cls.ca)
        cls.wrong = certs.make_cert(cls.dir, 'other.example.net',
                                    ['other.example.net'], ca=cls.ca)
        cls.own = certs.make_cert(cls.dir, 'self.example.test',
                                  ['mx.example.test'], self_signed=True)
        cls.local = certs.make_cert(cls.dir, 'localhost', ['localhost'],
                                    ca=cls.ca)
        cls.inter = certs.make_ca(cls.dir, cn='tlsrelay Test Intermediate',
                                  name='inter', ca=cls.ca)
        cls.deep = certs.make_cert(cls.dir, 'deep.example.test',
                                   ['deep.example.test'], ca=cls.inter)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='tlsrelay-probe-t-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.policy = os.path.join(self.tmp, 'tls_policy')
        self.conf = os.path.join(self.tmp, 'tlsrelay.conf')
        self.configure()

    def configure(self, policy='', **keys):
        with open(self.policy, 'w') as f:
            f.write(policy)
        settings = {'myhostname': 'relay.test',
                    'queue_dir': os.path.join(self.tmp, 'queue'),
                    'policy_file': self.policy,
                    'tls_ca_file': self.ca.cert,
                    'default_tls_level': 'encrypt',
                    # The relay's resolver asks no one off the machine.
                    'dns_servers': '127.0.0.1@%d' % harness.unused_udp_port()}
        settings.update(keys)
        harness.write_config(self.conf, settings)

    def mx(self, host, cert=None, **options):
        m = mxpeer.MX(self)
        if cert is not None:
            options.update(tls_cert=cert.cert, tls_key=cert.key)
        return m.start(host, 0, hostname='mx.example.test', **options)

    def probe(self, *args):
        return run([BIN, 'certs', 'probe', '-c', self.conf] + list(args),
                   env=base_env())

    def assertProbed(self, r, verdict):
        """Exit 0, nothing on stderr, and the last line is the verdict."""
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        self.assertEqual(r.stdout.splitlines()[-1], 'Verification: ' + verdict,
                         r.stdout)

    def test_secure_verified(self):
        m = self.mx('127.0.0.70', self.good)
        self.configure('example.test secure\n')
        r = self.probe('--domain', 'example.test', '127.0.0.70:%d' % m.port)
        self.assertProbed(r, 'Verified (secure: name matched mx.example.test)')
        out = r.stdout
        relay = '127.0.0.70[127.0.0.70]:%d' % m.port
        self.assertIn('connected to %s\n' % relay, out)
        self.assertIn('policy: secure for example.test (entry example.test, '
                      'policy file %s:1)\n' % self.policy, out)
        self.assertIn('> EHLO relay.test\n', out)
        self.assertIn('> STARTTLS\n< 220 ', out)
        self.assertRegex(out, r'\nTLS: TLSv1\.[23] with cipher \S+ '
                         r'\(\d+/\d+ bits\)\n')
        self.assertRegex(out, r'\ncertificate depth=0\n'
                         r'  subject: CN=mx\.example\.test\n'
                         r'  issuer: CN=tlsrelay Test CA\n'
                         r'  notBefore: ' + DATE_RE + '\n'
                         r'  notAfter: ' + DATE_RE + '\n'
                         r'# SHA-256 of certificate CN=mx\.example\.test\n'
                         r'match=\S+\n# SHA-256 of public key\nmatch=\S+\n')
        digests = MATCH_RE.findall(out)
        self.assertEqual(len(digests), 2, out)
        self.assertEqual(plain(digests[0]), certtool_cert_sha256(self.good.cert))
        self.assertEqual(plain(digests[1]),
                         certtool_pubkey_sha256(self.good.cert))
        self.assertIn('chain: trusted\n', out)
        self.assertIn('names wanted: example.test, .example.test\n', out)
        self.assertIn('Verified TLS connection established to %s: TLSv1.'
                      % relay, out)
        # The MX saw EHLO, STARTTLS and QUIT.
        kinds = [e['event'] for e in m.events()]
        self.assertIn('starttls', kinds)
        m.wait_event('quit')

    def test_client_certificate(self):
        """The probe presents tls_cert_file, as the relay does (one builder
        of the outbound credentials, relay/daemon/tlscred.c): an MX that
        requests a client certificate records it; a group-readable
        tls_key_file stops the probe with the relay's own line."""
        client = certs.make_cert(self.dir, 'probe-client.test',
                                 name='probe-client', ca=self.ca)
        os.chmod(client.key, 0o600)
        m = self.mx('127.0.0.71', self.good, tls_client_ca=self.ca.cert)
        self.configure('example.test secure\n', tls_cert_file=client.cert,
                       tls_key_file=client.key)
        r = self.probe('--domain', 'example.test', '127.0.0.71:%d' % m.port)
        self.assertProbed(r, 'Verified (secure: name matched mx.example.test)')
        ev = m.wait_event('starttls')
        self.assertEqual(ev.get('tls_client_cn'), 'probe-client.test', ev)
        self.assertEqual(ev.get('tls_client_sha256'), client.cert_sha256(), ev)
        os.chmod(client.key, 0o640)
        r = self.probe('--domain', 'example.test', '127.0.0.71:%d' % m.port)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, 'tlsrelay: private key %s is accessible by '
                         'group or others (mode 0640); chmod 600 it\n'
                         % client.key)
        self.assertNotIn('connected to', r.stdout)

    def test_chain(self):
        """A server that sends its intermediate: every depth is shown, the
        digests only for the leaf, and the chain verifies up to the root."""
        m = mxpeer.MX(self).start('127.0.0.76', 0,
                                  tls_cert=self.deep.chain_file(self.tmp),
                                  tls_key=self.deep.key)
        self.configure('deep.example.test verify match=nexthop\n')
        r = self.probe('--domain', 'deep.example.test',
                       '127.0.0.76:%d' % m.port)
        self.assertProbed(r, 'Verified (verify: name matched deep.example.test)')
        self.assertRegex(r.stdout, r'\ncertificate depth=1\n'
                         r'  subject: CN=tlsrelay Test Intermediate\n'
                         r'  issuer: CN=tlsrelay Test CA\n'
                         r'  notBefore: ' + DATE_RE + '\n'
                         r'  notAfter: ' + DATE_RE + '\n'
                         r'trust anchors: ')
        self.assertEqual(r.stdout.count('certificate depth='), 2, r.stdout)
        self.assertEqual(len(MATCH_RE.findall(r.stdout)), 2, r.stdout)
        self.assertIn('chain: trusted\n', r.stdout)

    def test_fingerprint_round_trip(self):
        """The printed match= lines pasted into a fingerprint entry."""
        m = self.mx('127.0.0.71', self.own)
        target = '127.0.0.71:%d' % m.port
        r = self.probe(target)
        self.assertProbed(r, 'Untrusted (encrypt: no authentication required)')
        cert_fp, key_fp = MATCH_RE.findall(r.stdout)
        self.configure('fp.example fingerprint match=%s\n' % key_fp)
        r = self.probe('--domain', 'fp.example', target)
        self.assertProbed(r, 'Verified (fingerprint: public key digest matched)')
        self.assertIn('\nVerified TLS connection established to ', r.stdout)
        self.configure('fp.example fingerprint match=%s\n' % cert_fp)
        r = self.probe('--domain', 'fp.example', target)
        self.assertProbed(r, 'Verified (fingerprint: certificate digest matched)')
        self.configure('fp.example fingerprint match=%s\n'
                       % self.good.cert_sha256())
        r = self.probe('--domain', 'fp.example', target)
        self.assertProbed(r, 'failed: Server certificate not verified: '
                          'no match= fingerprint matches')
        self.assertIn('\nUntrusted TLS connection established to ', r.stdout)

    def test_wrong_name(self):
        m = self.mx('127.0.0.72', self.wrong)
        self.configure('example.test secure\n'
                       'pinned.example.test verify match=mx.example.test\n')
        target = '127.0.0.72:%d' % m.port
        r = self.probe('--domain', 'example.test', target)
        self.assertProbed(r, 'failed: Server certificate not verified: name '
                          'mismatch (expected example.test, .example.test; '
                          'certificate CN=other.example.net)')
        self.assertIn('chain: trusted\n', r.stdout)
        self.assertIn('names: no match (certificate CN=other.example.net)\n',
                      r.stdout)
        self.assertIn('\nTrusted TLS connection established to ', r.stdout)
        r = self.probe('--domain', 'pinned.example.test', target)
        self.assertProbed(r, 'failed: Server certificate not verified: name '
                          'mismatch (expected mx.example.test; '
                          'certificate CN=other.example.net)')

    def test_untrusted(self):
        """Self-signed: not trusted, even though the name matches."""
        m = self.mx('127.0.0.73', self.own)
        self.configure('example.test secure\n')
        r = self.probe('--domain', 'example.test', '127.0.0.73:%d' % m.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        last = r.stdout.splitlines()[-1]
        self.assertRegex(last, r'^Verification: failed: Server certificate '
                         r'not trusted \(.+\)$')
        self.assertIn('names: matched mx.example.test\n', r.stdout)
        self.assertRegex(r.stdout, r'\nchain: not trusted \(.+\)\n')

    def test_defaults(self):
        """No entry for HOST: default_tls_level; no :PORT: remote_port."""
        m = self.mx('127.0.0.74', self.good)
        self.configure('example.test secure\n', remote_port=m.port,
                       default_tls_level='may')
        r = self.probe('127.0.0.74')
        self.assertProbed(r, 'Trusted (may: no authentication required)')
        self.assertIn('connected to 127.0.0.74[127.0.0.74]:%d\n' % m.port,
                      r.stdout)
        self.assertIn('policy: may for 127.0.0.74 (default_tls_level, '
                      'config %s)\n' % self.conf, r.stdout)

    def test_dane_only_same_as_relay(self):
        """dane-only: the relay defers (no usable TLSA records), and the
        probe reports that same failure, not a pass."""
        if not dnszone.available():
            self.skipTest('Knot DNS (knot, knot-dnsutils) not installed')
        ip = '127.0.0.76'
        m = self.mx(ip, self.good)
        zone = dnszone.DnsZone([('daneonly.test.', 'MX', '10 mx1.daneonly.test.'),
                                ('mx1.daneonly.test.', 'A', ip)], testcase=self)
        keys = dict(zone.relay_keys(), remote_port=m.port,
                    tls_ca_file=self.ca.cert, default_tls_level='encrypt',
                    retry_min='1h', retry_max='1h')
        relay = harness.Relay(self, start=False, **keys)
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('daneonly.test dane-only\n')
        relay.start()
        rcpt = 'bob@daneonly.test'
        code, reply, qid = harness.smtp_send(
            relay, 'alice@client.test', [rcpt], harness.make_message())
        self.assertEqual(code, 250, reply)

        def deferred():
            q = relay.find(qid)
            rs = q['recipients'] if q and q['queue_name'] == 'deferred' else []
            return rs[0].get('delay_reason') if rs else None
        held = harness.wait_for(deferred, 10.0, 0.1)
        self.assertTrue(held, 'not deferred with a reason:\n' + relay.log_text())
        # The relay looked for TLSA records and found none: it never connects.
        self.assertEqual(held, 'TLS is required with DANE authentication, but '
                         'mx1.daneonly.test has no DNSSEC-secure TLSA records')
        self.assertEqual(m.events(), [])
        why = ('TLS is required with DANE authentication, but no usable TLSA '
               'records are available for %s[{0}]:{1}'.format(ip, m.port))
        # The probe, under the same policy entry: the same verdict.
        self.configure('daneonly.test dane-only\n')
        r = self.probe('--domain', 'daneonly.test', '%s:%d' % (ip, m.port))
        self.assertProbed(r, 'failed: ' + why % ip)
        self.assertIn('policy: dane-only for daneonly.test (entry daneonly.test',
                      r.stdout)
        self.assertIn('\nTrusted TLS connection established to ', r.stdout)
        self.assertIn('\nTLSA: not looked up (%s is an IP address)\n' % ip,
                      r.stdout)
        # By name, the probe makes the relay's lookups (the zone has no TLSA
        # records) and fails with the relay's own reason, word for word.
        self.configure('daneonly.test dane-only\n', **zone.relay_keys())
        r = self.probe('--domain', 'daneonly.test',
                       'mx1.daneonly.test:%d' % m.port)
        self.assertProbed(r, 'failed: ' + held)
        self.assertIn('\nTLSA: none (secure denial at _%d._tcp.mx1.daneonly.test)'
                      '\n' % m.port, r.stdout)
        self.assertIn('\nlevel: dane-only (policy file %s:1): mail deferred: %s\n'
                      % (self.policy, held), r.stdout)
        self.assertIn('\nconnected to mx1.daneonly.test[%s]:%d\n' % (ip, m.port),
                      r.stdout)

    def test_verify_host_name(self):
        """HOST is a name: resolved, and it is what `verify` matches."""
        try:
            addrs = {a[4][0] for a in socket.getaddrinfo('localhost', 25)}
        except OSError:
            addrs = set()
        if '127.0.0.1' not in addrs:
            self.skipTest('localhost does not resolve to 127.0.0.1')
        m = self.mx('127.0.0.1', self.local)
        self.configure('localhost verify servername=hostname\n')
        r = self.probe('localhost:%d' % m.port)
        self.assertProbed(r, 'Verified (verify: name matched localhost)')
        self.assertIn('connected to localhost[127.0.0.1]:%d\n' % m.port,
                      r.stdout)
        self.assertIn('SNI: localhost\n', r.stdout)

    def test_no_starttls(self):
        m = self.mx('127.0.0.75', no_starttls=True)
        r = self.probe('127.0.0.75:%d' % m.port)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        err = r.stderr.splitlines()
        self.assertEqual(len(err), 1, r.stderr)
        self.assertEqual(err[0], 'tlsrelay: 127.0.0.75[127.0.0.75]:%d: '
                         'STARTTLS is not offered in the EHLO reply' % m.port)
        self.assertNotIn('Verification:', r.stdout)
        m.wait_event('quit')

    def test_dead_port(self):
        port = free_port()
        r = self.probe('127.0.0.1:%d' % port)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, 'tlsrelay: connect to 127.0.0.1[127.0.0.1]'
                         ':%d: Connection refused\n' % port)
        self.assertNotIn('Verification:', r.stdout)

    def test_bad_config(self):
        r = run([BIN, 'certs', 'probe', '-c', os.path.join(self.tmp, 'no'),
                 '127.0.0.1:1'], env=base_env())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.configure('example.test frobnicate\n')
        r = self.probe('127.0.0.1:1')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('%s:1: ' % self.policy, r.stderr)

    def test_usage(self):
        for args in ([], ['a', 'b'], ['host:0'], ['host:65536'], ['host:'],
                     ['host:x'], [':25'], ['[::1'], ['[::1]x'], ['--domain'],
                     ['--domain', 'd'], ['--domain', '', 'h'],
                     ['--bogus', 'h'], ['--domain', 'a', '--domain', 'b', 'h']):
            r = self.probe(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(r.stdout, '')
            self.assertIn('usage: tlsrelay certs probe', r.stderr)


if __name__ == '__main__':
    unittest.main()
