"""The README's first command, as a new user runs it: the relay built at
build/tlsrelay, started from the source folder on etc/tlsrelay.conf, on a
machine where the queue directory (and its parent) do not exist yet.

The last round's first command failed on a fresh machine and no test
noticed; this one runs the example configuration itself (only the listen
port and the queue folder are moved, so that tests never touch the
user's /tmp/tlsrelay-example or port 2525; and dns_servers goes to a
loopback port nobody answers on, so that the DNSSEC check the relay makes
at start stays on this machine).

ReadmeFirstCommand runs the command itself, as written, in a fresh clone of
the committed HEAD of $TLSRELAY_SRCDIR (the apt-get part is dropped only when
every package it names is installed), and checks the 220 greeting on 2525.
It never touches a user's relay: it skips (exit 77, a failure under CI=true)
when port 2525 is in use or /tmp/tlsrelay-example exists and is not its own.

The command as written uses dns_servers = system, and the relay checks at
start that DNSSEC validation works by asking the system's resolver.  So
that no test ever sends a packet off the machine, this file runs in a
network namespace of its own in which only loopback exists (when it may
make one: as root; otherwise it says so and runs as it is).
"""

import os
import re
import socket
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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
        self.assertNotRegex(text, r'(?m)^dns_servers = ')
        text += 'dns_servers = 127.0.0.1@%d\n' % harness.unused_udp_port()
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


EXAMPLE_PORT = 2525
EXAMPLE_DIR = '/tmp/tlsrelay-example'
# Left in EXAMPLE_DIR while the test runs, so that a leftover of a killed run
# is told apart from a user's own queue (which is never touched).
MARKER = os.path.join(EXAMPLE_DIR, '.made-by-test_example_config')
# Clone, setup, compile and start (about a minute alone on 2 cores); meson's
# timeout for this test is above it, so the test always cleans up itself.
BUILD_TIMEOUT = 600.0


def installed(pkg):
    r = harness.run(['dpkg-query', '-W', '-f', '${Status}', pkg])
    return r.returncode == 0 and r.stdout.strip() == 'install ok installed'


def runnable_part(command):
    """The README command without its apt-get steps, which need root and
    the network; they may go only when all their packages are present."""
    steps = command.split(' && ')
    apt = [x for x in steps if x.startswith('apt-get ')]
    rest = [x for x in steps if not x.startswith('apt-get ')]
    pkgs = [w for x in apt if ' install ' in x
            for w in x.split(' install ', 1)[1].split() if not w.startswith('-')]
    missing = [p for p in pkgs if not installed(p)]
    return ' && '.join(rest), missing


def descendants(pid):
    """Every process below pid (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir('/proc/%d/task' % p):
                with open('/proc/%d/task/%s/children' % (p, t)) as f:
                    kids = [int(k) for k in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def exe_of(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0')[0].decode('utf-8', 'replace')
    except OSError:
        return ''


def our_relays(p):
    """The relay the command started: bash's child (whose exit code bash
    returns), or bash itself when it exec'd the last command of the list."""
    return [k for k in [p.pid] + descendants(p.pid)
            if exe_of(k).endswith('build/tlsrelay')]


class ReadmeFirstCommand(unittest.TestCase):

    def setUp(self):
        if harness.port_open(EXAMPLE_PORT):
            self.skipTest('port %d is in use (a relay of yours?): the README '
                          'command cannot be run here' % EXAMPLE_PORT)
        if os.path.exists(EXAMPLE_DIR) and not os.path.exists(MARKER):
            self.skipTest('%s exists and was not made by this test: move it '
                          'away to let the README command run' % EXAMPLE_DIR)
        shutil.rmtree(EXAMPLE_DIR, ignore_errors=True)  # our own leftover
        self.addCleanup(shutil.rmtree, EXAMPLE_DIR, True)

    def clone(self):
        """A fresh clone of the committed HEAD of the source tree."""
        if not os.path.exists(os.path.join(SRC, '.git')):
            self.fail('%s is not a git checkout: cannot clone it' % SRC)
        tmp = tempfile.mkdtemp(prefix='tlsrelay-readme-')
        self.addCleanup(shutil.rmtree, tmp, True)
        head = harness.run(['git', '-C', SRC, 'rev-parse', 'HEAD'])
        self.assertEqual(head.returncode, 0, head.stderr)
        clone = os.path.join(tmp, 'tlsrelay')
        for argv in (['git', 'clone', '-q', '--no-checkout', SRC, clone],
                     ['git', '-C', clone, 'checkout', '-q', '--detach',
                      head.stdout.strip()]):
            r = harness.run(argv, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
        return clone

    def start(self, command, cwd):
        """Run command under bash in its own process group; the cleanup
        kills the whole group, so no compiler or relay outlives the test."""
        log = open(os.path.join(cwd, 'readme-run.log'), 'wb')
        self.addCleanup(log.close)
        env = harness.base_env()
        for k in ('TLSRELAY', 'MESON_TEST_ITERATION'):
            env.pop(k, None)
        p = subprocess.Popen(['bash', '-c', command], cwd=cwd,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             env=env, start_new_session=True)
        harness._LIVE.add(p)

        def kill():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            harness._LIVE.discard(p)
        self.addCleanup(kill)
        return p

    def test_readme_first_command_from_a_fresh_clone(self):
        first = readme_commands()[0]
        command, missing = runnable_part(first)
        self.assertEqual(missing, [], 'the README installs packages that are '
                         'not installed here; install them to run this test')
        self.assertIn('./build/tlsrelay serve', command)
        clone = self.clone()
        p = self.start(command, clone)
        logpath = os.path.join(clone, 'readme-run.log')
        # Up once our relay runs and 2525 listens (not someone else's).
        up = harness.wait_for(lambda: p.poll() is not None or
                              (our_relays(p) and harness.port_open(EXAMPLE_PORT)),
                              BUILD_TIMEOUT, interval=0.5)
        with open(logpath, 'rb') as f:
            out = f.read().decode('utf-8', 'replace')[-6000:]
        self.assertTrue(up and p.poll() is None,
                        '`%s` did not listen on %d (exit %s):\n%s'
                        % (command, EXAMPLE_PORT, p.poll(), out))
        with open(MARKER, 'w'):
            pass
        with open(os.path.join(clone, 'etc', 'tlsrelay.conf')) as f:
            name = re.search(r'(?m)^myhostname = (\S+)', f.read()).group(1)
        with harness.RawSMTP(EXAMPLE_PORT) as c:
            greeting = c.expect(220)
            self.assertTrue(greeting.text.startswith(name + ' '), greeting)
            c.cmd('QUIT')
        # SIGTERM to the relay; bash exits with its code.
        relays = our_relays(p)
        self.assertEqual(len(relays), 1, relays)
        os.kill(relays[0], signal.SIGTERM)
        try:
            rc = p.wait(harness.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        with open(logpath, 'rb') as f:
            out = f.read().decode('utf-8', 'replace')[-4000:]
        self.assertEqual(rc, 0, 'after SIGTERM:\n' + out)


def loopback_only():
    """Move this process into a new network namespace with only loopback
    (up), so that nothing it starts can reach another host.  Returns None,
    or why it could not."""
    import ctypes
    import fcntl
    import struct
    CLONE_NEWNET = 0x40000000
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return os.strerror(ctypes.get_errno())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack('16sH22x', b'lo', 0))
        flags = struct.unpack('16sH22x', ifr)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack('16sH22x', b'lo', flags | IFF_UP))
    return None


def _sigterm(signum, frame):
    # meson's timeout: fail the running case (not KeyboardInterrupt, which
    # unittest lets past its cleanups), so the cleanups stop what it started.
    raise RuntimeError('SIGTERM (meson timeout?)')


if __name__ == '__main__':
    harness.require_binary()
    why = loopback_only()
    if why:
        print('note: no network namespace of our own (%s): the relay\'s '
              'DNSSEC check at start may ask the system resolver' % why,
              file=sys.stderr)
    signal.signal(signal.SIGTERM, _sigterm)
    prog = unittest.main(verbosity=2, exit=False)
    res = prog.result
    # A skipped case is a skipped test for meson (and a failure under CI=true).
    sys.exit(1 if not res.wasSuccessful() else 77 if res.skipped else 0)
