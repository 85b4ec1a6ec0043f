"""Shared helpers for the tlsrelay integration tests (stdlib only).

The relay under test is $TLSRELAY (set by meson), else
/work/main/build/tlsrelay.  Every relay runs in its own temporary
directory with its own queue, listens on a free 127.0.0.1 port and points its
resolver at an unused loopback port, so no real network or DNS is touched.

Set TLSRELAY_KEEP_TMP=1 to keep the temporary directories (and the relay's
log) of a run for inspection.
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get('TLSRELAY') or '/work/main/build/tlsrelay'
HOSTNAME = 'relay.test'
KEEP_TMP = os.environ.get('TLSRELAY_KEEP_TMP') == '1'

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0

QUEUED_RE = re.compile(rb'queued as ([0-9A-F]{10})\b')
ID_RE = re.compile(r'^[0-9A-F]{10}$')

# Lines a sanitizer writes when it finds a bug; their presence in the
# relay's log fails the test that ran it.
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                     'runtime error:', 'ThreadSanitizer')


_LIVE = set()


@atexit.register
def _kill_leftovers():
    """Last resort: no relay outlives the test process."""
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait()


def require_binary():
    """Exit 77 (meson's "skip") when the relay has not been built."""
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        sys.stderr.write('tlsrelay binary not found at %s; skipping\n' % BIN)
        sys.exit(77)


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that nothing is bound to right now."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def unused_udp_port():
    """A UDP port with nobody listening: DNS queries sent there go nowhere."""
    return free_port(socket.SOCK_DGRAM)


def wait_for(predicate, timeout=5.0, interval=0.05):
    """Poll predicate() until it returns a true value (returned) or time
    runs out (returns the last false value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(min(interval, 0.2))


def port_open(port, host='127.0.0.1', timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run(args, input=None, env=None, timeout=CLI_TIMEOUT, text=True):
    """subprocess.run with captured output; text decoding tolerates any
    byte (surrogateescape), so 8-bit content never raises."""
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
              timeout=timeout)
    if text:
        kw.update(encoding='utf-8', errors='surrogateescape')
    if input is not None:
        kw['input'] = input
    else:
        kw['stdin'] = subprocess.DEVNULL
    r = subprocess.run([str(a) for a in args], **kw)
    check_sanitizer(r.stderr, ' '.join(str(a) for a in args)[:200])
    return r


def check_sanitizer(stderr, what):
    """Fail when a command's stderr holds a sanitizer report.  Every CLI
    command the tests run (mailq, queue, policy, certs, sendmail) passes
    here through run(), as the daemon's log passes through Relay.close():
    a report is a bug even when the exit code and output look right."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode('utf-8', 'replace')
    for marker in SANITIZER_MARKERS:
        if stderr and marker in stderr:
            raise AssertionError('sanitizer report on the stderr of %s:\n%s'
                                 % (what, stderr[-4000:]))


def base_env(**extra):
    """The environment for CLI runs: no stray TLSRELAY_CONFIG unless given,
    nor the systemd variables of whatever runs the tests (a relay must not
    send READY=1 to the CI's service manager) unless given."""
    env = dict(os.environ)
    for name in ('TLSRELAY_CONFIG', 'NOTIFY_SOCKET', 'JOURNAL_STREAM'):
        env.pop(name, None)
    env.update(extra)
    return env


def write_config(path, keys):
    """Write `key = value` lines (keys: dict or list of pairs)."""
    items = keys.items() if isinstance(keys, dict) else keys
    with open(path, 'w') as f:
        for k, v in items:
            f.write('%s = %s\n' % (k, v))


class Relay:
    """A tlsrelay process with its own temp dir, config and queue.

    Relay(testcase, key=value, ...) writes the config (the defaults below plus
    the given keys, which override them), starts `tlsrelay serve` unless
    start=False, and registers its own cleanup on testcase.  env: variables
    added to the relay's environment (e.g. NOTIFY_SOCKET).
    """

    def __init__(self, testcase=None, start=True, env=None, **extra):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-it-')
        self.port = free_port()
        self.conf = os.path.join(self.dir, 'tlsrelay.conf')
        self.queue_dir = os.path.join(self.dir, 'queue')
        self.log_path = os.path.join(self.dir, 'relay.log')
        self.keys = {
            'listen': '127.0.0.1:%d' % self.port,
            'myhostname': HOSTNAME,
            'queue_dir': self.queue_dir,
            'policy_file': os.path.join(self.dir, 'tls_policy'),
            'default_tls_level': 'may',
            'dns_servers': '127.0.0.1@%d' % unused_udp_port(),
        }
        if 'dns_unbound_config' not in extra:
            # Without this, unbound answers NXDOMAIN for the special-use
            # name test. at once and every test message would bounce; with
            # it, lookups go to the dead forwarder above and delivery defers,
            # so accepted mail stays visible in the queue.
            ub = os.path.join(self.dir, 'unbound.conf')
            with open(ub, 'w') as f:
                f.write('server:\n    local-zone: "test." nodefault\n'
                        '    do-not-query-localhost: no\n')
            self.keys['dns_unbound_config'] = ub
        self.keys.update({k: str(v) for k, v in extra.items()})
        write_config(self.conf, self.keys)
        self.env = dict(env or {})
        self.proc = None
        self._log = None
        self._expect_dead = False
        self.problems = []
        if testcase is not None:
            testcase.addCleanup(self.close)
        if start:
            self.start()

    # -- process control -------------------------------------------------

    def start(self, wait=True):
        """Start `tlsrelay serve`; with wait, return once it accepts
        connections (else at once, for a test that watches the start)."""
        assert self.proc is None or self.proc.poll() is not None
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [BIN, 'serve', '-c', self.conf], stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=self._log, env=base_env(**self.env))
        _LIVE.add(self.proc)
        self._expect_dead = False
        if not wait:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    'tlsrelay serve exited with %s while starting; log:\n%s'
                    % (self.proc.returncode, self.log_text()))
            if port_open(self.port):
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError('tlsrelay did not accept connections on port %d '
                             'within %.0f s; log:\n%s'
                             % (self.port, START_TIMEOUT, self.log_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait up to 10 s, then SIGKILL.  Returns the exit status
        and records a problem if the relay had died on its own, did not stop
        in time, or exited non-zero (the contract says SIGTERM exits 0)."""
        if self.proc is None:
            return None
        p = self.proc
        _LIVE.discard(p)
        if p.poll() is not None:
            if not self._expect_dead:
                self.problems.append('relay had exited by itself with status '
                                     '%s' % p.returncode)
        else:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
                if p.returncode != 0:
                    self.problems.append('relay exited with status %s after '
                                         'SIGTERM (want 0)' % p.returncode)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.problems.append('relay did not exit within %.0f s of '
                                     'SIGTERM' % STOP_TIMEOUT)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return p.returncode

    def kill9(self):
        """SIGKILL the relay and reap it (a simulated crash)."""
        if self.proc is None:
            return
        self._expect_dead = True
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        _LIVE.discard(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        if self.alive():
            self.stop()
        else:
            self.proc = None
        self.start()

    def close(self):
        """Cleanup: stop the relay, check its log, remove the temp dir."""
        try:
            self.stop()
            log = self.log_text()
            for marker in SANITIZER_MARKERS:
                if marker in log:
                    self.problems.append('sanitizer report in relay log')
                    break
            if self.problems:
                raise AssertionError('; '.join(self.problems) +
                                     '\nrelay log:\n' + log[-4000:])
        finally:
            if KEEP_TMP:
                sys.stderr.write('kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- inspection -------------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def cli(self, *args, input=None, env=None, text=True, config=True,
            timeout=CLI_TIMEOUT):
        """Run `tlsrelay -c CONF ARGS...` and return the CompletedProcess."""
        argv = [BIN] + (['-c', self.conf] if config else []) + list(args)
        return run(argv, input=input, env=env or base_env(), text=text,
                   timeout=timeout)

    def mailq_json(self):
        r = run([BIN, 'mailq', '-c', self.conf, '--json'], env=base_env())
        if r.returncode != 0:
            raise AssertionError('mailq --json exited %d: %s'
                                 % (r.returncode, r.stderr))
        out = []
        for line in r.stdout.splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def mailq_text(self):
        r = run([BIN, 'mailq', '-c', self.conf], env=base_env())
        if r.returncode != 0:
            raise AssertionError('mailq exited %d: %s'
                                 % (r.returncode, r.stderr))
        return r.stdout

    def queue_ids(self):
        return {m['queue_id'] for m in self.mailq_json()}

    def find(self, queue_id):
        for m in self.mailq_json():
            if m.get('queue_id') == queue_id:
                return m
        return None

    def queue_show(self, queue_id):
        """Output of `queue show ID` as bytes (8-bit content kept)."""
        r = self.cli('queue', 'show', queue_id, text=False)
        if r.returncode != 0:
            raise AssertionError('queue show %s exited %d: %r'
                                 % (queue_id, r.returncode, r.stderr))
        return r.stdout

    def wait_for(self, predicate, timeout=5.0):
        return wait_for(predicate, timeout)

    def wait_log(self, regex, timeout=5.0):
        """The first match of regex in the log, waiting up to timeout."""
        rx = re.compile(regex, re.M)
        return wait_for(lambda: rx.search(self.log_text()), timeout)

    # -- clients ----------------------------------------------------------

    def smtp(self, source_address=None, timeout=10):
        import smtplib
        s = smtplib.SMTP('127.0.0.1', self.port, local_hostname='client.test',
                         timeout=timeout, source_address=source_address)
        return s

    def raw(self, source=None, timeout=5.0):
        return RawSMTP(self.port, source=source, timeout=timeout)


def make_message(subject='test', body='hello world\r\n', extra_headers=()):
    """A small RFC 5322 message as bytes with CRLF line ends."""
    lines = ['From: <sender@client.test>', 'To: <rcpt@dest.test>',
             'Subject: ' + subject]
    lines.extend(extra_headers)
    text = '\r\n'.join(lines) + '\r\n\r\n' + body
    if not text.endswith('\r\n'):
        text += '\r\n'
    return text.encode('utf-8') if isinstance(text, str) else text


def sized_message(size, subject='big'):
    """A message of exactly `size` bytes (CRLF lines of at most 78 chars)."""
    head = ('From: <sender@client.test>\r\nTo: <rcpt@dest.test>\r\n'
            'Subject: %s\r\n\r\n' % subject).encode()
    out = bytearray(head)
    line = b'x' * 76 + b'\r\n'
    while len(out) + len(line) <= size:
        out += line
    rest = size - len(out)
    if rest >= 3:
        out += b'y' * (rest - 2) + b'\r\n'
    elif rest > 0:
        # 1 or 2 bytes left: lengthen the last line instead.
        out[-2:-2] = b'z' * rest
    assert len(out) == size, (len(out), size)
    return bytes(out)


def smtp_send(relay, sender, rcpts, msg, mail_options=(), source_address=None,
              starttls=False):
    """Send one message with smtplib.  Returns (code, reply, queue_id); a
    refusal at MAIL/RCPT/DATA returns that reply and queue_id None."""
    import smtplib
    s = relay.smtp(source_address=source_address)
    try:
        s.ehlo()
        if starttls:
            s.starttls(context=unverified_context())
            s.ehlo()
        code, reply = s.mail(sender, list(mail_options))
        if code != 250:
            return code, reply, None
        for r in rcpts:
            code, reply = s.rcpt(r)
            if code not in (250, 251):
                return code, reply, None
        try:
            code, reply = s.data(msg)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error, None
        m = QUEUED_RE.search(reply)
        try:
            s.quit()
        except Exception:
            pass
        return code, reply, (m.group(1).decode() if m and code == 250
                             else None)
    finally:
        s.close()


def unverified_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Reply:
    """One SMTP reply: code (int), lines (str, without the code)."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines
        self.raw = raw

    @property
    def text(self):
        return '\n'.join(self.lines)

    @property
    def enhanced(self):
        m = re.match(r'([245]\.\d{1,3}\.\d{1,3})\b', self.lines[0]
                     if self.lines else '')
        return m.group(1) if m else None

    def __repr__(self):
        return 'Reply(%d, %r)' % (self.code, self.lines)


class RawSMTP:
    """A byte-level SMTP client for hostile tests.

    send() writes exactly the given bytes.  read_reply() returns the next
    complete (possibly multi-line) reply, or None when the server closed the
    connection or nothing complete arrived within the timeout.
    """

    def __init__(self, port, host='127.0.0.1', source=None, timeout=5.0):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b''
        self.closed = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes into buf; False on EOF or timeout."""
        if self.closed:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while b'\n' not in self.buf:
            if not self._fill(deadline):
                return None
        line, _, self.buf = self.buf.partition(b'\n')
        return line + b'\n'

    def read_reply(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        lines = []
        raw = b''
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                if raw:
                    # put back what we took: the reply is incomplete
                    self.buf = raw + self.buf
                return None
            raw += line
            s = line.decode('utf-8', 'replace').rstrip('\r\n')
            if len(s) < 3 or not s[:3].isdigit():
                raise AssertionError('malformed reply line %r' % line)
            lines.append(s[4:])
            if len(s) == 3 or s[3] == ' ':
                return Reply(int(s[:3]), lines, raw)
            if s[3] != '-':
                raise AssertionError('malformed reply line %r' % line)

    def expect(self, code, timeout=None):
        r = self.read_reply(timeout)
        if r is None:
            raise AssertionError('no reply (wanted %d); connection %s'
                                 % (code, 'closed' if self.closed
                                    else 'timed out'))
        if r.code != code:
            raise AssertionError('got %r, wanted %d' % (r, code))
        return r

    def cmd(self, line, timeout=None):
        """Send one command line (CRLF added) and return its reply."""
        self.send(line.encode() + b'\r\n' if isinstance(line, str)
                  else line + b'\r\n')
        return self.read_reply(timeout)

    def greet(self, helo='client.test'):
        self.expect(220)
        return self.ehlo(helo)

    def ehlo(self, helo='client.test'):
        return self.expect_cmd('EHLO ' + helo, 250)

    def expect_cmd(self, line, code):
        self.send(line.encode() + b'\r\n')
        return self.expect(code)

    def read_all(self, idle=1.0, total=5.0):
        """Read replies until the server closes or is silent for `idle`
        seconds; returns the list of replies."""
        out = []
        deadline = time.monotonic() + total
        while time.monotonic() < deadline:
            r = self.read_reply(min(idle, max(0.0, deadline -
                                             time.monotonic())))
            if r is None:
                break
            out.append(r)
        return out

    def pending(self, timeout=0.5):
        """Bytes that arrive within timeout (without waiting for a reply to
        be complete); used to assert that nothing was sent."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b''
        return data

    def eof(self, timeout=2.0):
        """True when the server has closed the connection (within timeout);
        any data read meanwhile is kept in buf."""
        deadline = time.monotonic() + timeout
        while not self.closed and self._fill(deadline):
            pass
        return self.closed

    def starttls(self, server_hostname=None):
        if self.buf:
            raise AssertionError('bytes left before TLS handshake: %r'
                                 % self.buf)
        self.sock.settimeout(self.timeout)
        self.sock = unverified_context().wrap_socket(
            self.sock, server_hostname=server_hostname)
        return self.sock

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_cert(directory, cn=HOSTNAME):
    """A self-signed server certificate and key made with certtool.
    Returns (cert_path, key_path); the key file has mode 0600."""
    key = os.path.join(directory, 'smtpd.key')
    cert = os.path.join(directory, 'smtpd.crt')
    tmpl = os.path.join(directory, 'smtpd.tmpl')
    with open(tmpl, 'w') as f:
        f.write('cn = "%s"\n' % cn)
        f.write('dns_name = "%s"\n' % cn)
        f.write('serial = 1\n')
        f.write('expiration_days = 30\n')
        f.write('tls_www_server\nsigning_key\nencryption_key\n')
    old = os.umask(0o077)
    try:
        r = run(['certtool', '--generate-privkey', '--key-type=ecdsa',
                 '--outfile', key])
        if r.returncode != 0:
            raise AssertionError('certtool privkey failed: ' + r.stderr)
    finally:
        os.umask(old)
    os.chmod(key, 0o600)
    r = run(['certtool', '--generate-self-signed', '--load-privkey', key,
             '--template', tmpl, '--outfile', cert])
    if r.returncode != 0:
        raise AssertionError('certtool self-signed failed: ' + r.stderr)
    return cert, key


class CertDir:
    """A temp dir with one server certificate, shared by a module's tests."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-cert-')
        self.cert, self.key = make_cert(self.dir)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class RelayTestCase(unittest.TestCase):
    """A TestCase with helpers; every relay it starts is stopped in cleanup."""

    def relay(self, **keys):
        return Relay(self, **keys)

    def assertQueued(self, code, reply, qid):
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, 'no "queued as ID" in %r' % reply)
        self.assertRegex(qid, ID_RE)
