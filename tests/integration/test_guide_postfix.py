"""README "Postfix as upstream", end to end: a real Postfix (Debian's
postfix, an instance of its own in a temporary directory: its own main.cf,
master.cf, queue and data directories, log file, listening on loopback only)
gets the README's main.cf lines, is reloaded as the README says, and hands
its outbound mail to tlsrelay, which delivers it to an aiosmtpd MX found in
a Knot DNS zone, under a policy entry (encrypt).

Postfix's master must run as root: as another user this test skips, and
under CI=true it fails.  The instance never touches /etc/postfix (only
read: Debian's dynamicmaps.cf) or the system queue, and is stopped in
cleanup (postfix stop, then SIGKILL of its master if it is still there).
"""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guides  # noqa: E402
import harness  # noqa: E402
from test_delivery import (DeliveryBase, msg_id_of, new_msg_id,  # noqa: E402
                           require_peers)

POSTFIX = '/usr/sbin/postfix'
require_peers()
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
# maillog_file works without syslog.
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
"""


class PostfixInstance:
    """A Postfix of its own under a temporary directory."""

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


class PostfixUpstream(DeliveryBase):

    RECORDS = [('pfx.test.', 'MX', '10 mx1.pfx.test.'),
               ('mx1.pfx.test.', 'A', '127.0.0.62')]
    HOSTS = ['127.0.0.62']

    def test_postfix_relays_through_tlsrelay_as_the_readme_says(self):
        mx = self.mx('127.0.0.62', 'mx1.pfx.test')
        relay = self.relay()
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('pfx.test encrypt\n')
        relay.cli('policy', 'check')
        os.kill(relay.proc.pid, signal.SIGHUP)
        self.wait_log(relay, r'reloaded policy file .*: 1 entry')
        pf = PostfixInstance(self)
        pf.start()
        # The README's lines, with tlsrelay's port for the example's 2525.
        lines = guides.block('postfix-main.cf')
        self.assertIn('relayhost = [127.0.0.1]:2525\n', lines)
        with open(pf.main_cf, 'a') as f:
            f.write(lines.replace(':2525', ':%d' % relay.port))
        pf.postfix('reload')
        pf.wait_log(r'postfix/master\[\d+\]: reload')
        time.sleep(0.5)  # the reloaded daemons read main.cf afresh

        # An application talks to Postfix; an 8-bit body must arrive as sent.
        msg_id = new_msg_id('pfx')
        body = ('Grüße aus Köln.\r\n.leading dot\r\nline three\r\n'
                ).encode('utf-8')
        data = (b'From: <app@app.test>\r\nTo: <bob@pfx.test>\r\n'
                b'Subject: through postfix\r\nMessage-ID: ' + msg_id.encode()
                + b'\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n'
                b'MIME-Version: 1.0\r\n'
                b'Content-Type: text/plain; charset=utf-8\r\n'
                b'Content-Transfer-Encoding: 8bit\r\n\r\n' + body)
        with smtplib.SMTP('127.0.0.1', pf.port, timeout=10) as s:
            s.ehlo('client.test')
            self.assertTrue(s.has_extn('8bitmime'))
            refused = s.sendmail('app@app.test', ['bob@pfx.test'], data,
                                 mail_options=['BODY=8BITMIME'])
            self.assertEqual(refused, {})

        # Postfix handed it to the relay, which queued it under its own ID.
        m = pf.wait_log(r'postfix/smtp\[\d+\]: \w+: to=<bob@pfx\.test>, '
                        r'relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent '
                        r'\(250 2\.0\.0 Ok: queued as ([0-9A-F]{10})\)$'
                        % relay.port)
        qid = m.group(1)
        self.wait_log(relay, r'^.*%s: from=<app@app\.test>, size=\d+, '
                      r'nrcpt=1' % qid)
        # ... and delivered it under the policy entry: encrypt, to a
        # self-signed MX certificate.
        self.sent_line(relay, qid, 'bob@pfx.test', 'mx1.pfx.test',
                       '127.0.0.62', tls='untrusted')
        env, content = self.messages_with(mx, msg_id)[0]
        self.assertEqual(env['mail_from'], 'app@app.test')
        self.assertEqual(env['rcpt_tos'], ['bob@pfx.test'])
        head, _, got_body = content.partition(b'\r\n\r\n')
        self.assertEqual(got_body, body)
        self.assertEqual(msg_id_of(content), msg_id)
        # tlsrelay's Received: first (by its myhostname), then Postfix's.
        received = re.findall(rb'^Received: (?:[^\r\n]|\r\n[ \t])*', head,
                              re.M)
        self.assertGreaterEqual(len(received), 2, head)
        self.assertIn(b'by relay.test', received[0])
        self.assertIn(b'by app.test (Postfix)', received[1])
        self.wait_queue_empty(relay)

    def test_instance_stays_on_loopback_and_its_own_files(self):
        pf = PostfixInstance(self)
        pf.start()
        out = subprocess.run(['ss', '-Hltnp'], capture_output=True,
                             text=True).stdout
        mine = [line for line in out.splitlines()
                if 'pid=%d,' % pf.master_pid in line]
        self.assertTrue(mine, out)
        for line in mine:
            self.assertRegex(line.split()[3], r'^127\.0\.0\.1:%d$' % pf.port)
        pf.wait_log(r'postfix/master\[%d\]: daemon started -- version [0-9.]+, '
                    r'configuration %s$' % (pf.master_pid, re.escape(pf.etc)))
        self.assertFalse(os.path.exists('/etc/postfix/main.cf')
                         and os.path.getmtime('/etc/postfix/main.cf')
                         > time.time() - 60)


if __name__ == '__main__':
    unittest.main()
