"""`tlsrelay certs fingerprint FILE` on certificates made with certtool:
the printed match= values are certtool's own SHA-256 digests of the
certificate and of its public key; unreadable or invalid files fail with one
line on stderr and exit 1; bad usage exits 2."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402
from harness import BIN, base_env, run  # noqa: E402

harness.require_binary()
if shutil.which(certs.CERTTOOL) is None:
    sys.stderr.write('certtool (gnutls-bin) not found; skipping\n')
    sys.exit(77)

LINE_RE = re.compile(r'^# (.*)\nmatch=((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$')


def certtool_cert_sha256(path):
    """certtool --fingerprint --hash sha256: lower-case hex, no colons."""
    out = subprocess.run([certs.CERTTOOL, '--fingerprint', '--hash', 'sha256',
                          '--infile', path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True,
                         stdin=subprocess.DEVNULL, timeout=60).stdout.decode()
    return out.split()[0]


def certtool_pubkey_sha256(path):
    """The sha256: line under "Public Key ID:" of certtool --pubkey-info:
    the SHA-256 of the DER SubjectPublicKeyInfo."""
    out = subprocess.run([certs.CERTTOOL, '--pubkey-info', '--infile', path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True, stdin=subprocess.DEVNULL,
                         timeout=60).stdout.decode()
    m = re.search(r'Public Key ID:\s*\n(?:\s*\S+\n)*?\s*sha256:([0-9a-f]{64})',
                  out)
    if not m:
        raise AssertionError('no sha256 Public Key ID in:\n' + out)
    return m.group(1)


def plain(colon_hex):
    return colon_hex.replace(':', '').lower()


class CertsFingerprint(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-certs-')
        cls.ca = certs.make_ca(cls.dir)
        cls.mx = certs.make_cert(cls.dir, 'mx.example.test',
                                 ['mx.example.test'], ca=cls.ca)
        cls.rsa = certs.make_cert(cls.dir, 'rsa.example.test',
                                  ['rsa.example.test'], ca=cls.ca,
                                  key_type='rsa')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def fingerprint(self, path):
        return run([BIN, 'certs', 'fingerprint', path], env=base_env())

    def write(self, name, data, mode='w'):
        path = os.path.join(self.dir, name)
        with open(path, mode) as f:
            f.write(data)
        return path

    def check_lines(self, lines, cert, subject):
        """Two pairs of lines: a comment line, then the match= line alone
        (pastable into a policy entry as it is)."""
        m1 = LINE_RE.match('\n'.join(lines[0:2]))
        m2 = LINE_RE.match('\n'.join(lines[2:4]))
        self.assertTrue(m1 and m2, lines)
        self.assertEqual(plain(m1.group(2)), certtool_cert_sha256(cert.cert))
        self.assertEqual(m1.group(1), 'SHA-256 of certificate ' + subject)
        self.assertEqual(plain(m2.group(2)), certtool_pubkey_sha256(cert.cert))
        self.assertEqual(m2.group(1), 'SHA-256 of public key')
        # The helper's independent digests (hashlib over certtool's DER).
        self.assertEqual(m1.group(2), cert.cert_sha256())
        self.assertEqual(m2.group(2), cert.pubkey_sha256())

    def test_pem(self):
        for c in (self.mx, self.rsa):
            r = self.fingerprint(c.cert)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, '')
            lines = r.stdout.splitlines()
            self.assertEqual(len(lines), 4, r.stdout)
            self.check_lines(lines, c, 'CN=' + c.name)

    def test_der(self):
        path = self.write('mx.der', self.mx.der(), 'wb')
        r = self.fingerprint(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_lines(r.stdout.splitlines(), self.mx, 'CN=mx.example.test')

    def test_chain_file(self):
        """Every certificate of a PEM file, in order."""
        path = self.write('both.pem', self.mx.pem() + self.ca.pem())
        r = self.fingerprint(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 8, r.stdout)
        self.check_lines(lines[:4], self.mx, 'CN=mx.example.test')
        self.check_lines(lines[4:], self.ca, 'CN=tlsrelay Test CA')

    def test_config_option_ignored(self):
        """-c before or after the subcommand does not need a config file."""
        missing = os.path.join(self.dir, 'no.conf')
        for args in (['-c', missing, 'certs', 'fingerprint', self.mx.cert],
                     ['certs', 'fingerprint', self.mx.cert, '-c', missing]):
            r = run([BIN] + args, env=base_env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stdout.splitlines()), 4)

    def assertFails(self, path, what):
        r = self.fingerprint(path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, '')
        err = r.stderr.splitlines()
        self.assertEqual(len(err), 1, r.stderr)
        self.assertIn(path, err[0])
        self.assertRegex(err[0], what)

    def test_errors(self):
        self.assertFails(os.path.join(self.dir, 'missing.pem'),
                         'No such file or directory')
        self.assertFails(self.write('empty.pem', ''), 'not a PEM or DER')
        self.assertFails(self.write('junk.pem', 'hello\n'), 'not a PEM or DER')
        self.assertFails(self.mx.key, 'not a valid PEM certificate')
        self.assertFails(self.write('cut.pem', self.mx.pem()[:200]),
                         'not a valid PEM certificate')
        self.assertFails(self.dir, r'not a regular file \(a directory\)')

    def test_usage(self):
        for args in (['certs'], ['certs', 'fingerprint'],
                     ['certs', 'fingerprint', 'a', 'b'], ['certs', 'frob', 'x']):
            r = run([BIN] + args, env=base_env())
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(r.stdout, '')


if __name__ == '__main__':
    unittest.main()
