"""The README's first command, as a new user runs it: the relay built at
build/tlsrelay, started from the source folder on etc/tlsrelay.conf, on a
machine where the queue directory (and its parent) do not exist yet.

The last round's first command failed on a fresh machine and no test
noticed; this one runs the example configuration itself (only the listen
port and the queue folder are moved, so that tests never touch the
user's /tmp/tlsrelay-example or port 2525).
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SRC = os.environ.get('TLSRELAY_SRCDIR') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_commands():
    """The indented command lines of the README, in order."""
    with open(os.path.join(SRC, 'README.md')) as f:
        return [line.strip() for line in f if line.startswith('    ') and line.strip()]


def ci_packages():
    with open(os.path.join(SRC, '.ci', 'run')) as f:
        text = f.read()
    m = re.search(r'PACKAGES=\((.*?)\)', text, re.S)
    return set(m.group(1).split())


class ExampleConfig(unittest.TestCase):

    def test_readme_first_command(self):
        first = readme_commands()[0]
        self.assertTrue(first.startswith('apt-get update && apt-get install -y '), first)
        # The binary the README runs is the one meson builds at the top of
        # the build folder (INTERFACE.md: build/tlsrelay).
        self.assertIn('meson setup build && meson compile -C build && '
                      './build/tlsrelay serve -c etc/tlsrelay.conf', first)
        self.assertEqual(os.path.basename(harness.BIN), 'tlsrelay')
        self.assertTrue(os.path.isdir(os.path.join(os.path.dirname(harness.BIN), 'meson-info')),
                        '%s is not at the top of a build folder' % harness.BIN)
        # Every package the first command installs is one CI installs too,
        # and every library CI builds against is in the first command.
        pkgs = set(first.split('apt-get install -y ', 1)[1].split(' && ', 1)[0].split())
        self.assertLessEqual(pkgs, ci_packages())
        libs = {p for p in ci_packages() if p.endswith('-dev') and not p.startswith('libclang')}
        self.assertLessEqual(libs, pkgs)

    def test_example_config_starts_on_a_fresh_machine(self):
        tmp = tempfile.mkdtemp(prefix='tlsrelay-example-')
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(SRC, 'etc', 'tlsrelay.conf')) as f:
            text = f.read()
        port = harness.free_port()
        queue = os.path.join(tmp, 'not', 'yet', 'queue')
        self.assertRegex(text, r'(?m)^listen = ')
        self.assertRegex(text, r'(?m)^queue_dir = ')
        text = re.sub(r'(?m)^listen = .*$', 'listen = 127.0.0.1:%d' % port, text)
        text = re.sub(r'(?m)^queue_dir = .*$', 'queue_dir = %s' % queue, text)
        conf = os.path.join(tmp, 'tlsrelay.conf')
        with open(conf, 'w') as f:
            f.write(text)
        log = open(os.path.join(tmp, 'relay.log'), 'wb')
        self.addCleanup(log.close)
        import subprocess
        # From the source folder, as the README runs it (etc/tls_policy is
        # a relative path in the example).
        p = subprocess.Popen([harness.BIN, 'serve', '-c', conf], cwd=SRC,
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             env=harness.base_env())

        def stop():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)
        ok = harness.wait_for(lambda: p.poll() is not None or harness.port_open(port), 10)
        with open(os.path.join(tmp, 'relay.log')) as f:
            text = f.read()
        self.assertTrue(ok and p.poll() is None, 'relay did not start:\n' + text)
        self.assertEqual(os.stat(queue).st_mode & 0o777, 0o700)
        # It takes mail from this host and lists it.
        import smtplib
        s = smtplib.SMTP('127.0.0.1', port, timeout=10)
        try:
            s.sendmail('me@example.test', ['you@example.test'],
                       b'Subject: hello\r\n\r\nhello\r\n')
            s.quit()
        finally:
            s.close()
        # Accepted (logged), and mailq reads the queue beside the relay
        # (the message itself may already have bounced: example.test does
        # not resolve, and its DSN is then what is queued).
        logpath = os.path.join(tmp, 'relay.log')
        self.assertTrue(harness.wait_for(
            lambda: 'from=<me@example.test>, size=' in open(logpath).read(), 5))
        q = subprocess.run([harness.BIN, 'mailq', '-c', conf, '--json'], cwd=SRC,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(q.returncode, 0, q.stderr)
        import json
        for line in q.stdout.splitlines():
            self.assertIn('queue_id', json.loads(line))
        stop()
        self.assertEqual(p.returncode, 0)


if __name__ == '__main__':
    harness.require_binary()
    unittest.main(verbosity=2)
