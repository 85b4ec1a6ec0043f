"""`tlsrelay serve` under systemd: readiness through NOTIFY_SOCKET, and
syslog priority prefixes when stderr is the journal.

- NOTIFY_SOCKET names a Unix datagram socket the test binds (what systemd
  does for Type=notify): READY=1 arrives once the listener accepts
  connections (the port is open when it arrives); SIGHUP gives RELOADING=1
  (with MONOTONIC_USEC, the time of the reload) and then READY=1 once the
  policy file is loaded (its log line is written before), also when the
  new configuration is refused; SIGTERM gives STOPPING=1, exit 0, and
  nothing after it.
- A NOTIFY_SOCKET nobody listens on: the relay runs and says so in one
  warning (not again at the reload and the stop).
- JOURNAL_STREAM naming the relay's stderr (a file here; the "dev:ino" of
  it): every line starts with <6> (info), <4> (warning) or <3> (error).
  Naming another file (systemd's variable inherited past a redirection):
  the lines are as always, without prefixes.
"""

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Relay  # noqa: E402

harness.require_binary()

MSG_TIMEOUT = 15.0   # a start or a reload, with sanitizers
BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
# A log line of the relay's own (not, say, a sanitizer's).
OWN_LINE = re.compile(r' tlsrelay/serve\[\d+\]: ')


def dev_ino(path):
    st = os.stat(path)
    return '%d:%d' % (st.st_dev, st.st_ino)


class NotifySocket:
    """A Unix datagram socket in a temporary directory, as systemd's."""

    def __init__(self, testcase):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-notify-')
        testcase.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, 'notify')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        testcase.addCleanup(self.sock.close)
        self.sock.bind(self.path)

    def recv(self, timeout=MSG_TIMEOUT):
        """The next message as a list of lines; AssertionError if none."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            raise AssertionError('no notify message within %.0f s' % timeout)
        return data.decode().rstrip('\n').split('\n')

    def pending(self):
        """Messages already sent and not read, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode().rstrip('\n').split('\n'))
        except BlockingIOError:
            return out
        finally:
            self.sock.setblocking(True)


class Readiness(unittest.TestCase):

    def start(self):
        self.ns = NotifySocket(self)
        relay = Relay(self, start=False, env={'NOTIFY_SOCKET': self.ns.path})
        relay.start(wait=False)
        msg = self.ns.recv()
        # Checked at once: READY=1 means clients can connect now.
        self.assertTrue(harness.port_open(relay.port),
                        'READY=1 before port %d accepts; log:\n%s'
                        % (relay.port, relay.log_text()))
        self.assertEqual(msg, ['READY=1'], relay.log_text())
        self.assertTrue(relay.alive())
        return relay

    def test_ready_once_listening(self):
        relay = self.start()
        self.assertIn('daemon started', relay.log_text())
        with relay.smtp() as s:
            self.assertEqual(s.noop()[0], 250)
        self.assertEqual(self.ns.pending(), [])

    def test_sighup_reloading_then_ready(self):
        relay = self.start()
        # Distinct CA bundles as tafiles: the policy load (off the loop)
        # takes a moment, so a READY=1 sent before it ends shows.
        files = []
        for i in range(20):
            files.append(os.path.join(relay.dir, 'ta%d.pem' % i))
            shutil.copyfile(BUNDLE, files[-1])
        with open(relay.keys['policy_file'], 'w') as f:
            f.writelines('d%d.example secure tafile=%s\n' % (i, p)
                         for i, p in enumerate(files))
        before = time.monotonic_ns() // 1000
        relay.proc.send_signal(signal.SIGHUP)
        msg = self.ns.recv()
        after = time.monotonic_ns() // 1000
        self.assertEqual(msg[0], 'RELOADING=1', msg)
        usec = [int(x.split('=', 1)[1]) for x in msg if x.startswith('MONOTONIC_USEC=')]
        self.assertEqual(len(usec), 1, msg)
        self.assertTrue(before <= usec[0] <= after, (before, usec, after))
        self.assertEqual(self.ns.recv(), ['READY=1'])
        log = relay.log_text()
        self.assertIn('reloaded configuration from', log)
        # The watcher's reload (0.2 s after the write) may supersede the
        # SIGHUP's; either way READY=1 waits for the load that ends last.
        self.assertRegex(log, r'reloaded policy file .*: 20 entries',
                         'READY=1 came before the policy file was loaded')

        # A configuration that does not load: the old one stays, and the
        # reload still ends with READY=1.
        with open(relay.conf, 'a') as f:
            f.write('no_such_key = 1\n')
        relay.proc.send_signal(signal.SIGHUP)
        self.assertEqual(self.ns.recv()[0], 'RELOADING=1')
        self.assertEqual(self.ns.recv(), ['READY=1'])
        self.assertIn('keeping the previous configuration', relay.log_text())
        self.assertTrue(harness.port_open(relay.port))

    def test_sigterm_stopping_and_exit_0(self):
        relay = self.start()
        self.assertEqual(relay.stop(), 0, relay.log_text())
        self.assertEqual(self.ns.pending(), [['STOPPING=1']])

    def test_nobody_listening(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        relay = Relay(self, env={'NOTIFY_SOCKET': os.path.join(d, 'absent')})
        self.assertTrue(relay.wait_log(r'warning: cannot send READY=1 to the service '
                                       r'manager \(NOTIFY_SOCKET\): .*; not said again'))
        relay.proc.send_signal(signal.SIGHUP)
        self.assertTrue(relay.wait_log(r'reloaded configuration'))
        with relay.smtp() as s:
            self.assertEqual(s.noop()[0], 250)
        self.assertEqual(relay.stop(), 0)
        self.assertEqual(relay.log_text().count('cannot send'), 1, relay.log_text())


class JournalPriorities(unittest.TestCase):

    def start(self, journal_stream):
        """A relay whose stderr is its log file, JOURNAL_STREAM given by
        journal_stream(relay), which gets one warning (NOTIFY_SOCKET with
        no listener) at start and one error (a broken configuration on
        SIGHUP)."""
        d = tempfile.mkdtemp(prefix='tlsrelay-notify-')
        self.addCleanup(shutil.rmtree, d, True)
        relay = Relay(self, start=False,
                      env={'NOTIFY_SOCKET': os.path.join(d, 'absent')})
        open(relay.log_path, 'ab').close()
        relay.env['JOURNAL_STREAM'] = journal_stream(relay)
        relay.start()
        self.assertTrue(relay.wait_log(r'cannot send READY=1'), relay.log_text())
        with open(relay.conf, 'a') as f:
            f.write('no_such_key = 1\n')
        relay.proc.send_signal(signal.SIGHUP)
        self.assertTrue(relay.wait_log(r'keeping the previous configuration'),
                        relay.log_text())
        self.assertEqual(relay.stop(), 0)
        return relay.log_text().splitlines()

    def line(self, lines, text):
        found = [x for x in lines if text in x]
        self.assertEqual(len(found), 1, '%r in:\n%s' % (text, '\n'.join(lines)))
        return found[0]

    def test_prefixes_when_stderr_is_the_journal(self):
        lines = self.start(lambda r: dev_ino(r.log_path))
        own = [x for x in lines if OWN_LINE.search(x)]
        self.assertGreater(len(own), 3)
        for x in own:
            self.assertRegex(x, r'^<[3467]>[A-Z][a-z][a-z] [ \d]\d \d\d:\d\d:\d\d ', x)
        self.assertTrue(self.line(lines, 'daemon started').startswith('<6>'))
        self.assertTrue(self.line(lines, 'daemon stopped').startswith('<6>'))
        self.assertRegex(self.line(lines, 'cannot send READY=1'),
                         r'^<4>.*\]: warning: cannot send READY=1')
        self.assertRegex(self.line(lines, 'keeping the previous configuration'),
                         r'^<3>.*\]: error: ')

    def test_no_prefixes_when_stderr_is_elsewhere(self):
        lines = self.start(lambda r: dev_ino(r.conf))
        own = [x for x in lines if OWN_LINE.search(x)]
        self.assertGreater(len(own), 3)
        for x in own:
            self.assertRegex(x, r'^[A-Z][a-z][a-z] [ \d]\d \d\d:\d\d:\d\d ', x)
        self.assertRegex(self.line(lines, 'cannot send READY=1'),
                         r'^[A-Z].*\]: warning: cannot send READY=1')


if __name__ == '__main__':
    unittest.main()
