"""A real Postfix (Debian's postfix) as a peer of the tests: an instance of
its own in a temporary directory (its own main.cf, master.cf, queue and
data directories, log file through postlogd, smtpd on a loopback port).

    pf = PostfixInstance(testcase)          # stopped and removed in cleanup
    pf.add_main_cf('relayhost = [127.0.0.1]:%d\n' % relay.port)
    pf.start()                              # or pf.postfix('reload')
    pf.wait_log(r'status=sent')

Postfix's master must run as root: require() skips (exit 77) as another
user, and fails under CI=true.  The instance never touches /etc/postfix
(only read: Debian's dynamicmaps.cf) or the system queue; close() stops it
(postfix stop, then SIGKILL of its master if it is still there) and removes
its directory.  Used by test_guide_postfix and test_postfix_upstream.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guides  # noqa: E402
import harness  # noqa: E402

POSTFIX = '/usr/sbin/postfix'


def require():
    """Postfix installed and root: else a skip, or a failure in CI."""
    guides.need(os.path.exists(POSTFIX),
                'Debian package postfix not installed (%s)' % POSTFIX)
    guides.need(os.geteuid() == 0, 'the Postfix master needs root')


# What the test itself needs of the instance; the README's lines come after.
INSTANCE_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = app.test
mydomain = app.test
myorigin = app.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
"""

# Only the services a relaying Postfix uses; smtpd on a loopback port;
# no chroot (the instance lives in a temporary directory); postlog so that
# maillog_file works without syslog; tlsmgr, without which Postfix's smtp
# client disables TLS ("no entropy for TLS key generation").
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60  1 pickup
cleanup   unix  n - n -   0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -   - trivial-rewrite
bounce    unix  - - n -   0 bounce
defer     unix  - - n -   0 bounce
trace     unix  - - n -   0 bounce
verify    unix  - - n -   1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -   - proxymap
smtp      unix  - - n -   - smtp
relay     unix  - - n -   - smtp
showq     unix  n - n -   - showq
error     unix  - - n -   - error
retry     unix  - - n -   - error
discard   unix  - - n -   - discard
anvil     unix  - - n -   1 anvil
scache    unix  - - n -   1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""


class PostfixInstance:
    """A Postfix of its own under a temporary directory; testcase's
    cleanup stops it."""

    def __init__(self, testcase):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-postfix-')
        # Postfix's daemons run as user postfix and must reach their files.
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, 'etc')
        os.mkdir(self.etc)
        os.mkdir(os.path.join(self.dir, 'spool'))
        os.mkdir(os.path.join(self.dir, 'data'))
        shutil.chown(os.path.join(self.dir, 'data'), 'postfix')
        self.main_cf = os.path.join(self.etc, 'main.cf')
        self.maillog = os.path.join(self.dir, 'maillog')
        self.port = harness.free_port()
        with open(self.main_cf, 'w') as f:
            f.write(INSTANCE_MAIN_CF.format(d=self.dir))
        with open(os.path.join(self.etc, 'master.cf'), 'w') as f:
            f.write(MASTER_CF.format(port=self.port))
        self.master_pid = None
        testcase.addCleanup(self.close)

    def add_main_cf(self, text):
        """Append lines to main.cf (before start, or followed by a
        reload)."""
        with open(self.main_cf, 'a') as f:
            f.write(text)

    def private_file(self, name, text, mode=0o600):
        """A file under the instance's etc directory (root's, mode 0600
        unless told: Postfix reads keys and password maps as root before
        dropping privileges); returns its path."""
        path = os.path.join(self.etc, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def postfix(self, *args):
        r = subprocess.run([POSTFIX, '-c', self.etc] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError('postfix %s: exit %d\n%s%s\nmaillog:\n%s'
                                 % (' '.join(args), r.returncode, r.stdout,
                                    r.stderr, self.log()))
        return r

    def start(self):
        self.postfix('start')
        pidfile = os.path.join(self.dir, 'spool', 'pid', 'master.pid')
        if not harness.wait_for(lambda: os.path.exists(pidfile), 10):
            raise AssertionError('no master.pid\n' + self.log())
        with open(pidfile) as f:
            self.master_pid = int(f.read().strip())
        if not harness.wait_for(lambda: harness.port_open(self.port), 10):
            raise AssertionError('Postfix smtpd not listening on %d\n%s'
                                 % (self.port, self.log()))

    def log(self):
        try:
            with open(self.maillog, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_log(self, regex, timeout=20.0):
        rx = re.compile(regex, re.M)
        m = harness.wait_for(lambda: rx.search(self.log()), timeout, 0.1)
        if not m:
            raise AssertionError('no %r in Postfix log:\n%s'
                                 % (regex, self.log()[-4000:]))
        return m

    def alive(self):
        if self.master_pid is None:
            return False
        try:
            os.kill(self.master_pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self):
        if self.master_pid is not None:
            subprocess.run([POSTFIX, '-c', self.etc, 'stop'],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
            if not harness.wait_for(lambda: not self.alive(), 10):
                os.kill(self.master_pid, signal.SIGKILL)
                harness.wait_for(lambda: not self.alive(), 5)
            self.master_pid = None
        if harness.KEEP_TMP:
            sys.stderr.write('kept %s\n' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
