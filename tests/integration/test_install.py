"""`meson install --destdir` from the build folder the tests run in, and
what it puts in place: the binary, the sendmail and mailq links, the three
manual pages (rendered without warnings), the example configuration and
policy file (both load as the relay loads them), the systemd unit
(`systemd-analyze verify` passes, and `systemd-analyze security` scores it
at or below EXPOSURE_MAX) and the sysusers.d file (systemd-sysusers
creates the user from it in a scratch root).

The build folder is the one holding $TLSRELAY (build/tlsrelay).  Manual
pages need scdoc (meson option `man`, auto): outside CI a build without
them skips those checks (exit 77 at the end); under CI=true it fails.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(harness.BIN))
CI = os.environ.get('CI') == 'true'
# Measured with systemd 252 (Debian 12): 2.4 ("OK").  A unit change that
# raises it fails here; lower it when the unit gets better.
EXPOSURE_MAX = 2.4
MAN_PAGES = (('man8', 'tlsrelay.8'), ('man5', 'tlsrelay.conf.5'), ('man5', 'tls_policy.5'))

skipped = []


def need(tool):
    path = shutil.which(tool)
    if not path:
        if CI:
            raise AssertionError('%s not found (CI=true: a missing tool is a failure)' % tool)
        skipped.append(tool)
    return path


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.require_binary()
        if not os.path.isdir(os.path.join(BUILD, 'meson-info')):
            raise AssertionError('%s is not a build folder' % BUILD)
        meson = shutil.which('meson')
        if not meson:
            raise AssertionError('meson not found')
        cls.tmp = tempfile.mkdtemp(prefix='tlsrelay-install-')
        cls.dest = os.path.join(cls.tmp, 'dest')
        r = subprocess.run([meson, 'install', '-C', BUILD, '--no-rebuild', '--destdir', cls.dest],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, True)
            raise AssertionError('meson install failed:\n' + r.stdout[-4000:])
        opts = json.loads(subprocess.run(
            [meson, 'introspect', '--buildoptions', BUILD], stdout=subprocess.PIPE,
            text=True, check=True).stdout)
        cls.opt = {o['name']: o['value'] for o in opts}

    @classmethod
    def tearDownClass(cls):
        if not harness.KEEP_TMP:
            shutil.rmtree(cls.tmp, True)

    def path(self, *parts):
        """A path under prefix (relative option values) inside DESTDIR."""
        full = os.path.join(self.opt['prefix'], *parts)
        return os.path.join(self.dest, full.lstrip('/'))

    def find(self, suffix):
        """The one installed file whose path ends in SUFFIX."""
        hits = []
        for root, _dirs, files in os.walk(self.dest):
            for f in files:
                p = os.path.join(root, f)
                if p.endswith(suffix):
                    hits.append(p)
        self.assertEqual(len(hits), 1, 'files ending in %s: %r' % (suffix, hits))
        return hits[0]

    def cli(self, *args):
        return harness.run([self.path(self.opt['sbindir'], 'tlsrelay')] + list(args),
                           env=harness.base_env())

    def test_binary_and_links(self):
        binary = self.path(self.opt['sbindir'], 'tlsrelay')
        self.assertTrue(os.access(binary, os.X_OK), binary)
        if not self.opt['sendmail_links']:
            # -Dsendmail_links=false: no link at all (another MTA keeps them).
            self.assertFalse(os.path.lexists(self.path(self.opt['sbindir'], 'sendmail')))
            self.assertFalse(os.path.lexists(self.path(self.opt['bindir'], 'mailq')))
            if CI:
                self.fail('CI builds with the default sendmail_links=true')
            return
        # As Debian's MTAs: sendmail in sbin (where programs look for it),
        # mailq in bin (on every user's PATH).
        for d, name in ((self.opt['sbindir'], 'sendmail'), (self.opt['bindir'], 'mailq')):
            link = self.path(d, name)
            self.assertTrue(os.path.islink(link), link)
            # Relative, so that it resolves inside DESTDIR to the binary.
            self.assertFalse(os.readlink(link).startswith('/'), os.readlink(link))
            self.assertTrue(os.path.samefile(link, binary), link)
        # Invoked through the links, the binary is sendmail and mailq.
        q = os.path.join(self.tmp, 'linkqueue')
        os.makedirs(q)
        conf = os.path.join(self.tmp, 'link.conf')
        with open(conf, 'w') as f:
            f.write('queue_dir = %s\n' % q)
        r = harness.run([self.path(self.opt['sbindir'], 'sendmail'), '-c', conf, '-f',
                         'a@example.com', 'b@example.net'], input='Subject: t\n\nhi\n',
                        env=harness.base_env())
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        r = harness.run([self.path(self.opt['bindir'], 'mailq'), '-c', conf],
                        env=harness.base_env())
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        self.assertIn('b@example.net', r.stdout)
        self.assertIn('-- 0 Kbytes in 1 Request.', r.stdout)

    def test_man_pages(self):
        pages = [self.path(self.opt['mandir'], d, p) for d, p in MAN_PAGES]
        if not all(os.path.exists(p) for p in pages):
            if CI or self.opt['man'] == 'enabled':
                self.fail('manual pages not installed: %r' % pages)
            skipped.append('man pages (not built: scdoc missing or -Dman=disabled)')
            return
        groff, man = need('groff'), need('man')
        for page in pages:
            if groff:
                r = subprocess.run([groff, '-man', '-ww', '-z', page],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.assertEqual((r.returncode, r.stderr), (0, ''), page)
            if man:
                env = dict(os.environ, MANWIDTH='80', MAN_KEEP_FORMATTING='0')
                r = subprocess.run([man, '--warnings', '-l', page], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
                self.assertEqual((r.returncode, r.stderr), (0, ''), page)
                text = re.sub(r'.\x08', '', r.stdout)  # overstrike: bold, underline
                for section in ('NAME', 'DESCRIPTION', 'SEE ALSO'):
                    self.assertRegex(text, r'(?m)^%s$' % section, page)
                self.assertGreater(len(text.splitlines()), 60, page)

    def test_example_config_loads(self):
        docs = self.path(self.opt['datadir'], 'doc', 'tlsrelay', 'examples')
        conf, pol = os.path.join(docs, 'tlsrelay.conf'), os.path.join(docs, 'tls_policy')
        with open(conf) as f:
            text = f.read()
        # A production configuration, for the unit's directories.  It
        # listens beside a Postfix on the same host (which holds port 25)
        # on Postfix's content-filter port, and says how to point Postfix
        # there; a relay host of its own (LAN address, port 25) is the
        # commented alternative.
        for line in ('listen = 127.0.0.1:10025', 'queue_dir = /var/lib/tlsrelay',
                     'policy_file = /etc/tlsrelay/tls_policy',
                     '#listen = 192.0.2.25:25',
                     '#mynetworks = 127.0.0.0/8, [::1]/128, 192.0.2.0/24'):
            self.assertRegex(text, r'(?m)^%s$' % re.escape(line))
        self.assertIn('relayhost = [127.0.0.1]:10025', text)
        self.assertNotIn(':25`', text.replace('192.0.2.25]:25`', ''))
        self.assertRegex(text, r'(?m)^user = tlsrelay$')
        # Loaded as written, but with the queue and the policy file moved
        # to where this test may write and read them, and without the
        # user, which systemd-sysusers makes only on a real install
        # (test_privdrop covers `user`).
        text = re.sub(r'(?m)^user = tlsrelay$', '#user = tlsrelay', text)
        q = os.path.join(self.tmp, 'queue')
        os.makedirs(q)
        text = re.sub(r'(?m)^queue_dir = .*$', 'queue_dir = ' + q, text)
        text = re.sub(r'(?m)^policy_file = .*$', 'policy_file = ' + pol, text)
        test_conf = os.path.join(self.tmp, 'tlsrelay.conf')
        with open(test_conf, 'w') as f:
            f.write(text)
        r = self.cli('-c', test_conf, 'policy', 'check')
        self.assertEqual((r.returncode, r.stderr), (0, ''), r.stdout)
        self.assertEqual(r.stdout, '%s: 0 entries\n' % pol)
        # The queue it names takes mail and lists it.
        r = harness.run([self.path(self.opt['sbindir'], 'tlsrelay'), '-c', test_conf,
                         'sendmail', '-f', 'a@example.com', 'b@example.net'],
                        input='Subject: t\n\nhi\n', env=harness.base_env())
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        r = self.cli('-c', test_conf, 'mailq')
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        self.assertIn('-- 0 Kbytes in 1 Request.', r.stdout)
        # The relay-host setup loads too: its two lines in place of the
        # same-host ones.
        host = re.sub(r'(?m)^((listen|mynetworks) = )', r'#\1', text)
        host = re.sub(r'(?m)^#((listen|mynetworks) = .*192\.0\.2\..*)$', r'\1', host)
        self.assertEqual(len(re.findall(r'(?m)^(listen|mynetworks) = ', host)), 2)
        host_conf = os.path.join(self.tmp, 'tlsrelay-host.conf')
        with open(host_conf, 'w') as f:
            f.write(host)
        r = self.cli('-c', host_conf, 'policy', 'check')
        self.assertEqual((r.returncode, r.stderr), (0, ''), r.stdout)

    def test_example_policy(self):
        pol = self.path(self.opt['datadir'], 'doc', 'tlsrelay', 'examples', 'tls_policy')
        r = self.cli('policy', 'check', pol)
        self.assertEqual((r.returncode, r.stderr), (0, ''), r.stdout)
        # Each commented example entry is valid once its # is removed.
        with open(pol) as f:
            entries = [line[1:] for line in f
                       if re.match(r'#[a-z0-9.-]+\.[a-z]+\s+[a-z-]+(\s|$)', line)]
        self.assertGreaterEqual(len(entries), 5)
        live = os.path.join(self.tmp, 'tls_policy.live')
        with open(live, 'w') as f:
            f.writelines(entries)
        r = self.cli('policy', 'check', live)
        self.assertEqual((r.returncode, r.stderr), (0, ''), r.stdout)
        self.assertEqual(r.stdout, '%s: %d entries\n' % (live, len(entries)))

    def test_sysusers(self):
        sysusers = self.find('/sysusers.d/tlsrelay.conf')
        with open(sysusers) as f:
            lines = [line.split() for line in f if line.strip() and not line.startswith('#')]
        self.assertEqual([ln[:3] for ln in lines], [['u', 'tlsrelay', '-']])
        # systemd-sysusers creates the user from it (into a scratch root).
        sysusers_bin = need('systemd-sysusers')
        if not sysusers_bin:
            return
        root = os.path.join(self.tmp, 'sysroot')
        os.makedirs(os.path.join(root, 'etc'))
        r = subprocess.run([sysusers_bin, '--root', root, sysusers], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(os.path.join(root, 'etc', 'passwd')) as f:
            self.assertRegex(f.read(), r'(?m)^tlsrelay:x:\d+:\d+:[^:]*:/var/lib/tlsrelay:')

    def test_unit(self):
        unit = self.find('/systemd/system/tlsrelay.service')
        with open(unit) as f:
            text = f.read()
        binary = os.path.join(self.opt['prefix'], self.opt['sbindir'], 'tlsrelay')
        self.assertIn('\nExecStart=%s serve -c /etc/tlsrelay/tlsrelay.conf\n' % binary, text)
        for line in ('Type=notify', 'ExecReload=/bin/kill -HUP $MAINPID',
                     'StateDirectory=tlsrelay', 'ConfigurationDirectory=tlsrelay',
                     # queue_dir's default, read-only under ProtectSystem=strict else
                     'ReadWritePaths=-/var/spool/tlsrelay',
                     'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
                     'CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID '
                     'CAP_CHOWN', 'SystemCallFilter=@system-service',
                     'MemoryDenyWriteExecute=yes'):
            self.assertRegex(text, r'(?m)^%s$' % re.escape(line))
        # The relay drops privileges itself (the `user` key).
        self.assertNotRegex(text, r'(?m)^(User|DynamicUser)=')
        analyze = need('systemd-analyze')
        if not analyze:
            return
        # verify checks that ExecStart is executable and that the man:
        # pages of Documentation= exist: point both into DESTDIR.
        vdir = os.path.join(self.tmp, 'verify')
        os.makedirs(vdir, exist_ok=True)
        copy = os.path.join(vdir, 'tlsrelay.service')
        with open(copy, 'w') as f:
            f.write(text.replace('\nExecStart=' + binary,
                                 '\nExecStart=' + self.path(self.opt['sbindir'], 'tlsrelay')))
        args = [analyze, 'verify']
        env = dict(os.environ)
        if os.path.exists(self.path(self.opt['mandir'], 'man8', 'tlsrelay.8')):
            env['MANPATH'] = self.path(self.opt['mandir'])
        else:
            args.append('--man=no')
        r = subprocess.run(args + [copy], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, ''))
        r = subprocess.run([analyze, 'security', '--offline=true', copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        m = re.search(r'Overall exposure level for tlsrelay\.service: (\d+\.\d+)', r.stdout)
        self.assertTrue(m, r.stdout)
        score = float(m.group(1))
        print('systemd-analyze security: %.1f (bound %.1f)' % (score, EXPOSURE_MAX))
        self.assertLessEqual(score, EXPOSURE_MAX, r.stdout)


if __name__ == '__main__':
    prog = unittest.main(exit=False, verbosity=2)
    if not prog.result.wasSuccessful():
        sys.exit(1)
    if skipped:
        print('skipped: ' + ', '.join(skipped))
        sys.exit(77)
    sys.exit(0)
