"""Privileges (issue 11): started as root with `user = nobody`, the relay binds
its listeners (a port below 1024 too), opens the queue and the keys, then runs
as nobody for good, and still accepts, spills, delivers and reloads;
queue_dir becomes nobody's, mode 0700.  A queue_dir (or a file in it) owned by
a third user is refused with a message naming the path and the owners; a
root-owned queue_dir holding anything but the queue's files is refused and
left as it is (a typo must not hand root's files to nobody), one holding only
those is taken over (systemd gives StateDirectory= back to root at each start).
Read-only commands change no owner or mode.  A drop that fails stops the start.
Started as root without `user`, it runs and says so in one warning line.  The
CLI works as root and as nobody; run as root it leaves nothing in the queue
that nobody could not open.

These tests need root (CI runs as root: there, not being root is a failure).
The temporary directories are made 0755 so that nobody can reach the
configuration, the policy file and the DNS zone's trust anchor.
"""

import atexit
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, message, require_peers  # noqa: E402

# nobody must reach every file a test hands it: temporary directories go
# under /tmp whatever TMPDIR says, and the commands run as nobody use a copy
# of the binary there (the build tree may sit under a directory only root
# can enter).
tempfile.tempdir = '/tmp'

USER = 'nobody'
PW = pwd.getpwnam(USER)
GROUPS = sorted(os.getgrouplist(USER, PW.pw_gid))
OTHER_UID = 4242   # owns nothing on the system: a "third user"
SETPRIV = shutil.which('setpriv') or '/usr/bin/setpriv'


def require_root():
    if os.geteuid() == 0:
        return
    if os.environ.get('CI') == 'true':
        sys.stderr.write('test_privdrop must run as root under CI\n')
        sys.exit(1)
    sys.stderr.write('not root; skipping\n')
    sys.exit(77)


_BIN_COPY = []


def user_bin():
    """A copy of the relay's binary that nobody can run (made once)."""
    if not _BIN_COPY:
        d = tempfile.mkdtemp(prefix='tlsrelay-privbin-')
        os.chmod(d, 0o755)
        path = os.path.join(d, 'tlsrelay')
        shutil.copy2(harness.BIN, path)
        os.chmod(path, 0o755)
        _BIN_COPY.append(path)
        atexit.register(shutil.rmtree, d, True)
    return _BIN_COPY[0]


def as_user(args):
    """`tlsrelay ARGS...` run as nobody:nogroup with nobody's groups,
    the environment kept."""
    return [SETPRIV, '--reuid=%d' % PW.pw_uid, '--regid=%d' % PW.pw_gid,
            '--init-groups', '--', user_bin()] + [str(a) for a in args]


def ids_of(pid):
    """{'Uid': [...], 'Gid': [...], 'Groups': [...], 'CapEff': '...'} of
    every thread of pid (a list of such dicts)."""
    out = []
    for tid in os.listdir('/proc/%d/task' % pid):
        d = {}
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in ('Uid', 'Gid', 'Groups'):
                    d[k] = sorted(int(x) for x in v.split()) if k == 'Groups' \
                        else [int(x) for x in v.split()]
                elif k == 'CapEff':
                    d[k] = v.strip()
        out.append(d)
    return out


def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def serve_exit(relay, timeout=10, prefix=()):
    """Run `serve` on relay's config (under the argv prefix, if any)
    expecting it to refuse the start: (exit status, log text); a relay
    that starts is killed and fails."""
    with open(relay.log_path, 'ab') as log:
        p = subprocess.Popen([str(a) for a in prefix] +
                             [harness.BIN, 'serve', '-c', relay.conf],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             env=harness.base_env())
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError('the relay started; log:\n%s'
                                 % relay.log_text())
    return p.returncode, relay.log_text()


def open_relay(testcase, **keys):
    """A Relay (not started) whose directory nobody can reach."""
    r = harness.Relay(testcase, start=False, **keys)
    os.chmod(r.dir, 0o755)
    return r


# What the systemd unit leaves root: no CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
# or CAP_FOWNER, so root cannot enter nobody's 0700 queue_dir.
UNIT_CAPS = ['--bounding-set=-all,+net_bind_service,+setuid,+setgid,+chown']


def start_wrapped(relay, prefix):
    """Start relay's `serve` under the argv prefix (e.g. setpriv ...) and
    wait until it listens; relay.stop() stops it as usual."""
    relay._log = open(relay.log_path, 'ab')
    relay.proc = subprocess.Popen(
        [str(a) for a in prefix] + [harness.BIN, 'serve', '-c', relay.conf],
        stdin=subprocess.DEVNULL, stdout=relay._log, stderr=relay._log,
        env=harness.base_env())
    harness._LIVE.add(relay.proc)
    ok = harness.wait_for(lambda: relay.proc.poll() is not None or
                          harness.port_open(relay.port), harness.START_TIMEOUT)
    if not ok or relay.proc.poll() is not None:
        raise AssertionError('relay did not start (status %s); log:\n%s'
                             % (relay.proc.poll(), relay.log_text()))


class PrivDelivery(DeliveryBase):
    RECORDS = [
        ('priv.test.', 'MX', '10 mx1.priv.test.'),
        ('mx1.priv.test.', 'A', '127.0.0.90'),
    ]
    HOSTS = ['127.0.0.90']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # unbound.conf and the trust anchor are read by delivery as nobody.
        os.chmod(cls.zone.dir, 0o755)

    def start_relay(self, **keys):
        k = dict(self.zone.relay_keys())
        k.update({'remote_port': self.port, 'retry_min': '1s',
                  'retry_max': '2s', 'user': USER,
                  'smtpd_spill_threshold': 16384})
        k.update(keys)
        relay = open_relay(self, **k)
        relay.start()
        return relay

    def assert_runs_as_user(self, pid):
        for t in ids_of(pid):
            self.assertEqual(t['Uid'], [PW.pw_uid] * 4, t)
            self.assertEqual(t['Gid'], [PW.pw_gid] * 4, t)
            self.assertEqual(t['Groups'], GROUPS, t)
            self.assertEqual(int(t['CapEff'], 16), 0, t)

    def test_serves_as_user_and_delivers(self):
        mx = self.mx('127.0.0.90', 'mx1.priv.test', tls=False)
        relay = self.start_relay(default_tls_level='may')
        self.assert_runs_as_user(relay.proc.pid)
        self.assertIn('running as user %s (uid %d, gid %d)'
                      % (USER, PW.pw_uid, PW.pw_gid), relay.log_text())
        self.assertNotIn('running as root', relay.log_text())
        # queue_dir and every file in it: nobody's; the directory 0700.
        self.assertEqual(owner_mode(relay.queue_dir),
                         (PW.pw_uid, PW.pw_gid, 0o700))
        for name in os.listdir(relay.queue_dir):
            self.assertEqual(owner_mode(os.path.join(relay.queue_dir, name))[:2],
                             (PW.pw_uid, PW.pw_gid), name)

        # A small message and one past smtpd_spill_threshold (a spill file
        # made in queue_dir after the drop) both reach the MX.
        qid, mid = self.send(relay, 'alice@client.test', ['bob@priv.test'])
        self.messages_with(mx, mid)
        body = ('x' * 76 + '\r\n') * 1500   # about 117 KB
        data, mid2 = message('alice@client.test', ['carol@priv.test'],
                             body=body)
        code, reply, qid2 = harness.smtp_send(
            relay, 'alice@client.test', ['carol@priv.test'], data)
        self.assertEqual(code, 250, reply)
        got = self.messages_with(mx, mid2)[0][1]
        self.assertGreater(len(got), 100000)
        self.wait_queue_empty(relay)

        # The CLI, as root and as nobody, beside the running relay.
        r = relay.cli('mailq')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = harness.run(as_user(['mailq', '-c', relay.conf]),
                        env=harness.base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('Mail queue is empty', r.stdout)

        # SIGHUP: configuration and policy file read again, as nobody.
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('priv.test encrypt\n')
        relay.proc.send_signal(signal.SIGHUP)
        self.wait_log(relay, r'reloaded configuration from ')
        self.wait_log(relay, r'reloaded policy file .*: 1 entry')
        self.assertNotIn('error:', relay.log_text())
        self.assertTrue(relay.alive())
        self.assert_runs_as_user(relay.proc.pid)


    def test_queue_given_back_to_root_is_taken_over(self):
        # systemd, with StateDirectory= and no User=, chowns the whole
        # queue_dir back to root at every start (mode StateDirectoryMode):
        # root-owned, it holds only the queue's files, and the relay,
        # started with the unit's capabilities only, takes it back.
        mx = self.mx('127.0.0.90', 'mx1.priv.test', tls=False)
        k = dict(self.zone.relay_keys())
        k.update({'remote_port': self.port, 'retry_min': '1s',
                  'retry_max': '2s', 'user': USER,
                  'default_tls_level': 'may'})
        relay = open_relay(self, **k)
        start_wrapped(relay, [SETPRIV] + UNIT_CAPS + ['--'])
        self.assertEqual(relay.stop(), 0, relay.log_text())
        # A message queued by nobody while the relay is stopped.
        data, mid = message('alice@client.test', ['bob@priv.test'])
        r = harness.run(as_user(['sendmail', '-c', relay.conf, '-f',
                                 'alice@client.test', 'bob@priv.test']),
                        input=data.decode(), env=harness.base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        names = sorted(os.listdir(relay.queue_dir))
        self.assertEqual(names, ['data.mdb', 'lock.mdb', 'serve.lock'])
        for path in [relay.queue_dir] + [os.path.join(relay.queue_dir, n)
                                         for n in names]:
            os.chown(path, 0, 0)
        os.chmod(relay.queue_dir, 0o750)
        # A read-only command as root changes nothing.
        self.assertEqual(len(relay.mailq_json()), 1)
        self.assertEqual(owner_mode(relay.queue_dir), (0, 0, 0o750))

        start_wrapped(relay, [SETPRIV] + UNIT_CAPS + ['--'])
        self.assert_runs_as_user(relay.proc.pid)
        self.assertEqual(owner_mode(relay.queue_dir),
                         (PW.pw_uid, PW.pw_gid, 0o700))
        for n in names:
            self.assertEqual(owner_mode(os.path.join(relay.queue_dir, n))[:2],
                             (PW.pw_uid, PW.pw_gid), n)
        self.messages_with(mx, mid)
        qid, mid2 = self.send(relay, 'alice@client.test', ['carol@priv.test'])
        self.messages_with(mx, mid2)
        self.wait_queue_empty(relay)


class PrivStart(unittest.TestCase):
    """Starts without delivery: refusals, the warning, the low port, the CLI."""

    def test_low_port_bound_before_the_drop(self):
        port = None
        for p in range(600, 1000):
            s = socket.socket()
            try:
                s.bind(('127.0.0.1', p))
                port = p
                break
            except OSError:
                continue
            finally:
                s.close()
        self.assertIsNotNone(port, 'no free port in 600-999')
        relay = open_relay(self, listen='127.0.0.1:%d' % port, user=USER)
        relay.port = port
        relay.start()
        for t in ids_of(relay.proc.pid):
            self.assertEqual(t['Uid'], [PW.pw_uid] * 4, t)
        with socket.create_connection(('127.0.0.1', port), timeout=5) as c:
            self.assertTrue(c.recv(512).startswith(b'220 '))

    def test_root_with_the_units_capabilities_only(self):
        # Root without CAP_DAC_OVERRIDE: the queue is opened as nobody.
        relay = open_relay(self, user=USER)
        for round in (1, 2):   # a new queue_dir, then nobody's 0700 one
            start_wrapped(relay, [SETPRIV] + UNIT_CAPS + ['--'])
            for t in ids_of(relay.proc.pid):
                self.assertEqual(t['Uid'], [PW.pw_uid] * 4, t)
            code, reply, qid = harness.smtp_send(
                relay, 'a@client.test', ['b@dest.test'],
                harness.make_message('round %d' % round))
            self.assertEqual(code, 250, reply)
            self.assertEqual(len(relay.mailq_json()), round)
            self.assertEqual(relay.stop(), 0, relay.log_text())
            self.assertEqual(owner_mode(relay.queue_dir),
                             (PW.pw_uid, PW.pw_gid, 0o700))

    def test_root_owned_lock_file_in_the_users_directory(self):
        relay = open_relay(self, user=USER)
        relay.start()
        relay.stop()
        lock = os.path.join(relay.queue_dir, 'lock.mdb')
        os.chown(lock, 0, 0)
        # Root that cannot enter nobody's directory leaves the check to
        # nobody, who refuses a queue file it cannot open, by name.
        code, log = serve_exit(relay, prefix=[SETPRIV] + UNIT_CAPS + ['--'])
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r'error: queue_dir: %s is owned by root \(uid 0\), '
                         r'expected %s \(uid %d\); ' % (re.escape(lock), USER,
                                                        PW.pw_uid))
        # Root with every capability hands it to nobody and starts.
        relay.start()
        self.assertEqual(owner_mode(lock)[0], PW.pw_uid)

    def test_root_without_user_warns_once(self):
        relay = open_relay(self)
        relay.start()
        for t in ids_of(relay.proc.pid):
            self.assertEqual(t['Uid'], [0, 0, 0, 0], t)
        lines = [l for l in relay.log_text().splitlines()
                 if 'warning: running as root' in l]
        self.assertEqual(len(lines), 1, relay.log_text())
        self.assertIn('set user = NAME', lines[0])

    def test_queue_dir_of_another_user_is_refused(self):
        relay = open_relay(self, user=USER)
        os.mkdir(relay.queue_dir, 0o700)
        os.chown(relay.queue_dir, OTHER_UID, OTHER_UID)
        code, log = serve_exit(relay)
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r'error: queue_dir: %s is owned by uid %d, expected '
                         r'%s \(uid %d\) or root; .*not starting'
                         % (re.escape(relay.queue_dir), OTHER_UID, USER,
                            PW.pw_uid))
        # Nothing was taken over or created.
        self.assertEqual(owner_mode(relay.queue_dir)[0], OTHER_UID)
        self.assertEqual(os.listdir(relay.queue_dir), [])
        # The CLI run as root refuses the same way.
        r = relay.cli('mailq')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('is owned by uid %d' % OTHER_UID, r.stderr)

    def test_queue_file_of_another_user_is_refused(self):
        relay = open_relay(self, user=USER)
        relay.start()       # makes the queue (nobody's)
        relay.stop()
        data = os.path.join(relay.queue_dir, 'data.mdb')
        os.chown(data, OTHER_UID, OTHER_UID)
        code, log = serve_exit(relay)
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r'error: queue_dir: %s is owned by uid %d, expected '
                         r'%s \(uid %d\) or root' % (re.escape(data), OTHER_UID,
                                                     USER, PW.pw_uid))
        self.assertEqual(owner_mode(data)[0], OTHER_UID)

    def assert_refused_unchanged(self, relay, entry, before):
        """serve and root's mailq refuse queue_dir naming entry; nothing
        in it changes owner or mode."""
        want = (r"queue_dir: %s is owned by root and holds %s, which is not "
                r"a file of the queue \(only data.mdb, lock.mdb and serve.lock"
                % (re.escape(relay.queue_dir), re.escape(entry)))
        code, log = serve_exit(relay)
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r'error: ' + want + r'.*; not starting')
        self.assertNotIn('running as user', log)
        self.assertEqual(self.snapshot(relay.queue_dir), before)
        r = relay.cli('mailq')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, want)
        self.assertEqual(self.snapshot(relay.queue_dir), before)

    @staticmethod
    def snapshot(d):
        out = {'.': owner_mode(d)}
        for n in os.listdir(d):
            out[n] = owner_mode(os.path.join(d, n))
        return out

    def test_root_directory_of_other_files_is_refused(self):
        # queue_dir naming a directory of root's (a typo: /etc/tlsrelay)
        # is neither chowned nor chmodded, by serve or by root's mailq.
        relay = open_relay(self, user=USER)
        os.mkdir(relay.queue_dir, 0o755)
        secret = os.path.join(relay.queue_dir, 'client.key')
        with open(secret, 'w') as f:
            f.write('not for nobody\n')
        os.chmod(secret, 0o600)
        before = self.snapshot(relay.queue_dir)
        self.assertEqual(before['.'], (0, 0, 0o755))
        self.assert_refused_unchanged(relay, secret, before)

        # The queue's files beside it do not make it a queue.
        relay2 = open_relay(self)
        relay2.start()      # a queue of root's
        relay2.stop()
        with open(relay2.conf, 'a') as f:
            f.write('user = %s\n' % USER)
        extra = os.path.join(relay2.queue_dir, 'tls_policy')
        with open(extra, 'w') as f:
            f.write('example.com encrypt\n')
        before = self.snapshot(relay2.queue_dir)
        self.assert_refused_unchanged(relay2, extra, before)

        # Nor does a name of the queue that is not a plain file.
        relay3 = open_relay(self, user=USER)
        os.mkdir(relay3.queue_dir, 0o700)
        link = os.path.join(relay3.queue_dir, 'data.mdb')
        os.symlink(secret, link)
        before = self.snapshot(relay3.queue_dir)
        self.assert_refused_unchanged(relay3, link, before)
        self.assertEqual(owner_mode(secret), (0, 0, 0o600))

    def test_read_only_commands_leave_a_root_queue_alone(self):
        # A queue of root's (made before `user` was set) is read by root's
        # read-only commands as it is; only serve takes it over.
        relay = open_relay(self)
        r = relay.cli('sendmail', '-f', 'a@client.test', 'b@dest.test',
                      input='Subject: x\n\nhello\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(relay.conf, 'a') as f:
            f.write('user = %s\n' % USER)
        before = self.snapshot(relay.queue_dir)
        self.assertEqual(before['.'][0], 0)
        msgs = relay.mailq_json()
        self.assertEqual(len(msgs), 1)
        for args in (['mailq'], ['status'], ['status', '--json'],
                     ['queue', 'show', msgs[0]['queue_id']], ['report']):
            r = relay.cli(*args)
            self.assertEqual(r.returncode, 0, '%s: %s' % (args, r.stderr))
            self.assertEqual(self.snapshot(relay.queue_dir), before, args)
        relay.start()
        self.assertEqual(owner_mode(relay.queue_dir),
                         (PW.pw_uid, PW.pw_gid, 0o700))

    def test_a_failed_drop_stops_the_start(self):
        # Root that cannot switch (no CAP_SETUID, or no CAP_SETGID for the
        # groups) never serves as root: exit 1, and the log says why.
        for cap, why in (('setuid', r'setresuid\(%d\) for user %s: '
                          r'Operation not permitted' % (PW.pw_uid, USER)),
                         ('setgid', r'setgroups for user %s: '
                          r'Operation not permitted' % USER)):
            relay = open_relay(self, user=USER)
            code, log = serve_exit(
                relay, prefix=[SETPRIV, '--bounding-set=-' + cap, '--'])
            self.assertEqual(code, 1, log)
            self.assertRegex(log, r'error: ' + why + r'; not starting')
            self.assertNotIn('daemon started', log)
            self.assertNotIn('running as', log)

    def test_root_owned_queue_is_taken_over(self):
        # A queue made by root (before `user` was set) becomes nobody's.
        relay = open_relay(self)
        relay.start()
        relay.stop()
        self.assertEqual(owner_mode(relay.queue_dir)[0], 0)
        os.chmod(relay.queue_dir, 0o755)
        with open(relay.conf, 'a') as f:
            f.write('user = %s\n' % USER)
        relay.start()
        self.assertEqual(owner_mode(relay.queue_dir),
                         (PW.pw_uid, PW.pw_gid, 0o700))
        for name in ('data.mdb', 'lock.mdb'):
            self.assertEqual(owner_mode(os.path.join(relay.queue_dir, name))[0],
                             PW.pw_uid, name)

    def test_cli_as_root_leaves_the_queue_to_the_user(self):
        relay = open_relay(self, user=USER)
        # sendmail as root into a queue that does not exist yet.
        r = relay.cli('sendmail', '-f', 'a@client.test', 'b@dest.test',
                      input='Subject: x\n\nhello\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(owner_mode(relay.queue_dir),
                         (PW.pw_uid, PW.pw_gid, 0o700))
        for name in os.listdir(relay.queue_dir):
            self.assertEqual(owner_mode(os.path.join(relay.queue_dir, name))[0],
                             PW.pw_uid, name)
        # mailq as root remakes a missing lock file as nobody's.
        os.unlink(os.path.join(relay.queue_dir, 'lock.mdb'))
        r = relay.cli('mailq')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(owner_mode(os.path.join(relay.queue_dir,
                                                 'lock.mdb'))[0], PW.pw_uid)
        # The relay, as nobody, opens what the CLI left and has the message.
        relay.start()
        self.assertEqual(len(relay.mailq_json()), 1)
        r = harness.run(as_user(['mailq', '-c', relay.conf, '--json']),
                        env=harness.base_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('b@dest.test', r.stdout)

    def test_other_user_cannot_switch(self):
        # Not root and not `user`: refused, as only root can switch.
        relay = open_relay(self, user='daemon')
        os.mkdir(relay.queue_dir, 0o700)
        os.chown(relay.queue_dir, PW.pw_uid, PW.pw_gid)
        with open(relay.log_path, 'ab') as log:
            p = subprocess.run(as_user(['serve', '-c', relay.conf]),
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               env=harness.base_env(), timeout=10)
        self.assertEqual(p.returncode, 1, relay.log_text())
        self.assertRegex(relay.log_text(), r'error: user = daemon \(uid 1\) is set, but '
                         r'the relay runs as uid %d, not as root' % PW.pw_uid)

    def test_unknown_user_is_a_config_error(self):
        relay = open_relay(self, user='no-such-user-tlsrelay')
        code, log = serve_exit(relay)
        self.assertEqual(code, 1, log)
        n = len(relay.keys)  # the key's line: keys are written in order
        self.assertIn('%s:%d: user: no such user "no-such-user-tlsrelay"'
                      % (relay.conf, n), log)


if __name__ == '__main__':
    require_root()
    require_peers()
    unittest.main(verbosity=2)
