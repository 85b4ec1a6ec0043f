"""Configuration errors, -c placement, $TLSRELAY_CONFIG, usage errors."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, base_env, free_port, port_open, run  # noqa: E402

harness.require_binary()


class ConfigFiles(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-cfg-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port()

    def good_lines(self):
        return [
            '# tlsrelay test configuration',
            'listen = 127.0.0.1:%d' % self.port,
            'myhostname = relay.test',
            'queue_dir = %s' % os.path.join(self.dir, 'queue'),
            'policy_file = %s' % os.path.join(self.dir, 'tls_policy'),
            'default_tls_level = may',
            'dns_servers = 127.0.0.1@%d' % harness.unused_udp_port(),
        ]

    def write(self, name, lines):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def with_bad_line(self, bad, lineno, name='bad.conf'):
        """A config whose line `lineno` (1-based) is `bad`."""
        lines = self.good_lines()
        lines.insert(lineno - 1, bad)
        return self.write(name, lines)

    def serve(self, conf, timeout=10):
        t0 = time.monotonic()
        r = run([BIN, 'serve', '-c', conf], env=base_env(), timeout=timeout)
        return r, time.monotonic() - t0

    def test_unknown_key(self):
        conf = self.with_bad_line('bogus_key = 1', 3)
        r, took = self.serve(conf)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertLess(took, 5.0)
        self.assertIn('%s:3:' % conf, r.stderr)
        self.assertIn('bogus_key', r.stderr)
        self.assertFalse(port_open(self.port), 'relay listens despite error')

    def test_bad_values(self):
        cases = [
            ('max_message_size = ten', 3),
            ('retry_min = 5', 4),
            ('listen = nonsense', 9),
            ('default_tls_level = sometimes', 2),
            ('queue_lifetime = 5x', 5),
            ('mynetworks = 300.1.2.3/8', 6),
        ]
        for bad, lineno in cases:
            with self.subTest(line=bad):
                if lineno > len(self.good_lines()) + 1:
                    lineno = len(self.good_lines()) + 1
                conf = self.with_bad_line(bad, lineno)
                r, took = self.serve(conf)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertLess(took, 5.0)
                self.assertIn('%s:%d:' % (conf, lineno), r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1,
                                 'want one clear line: %r' % r.stderr)

    def test_line_numbers_count_comments_and_blanks(self):
        lines = self.good_lines()
        lines[3:3] = ['', '# a comment', '   ', '#another']
        lines.insert(10, 'max_message_size = lots')
        conf = self.write('c.conf', lines)
        r, _ = self.serve(conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn('%s:11:' % conf, r.stderr)

    def test_mailq_bad_config(self):
        conf = self.with_bad_line('no_such_option = yes', 4)
        r = run([BIN, 'mailq', '-c', conf], env=base_env())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('%s:4:' % conf, r.stderr)
        self.assertIn('no_such_option', r.stderr)

    def test_missing_config_file(self):
        conf = os.path.join(self.dir, 'absent.conf')
        r = run([BIN, 'mailq', '-c', conf], env=base_env())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(conf, r.stderr)

    def test_fifo_config_refused(self):
        """A FIFO given with -c is refused at once with one clear line:
        the old reader opened it blocking and hung until a writer came."""
        fifo = os.path.join(self.dir, 'fifo.conf')
        os.mkfifo(fifo)
        want = 'tlsrelay: %s: not a regular file (a FIFO)\n' % fifo
        # sendmail keeps its exit code for a configuration it cannot use
        # (75, EX_TEMPFAIL); every other command exits 1.
        for argv, code in ((['serve'], 1), (['mailq'], 1),
                           (['policy', 'check'], 1), (['queue', 'flush'], 1),
                           (['sendmail', 'a@b.test'], 75)):
            with self.subTest(argv=argv):
                t0 = time.monotonic()
                try:
                    r = run([BIN, '-c', fifo] + argv, input='',
                            env=base_env(), timeout=5)
                except subprocess.TimeoutExpired:
                    self.fail('%s hung on a FIFO as -c' % ' '.join(argv))
                self.assertEqual(r.returncode, code, r.stderr)
                self.assertEqual(r.stderr, want)
                self.assertLess(time.monotonic() - t0, 5.0)
        self.assertFalse(port_open(self.port), 'relay listens on a FIFO config')

    def good_with_message(self):
        """A good config whose queue holds one message from marker@b.test
        (so a listing shows which queue was read)."""
        good = self.write('good.conf', self.good_lines())
        r = run([BIN, 'sendmail', '-c', good, '-f', 'marker@b.test',
                 'rcpt@c.test'], input='Subject: m\n\nbody\n',
                env=base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return good

    def test_c_before_and_after_subcommand(self):
        good = self.good_with_message()
        bad = self.with_bad_line('bogus_key = 1', 2)
        for argv in (['-c', good, 'mailq'], ['mailq', '-c', good]):
            with self.subTest(argv=argv):
                r = run([BIN] + argv, env=base_env())
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(' marker@b.test\n', r.stdout)
        # the bad file proves the -c given is the one read
        for argv in (['-c', bad, 'mailq'], ['mailq', '-c', bad],
                     ['-c', bad, 'mailq', '--json'],
                     ['mailq', '--json', '-c', bad]):
            with self.subTest(argv=argv):
                r = run([BIN] + argv, env=base_env())
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn('%s:2:' % bad, r.stderr)

    def test_env_config(self):
        good = self.good_with_message()
        bad = self.with_bad_line('bogus_key = 1', 5)
        r = run([BIN, 'mailq'], env=base_env(TLSRELAY_CONFIG=bad))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('%s:5:' % bad, r.stderr)
        r = run([BIN, 'mailq'], env=base_env(TLSRELAY_CONFIG=good))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(' marker@b.test\n', r.stdout)
        # -c wins over the environment
        r = run([BIN, 'mailq', '-c', good], env=base_env(TLSRELAY_CONFIG=bad))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_valid_config_serves(self):
        # the good config really is good: serve starts on it
        conf = self.write('good.conf', self.good_lines())
        r = harness.Relay(self, start=False)
        r.conf = conf
        r.port = self.port
        r.start()
        self.assertTrue(port_open(self.port))


class Reload(unittest.TestCase):

    def ehlo_size(self, r):
        s = r.smtp()
        try:
            s.ehlo()
            return s.esmtp_features.get('size')
        finally:
            s.close()

    def test_sighup_applies_good_config(self):
        r = harness.Relay(self, max_message_size=100000)
        self.assertEqual(self.ehlo_size(r), '100000')
        keys = dict(r.keys, max_message_size='200000')
        harness.write_config(r.conf, keys)
        r.proc.send_signal(signal.SIGHUP)
        self.assertEqual(harness.wait_for(
            lambda: self.ehlo_size(r) == '200000', 5.0), True)
        self.assertTrue(r.alive())

    def test_sighup_keeps_old_config_on_error(self):
        r = harness.Relay(self, max_message_size=100000)
        lines = ['%s = %s' % kv for kv in r.keys.items()]
        lines[1:1] = ['max_message_size = 200000', 'bogus_key = 1']
        with open(r.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        r.proc.send_signal(signal.SIGHUP)
        self.assertTrue(r.wait_log(re.escape('%s:3:' % r.conf)),
                        r.log_text())
        self.assertTrue(r.alive())
        self.assertEqual(self.ehlo_size(r), '100000')
        code, reply, qid = harness.smtp_send(r, 'a@client.test',
                                             ['b@dest.test'],
                                             harness.make_message())
        self.assertEqual(code, 250, reply)


    def test_sighup_fifo_config_keeps_running(self):
        """A configuration file replaced by a FIFO before SIGHUP: the reload
        is refused with the reason and the relay goes on serving (the old
        reader blocked the event loop on the FIFO for good)."""
        r = harness.Relay(self, max_message_size=100000)
        os.unlink(r.conf)
        os.mkfifo(r.conf)
        r.proc.send_signal(signal.SIGHUP)
        self.assertTrue(r.wait_log(re.escape(
            '%s: not a regular file (a FIFO)' % r.conf)), r.log_text())
        self.assertTrue(r.alive())
        self.assertEqual(self.ehlo_size(r), '100000')


class Usage(unittest.TestCase):

    def test_unknown_subcommand(self):
        r = run([BIN, 'frobnicate'], env=base_env())
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.strip(), 'no message for a usage error')

    def test_no_subcommand(self):
        r = run([BIN], env=base_env())
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_unknown_option(self):
        r = run([BIN, 'mailq', '--no-such-option'], env=base_env())
        self.assertEqual(r.returncode, 2, r.stderr)


if __name__ == '__main__':
    unittest.main()
