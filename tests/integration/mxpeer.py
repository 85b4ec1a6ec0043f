"""Run tests/peers/mx.py (a scriptable receiving MX) as a subprocess.

    mx = MX(self)                       # registers mx.close() as a cleanup
    mx.start('127.0.0.5', port, tls_cert=c.cert, tls_key=c.key,
             hostname='mx1.example.test',
             rcpt_reply={'bad@x.test': '550 5.1.1 No such user'},
             tempfail_first=1)
    ... let the relay deliver ...
    env, content = mx.wait_messages(1)[0]
    self.assertTrue(env['tls'])

Options map to mx.py's flags (see its docstring): tls_cert, tls_key,
no_starttls, tls_max_version ('TLSv1.2': the MX speaks no newer TLS),
tls_client_ca (a CA file: the MX requests, but does not require, a client
certificate chaining to it, and records the one shown as tls_client_cn and
tls_client_sha256 in envelopes and in the starttls event), hostname,
rcpt_reply (dict ADDRESS -> REPLY, or a list of "ADDRESS=REPLY" strings),
data_reply, mail_reply, no_smtputf8, log_connect (a "connect" event per
accepted connection), requiretls (offer REQUIRETLS after
STARTTLS and take the MAIL parameter, kept in mail_options), tempfail_first,
tempfail_stage, size_limit, verbose.  With TLS,
every envelope and starttls event also carries tls_sni: the server name the
client sent (SNI), or None when it sent none.  The MX runs under /usr/bin/python3, where Debian's
python3-aiosmtpd lives.  Each MX has a temp dir for its ready file, event
log and output; the maildir defaults to a folder in it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MX_PY = os.path.join(os.path.dirname(HERE), 'peers', 'mx.py')
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') \
    else sys.executable
KEEP_TMP = os.environ.get('TLSRELAY_KEEP_TMP') == '1'

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def aiosmtpd_available():
    """True when PYTHON can import aiosmtpd (tests skip otherwise)."""
    r = subprocess.run([PYTHON, '-c', 'import aiosmtpd'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def _flags(options):
    """mx.py arguments for the keyword options of MX.start()."""
    args = []
    for key, value in sorted(options.items()):
        flag = '--' + key.replace('_', '-')
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif key == 'rcpt_reply':
            items = (['%s=%s' % kv for kv in value.items()]
                     if isinstance(value, dict) else list(value))
            for item in items:
                args += [flag, item]
        else:
            args += [flag, str(value)]
    return args


def read_message(path):
    """(envelope dict, content bytes) of one stored message file."""
    with open(path, 'rb') as f:
        data = f.read()
    head, _, content = data.partition(b'\n')
    return json.loads(head), content


class MX:
    """One mx.py process.  Pass a TestCase to have close() run as its
    cleanup; otherwise call close() yourself."""

    def __init__(self, testcase=None):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-mx-')
        self.proc = None
        self.host = self.port = None
        self.maildir = None
        self.ready_file = os.path.join(self.dir, 'ready')
        self.log_file = os.path.join(self.dir, 'events.log')
        self.out_file = os.path.join(self.dir, 'mx.out')
        self.returncode = None
        if testcase is not None:
            testcase.addCleanup(self.close)

    def start(self, host, port, maildir=None, **options):
        """Start mx.py on host:port (port 0: any free port, then self.port
        holds the real one) and wait until it listens."""
        assert self.proc is None, 'MX already started'
        self.host = host
        self.maildir = maildir or os.path.join(self.dir, 'maildir')
        argv = [PYTHON, MX_PY, '--host', host, '--port', str(port),
                '--maildir', self.maildir, '--ready-file', self.ready_file,
                '--log', self.log_file] + _flags(options)
        with open(self.out_file, 'ab') as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                self.proc = None
                raise AssertionError('mx.py exited while starting:\n'
                                     + self.output())
            if time.monotonic() > deadline:
                self._kill()
                raise AssertionError('mx.py not ready within %.0f s:\n%s'
                                     % (START_TIMEOUT, self.output()))
            time.sleep(0.02)
        with open(self.ready_file) as f:
            self.port = json.load(f)['port']
        return self

    # -- inspection -------------------------------------------------------

    def output(self):
        """What mx.py wrote on stdout and stderr."""
        try:
            with open(self.out_file, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def messages(self):
        """Stored messages in arrival order, as (envelope, content)."""
        try:
            names = sorted(n for n in os.listdir(self.maildir)
                           if not n.startswith('.'))
        except FileNotFoundError:
            return []
        return [read_message(os.path.join(self.maildir, n)) for n in names]

    def wait_messages(self, n, timeout=10.0):
        """The stored messages once there are at least n; AssertionError
        when fewer arrived within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError('%d message(s) at the MX after %.0f s, '
                                     'wanted %d; events:\n%s'
                                     % (len(msgs), timeout, n,
                                        json.dumps(self.events(), indent=1)))
            time.sleep(0.05)

    def events(self):
        """The event log: one dict per ehlo, starttls, starttls_failed,
        mail, rcpt, data, quit, each with the peer, TLS state and the reply
        sent."""
        try:
            with open(self.log_file) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_event(self, kind, timeout=10.0):
        """The first event of that kind, waiting up to timeout for it;
        AssertionError when none came."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events():
                if e['event'] == kind:
                    return e
            if time.monotonic() > deadline:
                raise AssertionError('no %s event at the MX within %.0f s; '
                                     'events:\n%s' % (kind, timeout,
                                                      json.dumps(self.events(),
                                                                 indent=1)))
            time.sleep(0.05)

    # -- process control --------------------------------------------------

    def _kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None

    def stop(self):
        """SIGTERM and wait; returns the exit status (0 for a clean stop),
        killing the process if it does not exit within STOP_TIMEOUT."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                self.returncode = 'killed after SIGTERM timeout'
                return self.returncode
        self.returncode = p.returncode
        self.proc = None
        return self.returncode

    def close(self):
        """Cleanup: stop the MX, fail if it did not exit cleanly, remove its
        temp dir (a maildir passed to start() is the caller's)."""
        try:
            rc = self.stop()
            if rc not in (None, 0):
                raise AssertionError('mx.py on %s:%s exited with %s:\n%s'
                                     % (self.host, self.port, rc,
                                        self.output()[-4000:]))
        finally:
            if KEEP_TMP:
                sys.stderr.write('kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
