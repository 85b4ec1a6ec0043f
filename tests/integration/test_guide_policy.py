"""README "Moving a Postfix tls_policy table", end to end: the README's
table (comments, blank lines, continuation lines, [host] and [host]:port
keys, .parent keys, match= with ':' and '|', Postfix 3.0 { name = value }
groups, protocols=, ciphers=, exclude=) is first read by Postfix itself
(postmap -q on texthash:, so it is a table Postfix takes), then copied with
the README's command and checked with `policy check` (exit 0, a warning per
[host] line: explicit next hops never apply), shown entry by entry with
`policy show`, and last used for delivery: entries written in the same
forms deliver to a real MX under `secure` or hold the mail with the reason,
and a "[host]:25 none" line never sends the mail for host in clear."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import guides  # noqa: E402
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402

require_peers()
POSTMAP = '/usr/sbin/postmap'
guides.need(os.path.exists(POSTMAP),
            'Debian package postfix not installed (%s)' % POSTMAP)

FP1 = ('3A:0B:7C:6E:5D:4F:92:A1:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:'
       '91:A2:B3:C4:D5:E6:F7:08:19:2A')
FP2 = ':'.join(['AB', 'CD', 'EF', '01', '23', '45', '67', '89'] * 4)

# What `policy check` and the relay's log say of a [host] or [host]:port key.
NEXTHOP_WARNING = ('%s names an explicit next hop, which tlsrelay never uses '
                   "(it delivers to each domain's MX hosts); the entry is "
                   'ignored. Write the domain without brackets to set its '
                   'policy.')


def nexthop_lines(table):
    """(line number, key) of each [host] or [host]:port entry of table."""
    return [(i + 1, l.split()[0]) for i, l in enumerate(table.splitlines())
            if l.startswith('[')]


class PolicyGuide(DeliveryBase):

    RECORDS = [('mig.test.', 'MX', '10 mx1.mig.test.'),
               ('mx1.mig.test.', 'A', '127.0.0.64'),
               ('moved.test.', 'MX', '10 mx1.mig.test.'),
               ('mig2.test.', 'MX', '10 mx1.mig2.test.'),
               ('mx1.mig2.test.', 'A', '127.0.0.65')]
    HOSTS = ['127.0.0.64', '127.0.0.65']

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='tlsrelay-mig-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.table = guides.block('tls_policy')
        self.postfix_table = os.path.join(self.tmp, 'postfix_tls_policy')
        with open(self.postfix_table, 'w') as f:
            f.write(self.table)

    def migrate(self, relay):
        """The README's command, with our files for /etc/... and the
        relay's configuration in TLSRELAY_CONFIG (as for `sendmail`)."""
        cmd = [c for c in guides.indented_commands()
               if c.startswith('cp /etc/postfix/tls_policy ')]
        self.assertEqual(cmd, ['cp /etc/postfix/tls_policy /etc/tlsrelay/tls_policy '
                               '&& tlsrelay policy check'])
        cmd = (cmd[0].replace('/etc/postfix/tls_policy', self.postfix_table)
               .replace('/etc/tlsrelay/tls_policy', relay.keys['policy_file']))
        env = harness.base_env(
            TLSRELAY_CONFIG=relay.conf,
            PATH=os.path.dirname(harness.BIN) + os.pathsep + os.environ.get('PATH', ''))
        p = subprocess.run(['bash', '-ec', cmd], env=env, capture_output=True,
                           text=True, timeout=harness.CLI_TIMEOUT)
        harness.check_sanitizer(p.stderr, 'policy check')
        # Valid (exit 0); each [host] line is named, in line order, on stderr.
        path = relay.keys['policy_file']
        ignored = nexthop_lines(self.table)
        self.assertTrue(ignored)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.splitlines(),
                         ['%s:%d: warning: %s' % (path, n, NEXTHOP_WARNING % key)
                          for n, key in ignored])
        n = len([l for l in self.table.splitlines()
                 if l and not l[0].isspace() and l[0] not in '#['])
        self.assertEqual(p.stdout, '%s: %d entries, %d ignored (see the warning%s)\n'
                         % (path, n, len(ignored), '' if len(ignored) == 1 else 's'))
        with open(path) as f:
            self.assertEqual(f.read(), self.table)

    def test_postfix_reads_the_table(self):
        """The README's table is one Postfix takes: postmap finds every key
        with its whole value (continuation lines joined)."""
        conf = os.path.join(self.tmp, 'pf')
        os.mkdir(conf)
        with open(os.path.join(conf, 'main.cf'), 'w') as f:
            f.write('compatibility_level = 3.6\n')
        want = {
            '[mail.example.org]:587': 'secure { match = nexthop : dot-nexthop }',
            'example.org': 'secure { match = nexthop : dot-nexthop }',
            'example.net': 'secure match=.example.com:example.net\n'
                           '    protocols=!SSLv2:!SSLv3, ciphers=high',
            'bank.example': 'fingerprint\n    match=%s|%s\n    exclude=3DES:RC4'
                            % (FP1, FP2),
            'legacy.example': 'encrypt { protocols = >=TLSv1.2 } '
                              '{ exclude = 3DES RC4 }',
        }
        for key, value in want.items():
            p = subprocess.run([POSTMAP, '-c', conf, '-q', key,
                                'texthash:' + self.postfix_table],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, (key, p.stderr))
            # Postfix joins continuation lines with the line end kept.
            self.assertEqual(p.stdout.split(), value.split(), key)

    def test_check_and_show(self):
        # Every DNS question refused at once (as in test_policy_cli): the
        # lookups after the policy lines fail fast, nothing leaves the host.
        ub = os.path.join(self.tmp, 'refuse.conf')
        with open(ub, 'w') as f:
            f.write('server:\n    local-zone: "." refuse\n')
        relay = harness.Relay(self, start=False, dns_unbound_config=ub)
        self.migrate(relay)
        src = 'policy file %s' % relay.keys['policy_file']
        lines = self.table.splitlines()

        def line_of(prefix):
            return [i + 1 for i, l in enumerate(lines) if l.startswith(prefix)][0]

        def show(domain):
            r = relay.cli('policy', 'show', domain)
            self.assertEqual((r.returncode, r.stderr), (0, ''), r.stdout)
            return r.stdout.splitlines()

        n = line_of('example.net ')
        out = show('example.net')
        for want in ['level: secure (%s:%d)' % (src, n),
                     'entry: example.net (%s:%d)' % (src, n),
                     'match: .example.com (%s:%d)' % (src, n),
                     'match: example.net (%s:%d)' % (src, n),
                     'ciphers: high (%s:%d)' % (src, n)]:
            self.assertIn(want, out)
        self.assertTrue([x for x in out if x.startswith('protocols: TLSv1 TLSv1.1 '
                         'TLSv1.2 TLSv1.3 (protocols=!SSLv2:!SSLv3')], out)
        n = line_of('example.org ')
        out = show('example.org')
        for want in ['level: secure (%s:%d)' % (src, n),
                     'entry: example.org (%s:%d)' % (src, n),
                     'match: nexthop (%s:%d)' % (src, n),
                     'match: dot-nexthop (%s:%d)' % (src, n)]:
            self.assertIn(want, out)
        # [host] and [host]:port lines apply to no domain: the host's mail
        # gets default_tls_level (or DANE, MTA-STS), never the bracket entry.
        for host in ['mail.example.org', 'backup.example.org']:
            out = show(host)
            self.assertIn('level: may (default_tls_level, config %s)' % relay.conf, out)
            self.assertIn('entry: none (no entry in %s matches)'
                          % relay.keys['policy_file'], out)
        n = line_of('.example.com ')
        out = show('www.example.com')
        self.assertIn('entry: .example.com (%s:%d)' % (src, n), out)
        self.assertIn('match: .example.com (%s:%d)' % (src, n), out)
        self.assertIn('match: nexthop (default for secure)', show('example.com'))
        n = line_of('bank.example ')
        out = show('bank.example')
        self.assertIn('match: %s (%s:%d)' % (FP1, src, n), out)
        self.assertIn('match: %s (%s:%d)' % (FP2, src, n), out)
        self.assertIn('exclude: 3DES:RC4 (%s:%d)' % (src, n), out)
        n = line_of('legacy.example ')
        out = show('legacy.example')
        self.assertIn('level: encrypt (%s:%d)' % (src, n), out)
        self.assertIn('exclude: 3DES RC4 (%s:%d)' % (src, n), out)
        self.assertTrue([x for x in out if x.startswith('protocols: TLSv1.2 TLSv1.3 '
                                                         '(protocols=>=TLSv1.2')], out)
        self.assertIn('level: dane (%s:%d)' % (src, line_of('dane.example ')),
                      show('dane.example'))
        self.assertIn('level: may (%s:%d)' % (src, line_of('intranet.example ')),
                      show('intranet.example'))
        self.assertIn('level: none (%s:%d)' % (src, line_of('lab.example ')),
                      show('lab.example'))

    def test_delivery_under_migrated_entries(self):
        """Entries in the table's forms for domains of the test zone: a
        domain key with a { match = ... } group delivers to an MX whose
        certificate names mx1.mig.test (secure, .mig.test), whatever a
        [mig.test] line says; one whose match names the wrong domains holds
        the mail with the name mismatch.  "[mig2.test]:25 none" is not the
        policy of mig2.test: under default_tls_level = encrypt its mail is
        held at an MX without STARTTLS, never sent in clear."""
        cert = certs.make_cert(self.certdir, 'mx1.mig.test', ['mx1.mig.test'])
        mx = self.mx('127.0.0.64', 'mx1.mig.test', tls_cert=cert.cert,
                     tls_key=cert.key)
        mx2 = self.mx('127.0.0.65', 'mx1.mig2.test', tls=False)
        relay = self.relay(tls_ca_file=cert.ca.cert, default_tls_level='encrypt')
        extra = ('\n# moved from the old gateway\n'
                 'mig.test             secure { match = .mig.test : mig.test }\n'
                 '    protocols=!SSLv2:!SSLv3\n'
                 '[mig.test]           none\n'
                 '[mig2.test]:25       none\n'
                 'moved.test           secure match=.example.com:example.net\n')
        with open(self.postfix_table, 'a') as f:
            f.write(extra)
        self.table += extra
        self.migrate(relay)
        relay.wait_log(r'reloaded policy file', 10)
        # The relay logs each ignored line once per load, as a warning.
        n = [n for n, key in nexthop_lines(self.table) if key == '[mig2.test]:25'][0]
        self.wait_log(relay, r'warning: %s' % re.escape(
            '%s:%d: %s' % (relay.keys['policy_file'], n, NEXTHOP_WARNING % '[mig2.test]:25')))
        qid, msg_id = self.send(relay, 'a@src.test', ['bob@mig.test'])
        self.sent_line(relay, qid, 'bob@mig.test', 'mx1.mig.test', '127.0.0.64',
                       tls='verified')
        self.messages_with(mx, msg_id)
        qid2, _ = self.send(relay, 'a@src.test', ['carol@moved.test'])
        m = self.wait_deferred(relay, qid2)
        reason = m['recipients'][0]['delay_reason']
        self.assertIn('Server certificate not verified: name mismatch', reason)
        self.assertIn('.example.com', reason)
        qid3, _ = self.send(relay, 'a@src.test', ['dave@mig2.test'])
        m = self.wait_deferred(relay, qid3)
        self.assertIn('TLS is required, but was not offered by host '
                      'mx1.mig2.test[127.0.0.65]', m['recipients'][0]['delay_reason'])
        self.assertEqual(mx2.messages(), [])
        self.assertEqual(len(mx.messages()), 1)


if __name__ == '__main__':
    unittest.main()
