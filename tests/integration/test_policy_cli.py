"""`tlsrelay policy check [FILE]` and `tlsrelay policy show DOMAIN`."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402
from harness import BIN, Relay, base_env, run  # noqa: E402

harness.require_binary()

SHA1 = '3A:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:9F'
SHA256 = ':'.join('%02X' % i for i in range(32))

GOOD = """\
# next-hop domain   level         attributes
example.com         encrypt
.example.com        secure        match=.example.com
bank.example        fingerprint   match=%s
                    match=%s
partner.example     verify        match=hostname:nexthop  protocols=>=TLSv1.3
                    ciphers=medium exclude=3DES:aNULL
legacy.example      may
relay.example       dane servername=nexthop
off.example         none
""" % (SHA1, SHA256.lower())

BAD = """\
a.example encrypt
b.example securee
c.example encrypt match=foo
d.example fingerprint
e.example fingerprint match=3A:ZZ
A.example. none
f.example verify protocols=TLSv1.4 foo=bar
 tafile=
"""

# The default tls_priority of the configuration (relay/cfg.c).
PRIORITY = ('NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:'
            '+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:'
            '-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:-RSA')
VERS12_13 = ':-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2'


# `policy show` ends with the DNSSEC check of the relay's start.  Here
# every question is refused at once, so the check fails without waiting
# and without leaving the machine (the default dns_servers of the tests is
# a port nobody answers on, which libunbound gives up on after 17 s).
REFUSE_ALL = 'server:\n    local-zone: "." refuse\n'


def quiet_relay(testcase, **keys):
    """A Relay (not started) whose DNS questions are all refused."""
    d = tempfile.mkdtemp(prefix='tlsrelay-policy-')
    testcase.addCleanup(shutil.rmtree, d, True)
    ub = os.path.join(d, 'unbound.conf')
    with open(ub, 'w') as f:
        f.write(REFUSE_ALL)
    return Relay(testcase, start=False, dns_unbound_config=ub, **keys)


def dnssec_line(relay):
    return ('DNSSEC: validation FAILS through %s (dns_servers, '
            'dns_unbound_config = %s): name=. type=DNSKEY: no answer '
            '(REFUSED)' % (relay.keys['dns_servers'],
                           relay.keys['dns_unbound_config']))


class PolicyCli(unittest.TestCase):

    def setUp(self):
        self.relay = quiet_relay(self)
        self.policy = self.relay.keys['policy_file']
        self.conf = self.relay.conf
        self.dnssec = dnssec_line(self.relay)

    def write(self, text, path=None):
        path = path or self.policy
        with open(path, 'w') as f:
            f.write(text)
        return path

    def policy_cli(self, *args):
        return self.relay.cli('policy', *args)

    # -- check ------------------------------------------------------------

    def test_check_good_file(self):
        self.write(GOOD)
        r = run([BIN, 'policy', 'check', self.policy], env=base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        self.assertEqual(r.stdout, '%s: 7 entries\n' % self.policy)

    def test_check_configured_file(self):
        self.write(GOOD)
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '%s: 7 entries\n' % self.policy)

    def test_check_missing_file_is_empty(self):
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '%s: no such file; no entries\n'
                         % self.policy)

    def test_check_bad_file_lists_every_error(self):
        path = self.write(BAD, os.path.join(self.relay.dir, 'tls_policy'))
        r = self.policy_cli('check', path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, '')
        p = path
        self.assertEqual(r.stderr.splitlines(), [
            '%s:2: unknown TLS level "securee" (expected one of none, may, '
            'encrypt, dane, dane-only, fingerprint, verify, secure)' % p,
            '%s:3: attribute match= is not valid at level encrypt' % p,
            '%s:4: fingerprint needs at least one match= digest' % p,
            '%s:5: bad digest "3A:ZZ" (20 or 32 colon-separated hex bytes)'
            % p,
            '%s:6: duplicate entry for "a.example" (first on line 1)' % p,
            '%s:7: protocols: unknown protocol "TLSv1.4" (expected SSLv2, '
            'SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)' % p,
            '%s:7: unknown attribute "foo"' % p,
            '%s:8: empty value for tafile=' % p,
        ])

    def test_check_nexthop_ignored_with_warning(self):
        """[host] and [host]:port keys are Postfix's explicit next hops,
        which the relay never has (it delivers to each domain's MX hosts):
        checked, named in a warning, applied to no domain, and no duplicate
        of the host's own key (exit 0).  A mistake inside one is still an
        error, listed in line order with the warnings."""
        self.write('relay.example encrypt\n[relay.example]:587 none\n[mx.example] may\n')
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 0, r.stderr)
        why = ("names an explicit next hop, which tlsrelay never uses (it delivers "
               "to each domain's MX hosts); the entry is ignored. Write the domain "
               "without brackets to set its policy.")
        self.assertEqual(r.stderr.splitlines(), [
            '%s:2: warning: [relay.example]:587 %s' % (self.policy, why),
            '%s:3: warning: [mx.example] %s' % (self.policy, why),
        ])
        self.assertEqual(r.stdout, '%s: 1 entry, 2 ignored (see the warnings)\n'
                         % self.policy)
        out = self.show('relay.example')
        self.assertIn('level: encrypt (policy file %s:1)' % self.policy, out)
        self.assertEqual(self.show('mx.example')[1:3], [
            'level: may (default_tls_level, config %s)' % self.conf,
            'entry: none (no entry in %s matches)' % self.policy])
        self.write('a.example may\n[b.example]:25 encrypt match=b.example\n')
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, '')
        self.assertEqual(r.stderr.splitlines(), [
            '%s:2: attribute match= is not valid at level encrypt' % self.policy,
            '%s:2: warning: [b.example]:25 %s' % (self.policy, why),
        ])

    def test_check_relative_name_kept(self):
        """Messages name the file as given, like the contract's examples."""
        self.write('x.example encrypt match=x\n')
        cwd = os.getcwd()
        os.chdir(self.relay.dir)
        self.addCleanup(os.chdir, cwd)
        r = run([BIN, 'policy', 'check', 'tls_policy'], env=base_env())
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, 'tls_policy:1: attribute match= is not '
                         'valid at level encrypt\n')

    def test_check_tafile_must_exist(self):
        ta = os.path.join(self.relay.dir, 'ta.pem')
        self.write('a.example secure tafile=%s\n' % ta)
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, '%s:1: tafile "%s": cannot open file: No such file or '
                         'directory\n' % (self.policy, ta))
        # A file without a CA certificate would defer all mail: an error too.
        with open(ta, 'w') as f:
            f.write('')
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 1)
        self.assertIn('%s:1: tafile "%s": no usable CA certificate' % (self.policy, ta),
                      r.stderr)
        ca = certs.make_ca(self.relay.dir)
        with open(ca.cert) as src, open(ta, 'w') as f:
            f.write(src.read())
        r = self.policy_cli('check')
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_nul_and_long_lines(self):
        """A NUL byte is named as such; an over-long line is only that."""
        with open(self.policy, 'wb') as f:
            f.write(b'a.example encrypt\nb.example m\x00y\n'
                    b'c.example ' + b'x' * 5000 + b'\n')
        r = self.policy_cli('check', self.policy)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines(), [
            '%s:2: NUL character' % self.policy,
            '%s:3: line too long (over 4096 bytes)' % self.policy,
        ])

    def test_check_refuses_fifo(self):
        """A FIFO as policy file or tafile is refused at once, never opened
        for a blocking read (which would hang until a writer came)."""
        fifo = os.path.join(self.relay.dir, 'fifo')
        os.mkfifo(fifo)
        r = run([BIN, 'policy', 'check', fifo], env=base_env(), timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, '%s: not a regular file (a FIFO)\n' % fifo)
        self.write('a.example secure tafile=%s\n' % fifo)
        r = run([BIN, 'policy', 'check', self.policy], env=base_env(),
                timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, '%s:1: tafile "%s": not a regular file '
                         '(a FIFO)\n' % (self.policy, fifo))
        r = run([BIN, 'policy', 'check', '/dev/null'], env=base_env(),
                timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, '/dev/null: not a regular file '
                         '(a character device)\n')

    def test_check_refuses_file_over_16mib(self):
        """A policy file over 16 MiB is refused whole.  The old reader
        stopped at the last 8 KiB read that fit and parsed only that: a
        file 8 KiB over the limit passed as its first 16 MiB, entries past
        the limit (broken ones here) unseen."""
        line = b'#' + b'x' * 1022 + b'\n'
        with open(self.policy, 'wb') as f:
            f.write(line * (16 * 1024))
            f.write(b'a.example nonsense\n' * 431)
        r = self.policy_cli('check', self.policy)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stderr, '%s: file too large (over 16777216 '
                         'bytes)\n' % self.policy)

    def test_usage(self):
        self.assertEqual(self.policy_cli().returncode, 2)
        self.assertEqual(self.policy_cli('bogus').returncode, 2)
        self.assertEqual(self.policy_cli('check', 'a', 'b').returncode, 2)
        self.assertEqual(self.policy_cli('show').returncode, 2)

    # -- show -------------------------------------------------------------

    def show(self, domain):
        """The policy file's lines and the DNSSEC line; the lookup lines
        between them ("mx: ..." and what follows) are kept in self.dns."""
        r = self.policy_cli('show', domain)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        lines = r.stdout.splitlines()
        first = [i for i, l in enumerate(lines) if l.startswith('mx: ')]
        self.assertTrue(first, r.stdout)
        self.dns = lines[first[0]:-1]
        return lines[:first[0]] + lines[-1:]

    def test_show_lookups(self):
        """After the policy file's lines, the MX lookup of the domain in
        its A-label form; its failure is part of the answer (exit 0)."""
        self.write(GOOD)
        self.show('Example.COM.')
        self.assertEqual(self.dns, [
            'mx: Host or domain name not found. Name service error for '
            'name=Example.COM type=MX: Host not found, try again'])
        self.show('bücher.example')
        self.assertEqual(self.dns, [
            'mx: Host or domain name not found. Name service error for '
            'name=xn--bcher-kva.example type=MX: Host not found, try again'])

    def test_show_exact(self):
        self.write(GOOD)
        src = 'policy file %s:2' % self.policy
        self.assertEqual(self.show('Example.COM.'), [
            'domain: Example.COM.',
            'level: encrypt (%s)' % src,
            'entry: example.com (%s)' % src,
            'protocols: TLSv1.2 TLSv1.3 (tls_protocols = >=TLSv1.2, config '
            '%s)' % self.conf,
            'priority: %s%s (tls_priority, config %s; versions from '
            'protocols)' % (PRIORITY, VERS12_13, self.conf),
            'servername: none (default: no SNI)',
            self.dnssec,
        ])

    def test_show_parent(self):
        self.write(GOOD)
        src = 'policy file %s:3' % self.policy
        out = self.show('mx.a.example.com')
        self.assertEqual(out[:4], [
            'domain: mx.a.example.com',
            'level: secure (%s)' % src,
            'entry: .example.com (%s)' % src,
            'match: .example.com (%s)' % src,
        ])
        self.assertEqual(out[-2:], ['tafile: none (system trust store)',
                                    self.dnssec])

    def test_show_attributes(self):
        self.write(GOOD)
        src = 'policy file %s:6' % self.policy
        self.assertEqual(self.show('partner.example'), [
            'domain: partner.example',
            'level: verify (%s)' % src,
            'entry: partner.example (%s)' % src,
            'match: hostname (%s)' % src,
            'match: nexthop (%s)' % src,
            'protocols: TLSv1.3 (protocols=>=TLSv1.3, %s)' % src,
            'ciphers: medium (%s)' % src,
            'exclude: 3DES:aNULL (%s)' % src,
            'priority: %s:-VERS-ALL:+VERS-TLS1.3:+AES-256-CBC:+AES-128-CBC:'
            '+SHA256:+SHA384:+SHA1:+RSA:-3DES-CBC (tls_priority, config %s; '
            'versions from protocols; ciphers/exclude from %s)'
            % (PRIORITY, self.conf, src),
            'servername: none (default: no SNI)',
            'tafile: none (system trust store)',
            self.dnssec,
        ])

    def test_show_fingerprint_and_nexthop(self):
        self.write(GOOD)
        out = self.show('bank.example')
        src = 'policy file %s:4' % self.policy
        self.assertIn('match: %s (%s)' % (SHA1, src), out)
        self.assertIn('match: %s (%s)' % (SHA256, src), out)
        out = self.show('relay.example')
        src = 'policy file %s:9' % self.policy
        self.assertIn('level: dane (%s)' % src, out)
        self.assertIn('servername: nexthop (%s)' % src, out)

    def test_show_none(self):
        self.write(GOOD)
        src = 'policy file %s:10' % self.policy
        self.assertEqual(self.show('off.example'), [
            'domain: off.example',
            'level: none (%s)' % src,
            'entry: off.example (%s)' % src,
            self.dnssec,
        ])

    def test_show_default(self):
        self.write(GOOD)
        self.assertEqual(self.show('other.test'), [
            'domain: other.test',
            'level: may (default_tls_level, config %s)' % self.conf,
            'entry: none (no entry in %s matches)' % self.policy,
            'protocols: TLSv1.2 TLSv1.3 (tls_protocols = >=TLSv1.2, config '
            '%s)' % self.conf,
            'priority: %s%s (tls_priority, config %s; versions from '
            'protocols)' % (PRIORITY, VERS12_13, self.conf),
            'servername: none (default: no SNI)',
            self.dnssec,
        ])

    def test_show_default_secure(self):
        relay = quiet_relay(self, default_tls_level='secure',
                            tls_protocols='>=TLSv1.3')
        out = relay.cli('policy', 'show', 'x.test')
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[1], 'level: secure (default_tls_level, '
                         'config %s)' % relay.conf)
        self.assertEqual(lines[3:6], [
            'match: nexthop (default for secure)',
            'match: dot-nexthop (default for secure)',
            'protocols: TLSv1.3 (tls_protocols = >=TLSv1.3, config %s)'
            % relay.conf,
        ])

    def test_show_missing_file(self):
        out = self.show('example.com')
        self.assertEqual(out[1], 'level: may (default_tls_level, config %s)'
                         % self.conf)

    def test_show_resolver_unusable_fails(self):
        # The relay would not start with this: show says so and fails.
        relay = Relay(self, start=False,
                      dns_unbound_config='/nonexistent/unbound.conf')
        r = relay.cli('policy', 'show', 'x.test')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], 'domain: x.test')
        self.assertNotIn('DNSSEC', r.stdout)
        self.assertEqual(r.stderr, 'tlsrelay: dns: cannot read dns_unbound_config '
                         '/nonexistent/unbound.conf: No such file or '
                         'directory\n')

    def test_show_invalid_file_fails(self):
        self.write(BAD)
        r = self.policy_cli('show', 'a.example')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, '')
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 8)
        self.assertEqual(lines[0], '%s:2: unknown TLS level "securee" '
                         '(expected one of none, may, encrypt, dane, '
                         'dane-only, fingerprint, verify, secure)'
                         % self.policy)


if __name__ == '__main__':
    unittest.main()
