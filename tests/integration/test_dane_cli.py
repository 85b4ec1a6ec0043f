"""DANE in the command-line tools, against a DNSSEC-signed Knot DNS zone:

- `policy show DOMAIN` does the relay's lookups (MX, addresses, TLSA where
  DANE can apply and the addresses were secure) and prints, per MX host,
  what was secure, the usable records, and the level that results with its
  source: DANE from a matching zone, the default for an unsigned child zone
  (no TLSA looked up), the entry when it sets another level, a deferral for
  dane-only without records and for a failed TLSA lookup, and the MX
  lookup's own failure when validation fails (exit 0 all the same);
- `certs probe --domain D HOST:PORT` looks up HOST's TLSA records at
  _PORT._tcp and D's MX RRset, and pol_peer_check decides as in the relay:
  Verified for a matching DANE-EE SPKI SHA-256 record (SNI: the MX host),
  Trusted when the MX RRset does not list HOST, and the relay's reason
  when the record does not match.

The 3 1 1 records are the SHA-256 of the certificate's SubjectPublicKeyInfo
in DER (`certtool --pubkey-info --load-certificate F --outder`).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
import mxpeer  # noqa: E402
from harness import BIN, base_env, run  # noqa: E402

harness.require_binary()
dnszone.require_knot()
if shutil.which(certs.CERTTOOL) is None:
    sys.stderr.write('certtool (gnutls-bin) not found; skipping\n')
    sys.exit(77)
if not mxpeer.aiosmtpd_available():
    sys.stderr.write('python3-aiosmtpd not found; skipping\n')
    sys.exit(77)


def spki_sha256(cert_path):
    """The data of a 3 1 1 record for the certificate: upper-case hex."""
    der = subprocess.run([certs.CERTTOOL, '--pubkey-info', '--load-certificate',
                          cert_path, '--outder'], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         check=True, timeout=60).stdout
    return hashlib.sha256(der).hexdigest().upper()


WRONG = 'AB' * 32  # a 3 1 1 digest that matches no key


class DaneCli(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-danecli-')
        cls.ca = certs.make_ca(cls.dir)
        cls.cert = certs.make_cert(cls.dir, 'mx1.dane.test', ['mx1.dane.test'],
                                   ca=cls.ca)
        cls.spki = spki_sha256(cls.cert.cert)
        # DANE records for port 25 (the relay's remote_port in these tests).
        cls.zone = dnszone.DnsZone(cls.records(25), unsigned_children={
            'insecure.test.': [
                ('insecure.test.', 'MX', '10 mx1.insecure.test.'),
                ('mx1.insecure.test.', 'A', '127.0.0.82'),
                ('_25._tcp.mx1.insecure.test.', 'TLSA', '3 1 1 ' + cls.spki),
            ]})

    @classmethod
    def tearDownClass(cls):
        cls.zone.close()
        shutil.rmtree(cls.dir, True)

    @classmethod
    def records(cls, port):
        """dane.test: a matching record (and an unusable PKIX-EE one);
        nodane.test: no TLSA at all; wrong.test: a record that does not
        match; mx2.dane.test: the same server, not listed in the MX RRset."""
        return [
            ('dane.test.', 'MX', '10 mx1.dane.test.'),
            ('mx1.dane.test.', 'A', '127.0.0.80'),
            ('_%d._tcp.mx1.dane.test.' % port, 'TLSA', '3 1 1 ' + cls.spki),
            ('_%d._tcp.mx1.dane.test.' % port, 'TLSA', '1 1 1 ' + WRONG),
            ('mx2.dane.test.', 'A', '127.0.0.80'),
            ('_%d._tcp.mx2.dane.test.' % port, 'TLSA', '3 1 1 ' + cls.spki),
            ('nodane.test.', 'MX', '10 mx1.nodane.test.'),
            ('mx1.nodane.test.', 'A', '127.0.0.81'),
            ('wrong.test.', 'MX', '10 mx1.wrong.test.'),
            ('mx1.wrong.test.', 'A', '127.0.0.80'),
            ('_%d._tcp.mx1.wrong.test.' % port, 'TLSA', '3 1 1 ' + WRONG),
        ]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='tlsrelay-danecli-t-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.policy = os.path.join(self.tmp, 'tls_policy')
        self.conf = os.path.join(self.tmp, 'tlsrelay.conf')

    def configure(self, policy='', **keys):
        with open(self.policy, 'w') as f:
            f.write(policy)
        settings = dict(self.zone.relay_keys(),
                        myhostname='relay.test',
                        queue_dir=os.path.join(self.tmp, 'queue'),
                        policy_file=self.policy,
                        tls_ca_file=self.ca.cert,
                        default_tls_level='encrypt',
                        remote_port=25,
                        # Names outside the zone go to a port nobody
                        # answers on: nothing leaves the machine.
                        dns_servers='127.0.0.1@%d' % harness.unused_udp_port())
        settings.update(keys)
        harness.write_config(self.conf, settings)

    def show(self, domain):
        r = run([BIN, 'policy', 'show', '-c', self.conf, domain],
                env=base_env(), timeout=40)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        return r.stdout.splitlines()

    def dns_lines(self, lines):
        """The lines of the lookups: from the first "mx:" on, without the
        DNSSEC check's line that ends the output."""
        for i, line in enumerate(lines):
            if line.startswith('mx:'):
                return [l for l in lines[i:] if not l.startswith('DNSSEC: ')]
        self.fail('no mx: line in:\n' + '\n'.join(lines))

    # -- policy show -------------------------------------------------------

    def test_show_dane(self):
        self.configure()
        out = self.show('dane.test')
        # The lines of the policy file come first, unchanged.
        self.assertEqual(out[:3], [
            'domain: dane.test',
            'level: encrypt (default_tls_level, config %s)' % self.conf,
            'entry: none (no entry in %s matches)' % self.policy,
        ])
        self.assertEqual(self.dns_lines(out), [
            'mx: mx1.dane.test (pref 10): MX secure, addresses secure '
            '(127.0.0.80), TLSA secure at _25._tcp.mx1.dane.test: 3 1 1 %s '
            '(and 1 unusable)' % self.spki,
            '  level: dane (DANE: usable TLSA records; MX RRset secure -> '
            'Verified)',
        ])

    def test_show_dane_entry(self):
        self.configure('dane.test dane-only\n')
        self.assertEqual(self.dns_lines(self.show('DANE.test.'))[1],
                         '  level: dane-only (policy file %s:1; DANE: usable '
                         'TLSA records; MX RRset secure -> Verified)'
                         % self.policy)

    def test_show_unsigned_child(self):
        """Insecure MX and addresses: no TLSA lookup (although the child
        zone has a record), and the default level stays."""
        self.configure()
        self.assertEqual(self.dns_lines(self.show('insecure.test')), [
            'mx: mx1.insecure.test (pref 10): MX insecure, addresses insecure '
            '(127.0.0.82), TLSA: not looked up (addresses not DNSSEC-secure)',
            '  level: encrypt (default_tls_level, config %s; no usable TLSA '
            'records)' % self.conf,
        ])

    def test_show_entry_wins(self):
        self.configure('dane.test encrypt\n')
        self.assertEqual(self.dns_lines(self.show('dane.test')), [
            'mx: mx1.dane.test (pref 10): MX secure, addresses secure '
            '(127.0.0.80), TLSA: not looked up (the policy entry\'s level '
            'encrypt wins over DANE)',
            '  level: encrypt (policy file %s:1; the entry wins over DANE)'
            % self.policy,
        ])

    def test_show_secure_denial(self):
        self.configure()
        lines = self.dns_lines(self.show('nodane.test'))
        self.assertEqual(lines[0], 'mx: mx1.nodane.test (pref 10): MX secure, '
                         'addresses secure (127.0.0.81), TLSA: none (secure '
                         'denial at _25._tcp.mx1.nodane.test)')
        self.assertEqual(lines[1], '  level: encrypt (default_tls_level, '
                         'config %s; no usable TLSA records)' % self.conf)
        # dane-only without records: the relay's own deferral reason.
        self.configure('nodane.test dane-only\n')
        self.assertEqual(self.dns_lines(self.show('nodane.test'))[1],
                         '  level: dane-only (policy file %s:1): mail '
                         'deferred: TLS is required with DANE '
                         'authentication, but mx1.nodane.test has no '
                         'DNSSEC-secure TLSA records' % self.policy)

    def test_show_tlsa_lookup_error(self):
        """A TLSA lookup that fails (REFUSED here) is not "no records": the
        mail would be deferred, whatever the default level."""
        ub = self.zone.write_unbound_conf(
            os.path.join(self.tmp, 'ub.conf'),
            extra_server=['local-zone: "_tcp.mx1.dane.test." refuse'])
        self.configure(dns_unbound_config=ub, default_tls_level='may')
        why = ('TLSA lookup error for _25._tcp.mx1.dane.test: Host not '
               'found, try again')
        self.assertEqual(self.dns_lines(self.show('dane.test')), [
            'mx: mx1.dane.test (pref 10): MX secure, addresses secure '
            '(127.0.0.80), ' + why,
            '  level: may (default_tls_level, config %s): mail deferred: %s'
            % (self.conf, why),
        ])

    def test_show_bogus(self):
        """Validation fails (wrong trust anchor): the MX lookup says so, and
        the command still exits 0."""
        ub = self.zone.write_unbound_conf(
            os.path.join(self.tmp, 'ub.conf'),
            trust_anchor_file=self.zone.bad_trust_anchor(
                os.path.join(self.tmp, 'bad.ds')))
        self.configure(dns_unbound_config=ub,
                       dns_trust_anchor_file='/nonexistent/anchor')
        lines = self.dns_lines(self.show('dane.test'))
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r'^mx: DNSSEC validation failed for '
                         r'name=dane\.test type=MX: .+$')

    # -- certs probe --domain ----------------------------------------------

    def probe_setup(self):
        """An MX with the certificate on 127.0.0.80, and the zone's TLSA
        records moved to its port."""
        m = mxpeer.MX(self).start('127.0.0.80', 0, tls_cert=self.cert.cert,
                                  tls_key=self.cert.key,
                                  hostname='mx1.dane.test')
        self.zone.set_records(self.records(m.port))
        self.addCleanup(self.zone.set_records, self.records(25))
        self.configure()
        return m

    def probe(self, *args):
        return run([BIN, 'certs', 'probe', '-c', self.conf] + list(args),
                   env=base_env(), timeout=60)

    def assertProbed(self, r, verdict):
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        self.assertEqual(r.stdout.splitlines()[-1], 'Verification: ' + verdict,
                         r.stdout)

    def test_probe(self):
        m = self.probe_setup()
        port = m.port
        # Matching record, MX RRset secure and listing the host: Verified.
        r = self.probe('--domain', 'dane.test', 'mx1.dane.test:%d' % port)
        self.assertProbed(r, 'Verified (dane: TLSA record matched (3 1 1 %s))'
                          % self.spki)
        out = r.stdout
        self.assertIn('\nMX: dane.test: secure, lists mx1.dane.test (a TLSA '
                      'match is Verified)\n', out)
        self.assertIn('\naddresses of mx1.dane.test: secure (127.0.0.80)\n',
                      out)
        self.assertIn('\nTLSA secure at _%d._tcp.mx1.dane.test: 3 1 1 %s '
                      '(and 1 unusable)\n' % (port, self.spki), out)
        self.assertIn('\nlevel: dane (DANE: usable TLSA records; MX RRset '
                      'secure -> Verified)\n', out)
        self.assertIn('\nconnected to mx1.dane.test[127.0.0.80]:%d\n' % port,
                      out)
        self.assertIn('\nSNI: mx1.dane.test\n', out)
        self.assertIn('\nVerified TLS connection established to '
                      'mx1.dane.test[127.0.0.80]:%d: ' % port, out)
        self.assertEqual(m.wait_event('starttls').get('tls_sni'),
                         'mx1.dane.test')
        # Not listed in the MX RRset: the match is only Trusted.
        r = self.probe('--domain', 'dane.test', 'mx2.dane.test:%d' % port)
        self.assertProbed(r, 'Trusted (dane: TLSA record matched (3 1 1 %s))'
                          % self.spki)
        self.assertIn('\nMX: dane.test: secure, does not list mx2.dane.test '
                      '(a TLSA match is only Trusted)\n', r.stdout)
        # A record that does not match: the relay's reason.
        r = self.probe('--domain', 'wrong.test', 'mx1.wrong.test:%d' % port)
        self.assertProbed(r, 'failed: Server certificate not verified: no TLSA '
                          'record matches (3 1 1 %s...)' % WRONG[:16])
        # The chain itself verifies (tls_ca_file): the TLS line says Trusted.
        self.assertIn('\nTrusted TLS connection established to ', r.stdout)
        # By address: no TLSA lookup, and the default level stays.
        r = self.probe('--domain', 'dane.test', '127.0.0.80:%d' % port)
        self.assertProbed(r, 'Trusted (encrypt: no authentication required)')
        self.assertIn('\nTLSA: not looked up (127.0.0.80 is an IP address)\n',
                      r.stdout)
        self.assertNotIn('\nMX: ', r.stdout)

    def test_probe_no_address(self):
        """A host the relay's resolver has no address for: exit 1, with the
        resolver's reason."""
        self.configure()
        r = self.probe('--domain', 'dane.test', 'mx9.dane.test:25')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('\naddresses of mx9.dane.test: none (Host not found, '
                      'DNSSEC-secure)\n', r.stdout)
        self.assertEqual(r.stderr, 'tlsrelay: cannot resolve mx9.dane.test: '
                         'Host or domain name not found. Name service error '
                         'for name=mx9.dane.test type=A: Host not found\n')


if __name__ == '__main__':
    unittest.main()
