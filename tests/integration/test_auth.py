"""SMTP AUTH (RFC 4954) on the listener, with real clients and a real MX.

The relay offers STARTTLS and, with smtpd_sasl_password_file, AUTH PLAIN
and LOGIN after it (only then).  mynetworks is 127.0.0.1/32 and every
client connects from 127.0.0.9 (or 127.0.0.10), outside it: without AUTH
its recipients get 554 5.7.1 and nothing is queued; authenticated, it
relays, and the message reaches an aiosmtpd MX (tests/peers/mx.py) found
in a signed Knot zone.  Clients: swaks (--tls --auth PLAIN/LOGIN), Python
smtplib (starttls + login), and a byte-level client for the dialogue's
corners.  The password file's hashes are made here with libxcrypt
(crypt_gensalt/crypt through ctypes): yescrypt and SHA-512.

Checks in flight count against an address: twelve sessions guessing at
once from one address get at most ten checks, the rest 421 at once.  One
address flooding the hash checks does not hold up another address's AUTH
(one lane per address, served round robin).  (IPv6 clients count by /64;
loopback gives a test only ::1, so that keying is tested in the unit test
of the failure table, tests/unit/test_auth.c, with sockaddrs.)

Also: a wrong password gets 535 5.7.8; AUTH before STARTTLS 530 5.7.0;
ten wrong passwords from one address slow that address's replies down
and end with 421, while another address gets fast replies meanwhile; the
password and its base64 never appear in the relay's log; a file with an
unsupported hash refuses the start with FILE:LINE; a SIGHUP with a broken
file keeps the old one; the metrics count failures and AUTH sessions, and
so does `tlsrelay status` (with sessions from mynetworks and refused ones).
"""

import base64
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, message, msg_id_of, require_peers  # noqa: E402

CLIENT = '127.0.0.9'   # outside mynetworks
OTHER = '127.0.0.10'   # outside too, another address
USERS = {'alice': ('Wonder-land-7', b'$y$'), 'bob': ('b0b+Secret!', b'$6$')}
SWAKS = shutil.which('swaks') or '/usr/bin/swaks'


def crypt_hash(password, prefix, count=0):
    """crypt(3) of password with a fresh salt of the scheme prefix (count:
    the cost, 0 for the default)."""
    lib = ctypes.CDLL('libcrypt.so.1')
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(prefix, count, None, 0)
    h = lib.crypt(password.encode(), setting)
    assert h and h.startswith(prefix), (prefix, h)
    return h.decode()


def b64(data):
    return base64.b64encode(data).decode()


def plain(user, password):
    return b64(b'\0' + user.encode() + b'\0' + password.encode())


def write_passwd(path, users, extra=''):
    with open(path, 'w') as f:
        f.write('# SMTP AUTH users\n')
        for u, (pw, prefix, *count) in users.items():
            f.write('%s:%s\n' % (u, crypt_hash(pw, prefix, *count)))
        f.write(extra)
    os.chmod(path, 0o600)


class Auth(DeliveryBase):
    RECORDS = [
        ('auth.test.', 'MX', '10 mx1.auth.test.'),
        ('mx1.auth.test.', 'A', '127.0.0.71'),
    ]
    HOSTS = ['127.0.0.71']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pwdir = tempfile.mkdtemp(prefix='tlsrelay-auth-')
        cls.addClassCleanup(shutil.rmtree, cls.pwdir, True)
        cls.passwd = os.path.join(cls.pwdir, 'sasl_passwd')
        write_passwd(cls.passwd, USERS)

    def auth_relay(self, passwd=None, **keys):
        k = {'mynetworks': '127.0.0.1/32',
             'smtpd_tls_cert_file': self.cert.cert,
             'smtpd_tls_key_file': self.cert.key,
             'smtpd_sasl_password_file': passwd or self.passwd}
        k.update(keys)
        return self.relay(**k)

    def tls_client(self, relay, source=CLIENT, timeout=20.0):
        """A RawSMTP session from source, under TLS, after EHLO; returns
        (client, the EHLO reply after STARTTLS)."""
        c = harness.RawSMTP(relay.port, source=source, timeout=timeout)
        self.addCleanup(c.close)
        c.greet()
        c.expect_cmd('STARTTLS', 220)
        c.starttls()
        return c, c.ehlo()

    def assert_secrets_not_logged(self, relay):
        log = relay.log_text()
        for u, (pw, _) in USERS.items():
            for s in (pw, b64(pw.encode()), plain(u, pw),
                      plain(u, pw).rstrip('=')):
                self.assertNotIn(s, log, 'a secret is in the log')
        for s in ('wrong-', b64(b'wrong-')[:6], 'd3JvbmctcGFzc'):
            self.assertNotIn(s, log, 'a wrong password is in the log')

    # -- relaying ------------------------------------------------------------

    def test_auth_relays_swaks_and_smtplib(self):
        import smtplib
        mx = self.mx('127.0.0.71', 'mx1.auth.test')
        mport = harness.free_port()
        r = self.auth_relay(metrics_listen='127.0.0.1:%d' % mport)
        ids = []
        for mech, user in (('PLAIN', 'alice'), ('LOGIN', 'bob')):
            data, msg_id = message('sender@client.test', ['rcpt@auth.test'])
            ids.append(msg_id)
            p = subprocess.run(
                [SWAKS, '--server', '127.0.0.1:%d' % r.port,
                 '--local-interface', CLIENT, '--tls', '--auth', mech,
                 '--auth-user', user, '--auth-password', USERS[user][0],
                 '--from', 'sender@client.test', '--to', 'rcpt@auth.test',
                 '--data', '-', '--timeout', '20'],
                input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=60)
            out = p.stdout.decode('utf-8', 'replace')
            self.assertEqual(p.returncode, 0, out)
            self.assertIn('235 2.7.0', out)
            self.assertRegex(out, r'250 2\.0\.0 Ok: queued as')
            self.wait_log(r, r'sasl_method=%s, sasl_username=%s' % (mech, user))
        # smtplib: starttls, login (it picks PLAIN), and AUTH=<> at MAIL.
        data, msg_id = message('sender@client.test', ['rcpt@auth.test'])
        ids.append(msg_id)
        s = smtplib.SMTP('127.0.0.1', r.port, local_hostname='client.test',
                         timeout=20, source_address=(CLIENT, 0))
        try:
            s.ehlo()
            self.assertFalse(s.has_extn('auth'), 'AUTH offered before TLS')
            s.starttls(context=harness.unverified_context())
            s.ehlo()
            self.assertEqual(s.esmtp_features.get('auth', '').split(),
                             ['PLAIN', 'LOGIN'])
            code, _ = s.login('alice', USERS['alice'][0])
            self.assertEqual(code, 235)
            code, reply = s.mail('sender@client.test', ['AUTH=<>'])
            self.assertEqual(code, 250, reply)
            self.assertEqual(s.rcpt('rcpt@auth.test')[0], 250)
            code, reply = s.data(data)
            self.assertEqual(code, 250, reply)
            s.quit()
        finally:
            s.close()
        self.wait_log(r, r'from=<sender@client\.test>, size=\d+, nrcpt=1, '
                      r'sasl_username=alice')
        for msg_id in ids:
            env, content = self.messages_with(mx, msg_id)[0]
            self.assertIn(b'(Authenticated sender: ', content)
            self.assertRegex(content, rb'with ESMTPSA id [0-9A-F]+')
            self.assertFalse([o for o in env.get('mail_options', [])
                              if o.upper().startswith('AUTH')],
                             'AUTH= passed on: %r' % env)
        got = {msg_id_of(c): c for _, c in mx.messages()}
        self.assertIn(b'(Authenticated sender: bob)', got[ids[1]])
        self.assertIn(b'(Authenticated sender: alice)', got[ids[2]])
        # The metrics: three sessions allowed by AUTH, no failures yet.
        text = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % mport,
                                      timeout=10).read().decode()
        self.assertIn('tlsrelay_smtpd_sessions_allowed_total{by="auth"} 3\n',
                      text)
        self.assertIn('tlsrelay_smtpd_auth_failures_total 0\n', text)
        self.assert_secrets_not_logged(r)

    def test_without_auth_refused(self):
        r = self.auth_relay()
        c, ehlo = self.tls_client(r)
        self.assertIn('AUTH PLAIN LOGIN', ehlo.lines)
        c.expect_cmd('MAIL FROM:<s@client.test>', 250)
        rep = c.expect_cmd('RCPT TO:<rcpt@auth.test>', 554)
        self.assertEqual(rep.lines[0],
                         '5.7.1 <rcpt@auth.test>: Relay access denied')
        c.expect_cmd('QUIT', 221)
        self.assertEqual(r.mailq_json(), [])

    def test_wrong_password(self):
        import smtplib
        r = self.auth_relay()
        s = smtplib.SMTP('127.0.0.1', r.port, local_hostname='client.test',
                         timeout=20, source_address=(CLIENT, 0))
        try:
            s.starttls(context=harness.unverified_context())
            s.ehlo()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.login('alice', 'wrong-password')
            self.assertEqual(e.exception.smtp_code, 535)
            self.assertTrue(e.exception.smtp_error.startswith(b'5.7.8'),
                            e.exception.smtp_error)
            # Unknown user: the same answer.
            code, reply = s.docmd('AUTH', 'PLAIN ' + plain('nobody', 'wrong-x'))
            self.assertEqual((code, reply[:5]), (535, b'5.7.8'))
            self.assertEqual(s.mail('s@client.test')[0], 250)
            self.assertEqual(s.rcpt('rcpt@auth.test')[0], 554)
        finally:
            s.close()
        self.assertEqual(r.mailq_json(), [])
        self.wait_log(r, r'warning: unknown\[127\.0\.0\.9\]: SASL LOGIN '
                      r'authentication failed')
        self.assert_secrets_not_logged(r)

    def test_before_starttls(self):
        r = self.auth_relay()
        with harness.RawSMTP(r.port, source=CLIENT) as c:
            ehlo = c.greet()
            self.assertNotIn('AUTH PLAIN LOGIN', ehlo.lines)
            self.assertIn('STARTTLS', ehlo.lines)
            rep = c.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]),
                               530)
            self.assertEqual(rep.lines[0],
                             '5.7.0 Must issue a STARTTLS command first')
            c.expect_cmd('AUTH LOGIN', 530)
            # AUTH= where AUTH is not offered: refused as any unknown option.
            c.expect_cmd('MAIL FROM:<s@client.test> AUTH=<>', 555)
        # swaks refuses to send a password where AUTH is not offered.
        p = subprocess.run(
            [SWAKS, '--server', '127.0.0.1:%d' % r.port, '--local-interface',
             CLIENT, '--auth', 'PLAIN', '--auth-user', 'alice',
             '--auth-password', USERS['alice'][0], '--from', 's@client.test',
             '--to', 'rcpt@auth.test', '--timeout', '20'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(r.mailq_json(), [])

    def test_no_password_file_no_auth(self):
        r = self.relay(mynetworks='127.0.0.1/32',
                       smtpd_tls_cert_file=self.cert.cert,
                       smtpd_tls_key_file=self.cert.key)
        c, ehlo = self.tls_client(r)
        self.assertNotIn('AUTH PLAIN LOGIN', ehlo.lines)
        c.expect_cmd('AUTH PLAIN ' + plain('alice', 'x'), 502)

    def test_dialogue(self):
        r = self.auth_relay()
        c, _ = self.tls_client(r)
        c.expect_cmd('AUTH CRAM-MD5', 504)
        c.expect_cmd('AUTH', 501)
        # Cancel, in both mechanisms.
        self.assertEqual(c.cmd('AUTH PLAIN').raw, b'334 \r\n')
        rep = c.expect_cmd('*', 501)
        self.assertEqual(rep.lines[0], '5.7.0 Authentication aborted')
        self.assertEqual(c.cmd('AUTH LOGIN').lines, ['VXNlcm5hbWU6'])
        c.expect_cmd('*', 501)
        # Bad base64 and a PLAIN message for someone else.
        c.expect_cmd('AUTH PLAIN Zh==', 501)
        c.expect_cmd('AUTH PLAIN ' + b64(b'bob\0alice\0' +
                                         USERS['alice'][0].encode()), 501)
        # LOGIN with the name as initial response, then the password.
        self.assertEqual(c.cmd('AUTH LOGIN ' + b64(b'bob')).lines,
                         ['UGFzc3dvcmQ6'])
        c.expect_cmd(b64(USERS['bob'][0].encode()), 235)
        c.expect_cmd('AUTH PLAIN ' + plain('bob', USERS['bob'][0]), 503)
        c.expect_cmd('MAIL FROM:<s@client.test> AUTH=s+40client.test', 250)
        c.expect_cmd('AUTH LOGIN', 503)
        c.expect_cmd('RCPT TO:<rcpt@auth.test>', 250)
        c.expect_cmd('RSET', 250)
        # An AUTH line may be longer than other commands (RFC 4954: 12288).
        c2, _ = self.tls_client(r)
        long_pw = 'x' * 3000
        c2.expect_cmd('AUTH PLAIN ' + plain('alice', long_pw), 535)
        c2.expect_cmd('AUTH PLAIN ' + 'A' * 12300, 500)
        c2.expect_cmd('NOOP', 250)
        self.assertNotIn(long_pw, r.log_text())

    # -- `tlsrelay status` --------------------------------------------------

    def inbound(self, relay):
        """The inbound block of `status` and of `status --json`, as
        (network, certificate, auth, refused, auth failures) each."""
        r = relay.cli('status')
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        m = re.search(r'^inbound last hour\n'
                      r'  sessions allowed   network (\d+), certificate (\d+), '
                      r'auth (\d+)\n'
                      r'  sessions refused   (\d+) \(Relay access denied\)\n'
                      r'  failed AUTH        (\d+) attempts?\n', r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        text = tuple(int(x) for x in m.groups())
        r = relay.cli('status', '--json')
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        j = json.loads(r.stdout)['inbound_last_hour']
        return text, (j['allowed']['network'], j['allowed']['certificate'],
                      j['allowed']['auth'], j['refused'], j['auth_failed'])

    def test_status_counts_inbound(self):
        """`status` counts sessions by how the client was allowed to relay,
        sessions refused relaying and failed AUTH attempts.  While mail
        flows the counts ride on the next message's commit (so they are
        there once its 250 came); what nothing carried is written at
        SIGTERM."""
        import smtplib
        self.mx('127.0.0.71', 'mx1.auth.test')
        r = self.auth_relay()
        self.assertEqual(self.inbound(r), ((0, 0, 0, 0, 0),) * 2)
        # Two wrong passwords, then relaying refused (counted once).
        o, _ = self.tls_client(r, source=OTHER)
        o.expect_cmd('AUTH PLAIN ' + plain('alice', 'wrong-1'), 535)
        o.expect_cmd('AUTH PLAIN ' + plain('bob', 'wrong-2'), 535)
        o.expect_cmd('MAIL FROM:<s@client.test>', 250)
        o.expect_cmd('RCPT TO:<rcpt@auth.test>', 554)
        o.expect_cmd('RCPT TO:<rcpt2@auth.test>', 554)
        o.expect_cmd('QUIT', 221)
        # One message from an authenticated client, over TLS.
        data, _ = message('sender@client.test', ['rcpt@auth.test'])
        s = smtplib.SMTP('127.0.0.1', r.port, local_hostname='client.test',
                         timeout=20, source_address=(CLIENT, 0))
        try:
            s.starttls(context=harness.unverified_context())
            s.ehlo()
            self.assertEqual(s.login('alice', USERS['alice'][0])[0], 235)
            self.assertEqual(s.sendmail('sender@client.test', ['rcpt@auth.test'],
                                        data), {})
            s.quit()
        finally:
            s.close()
        # One from mynetworks; its 250 means its commit, which carried the
        # counts, is on disk.
        code, reply, qid = harness.smtp_send(
            r, 's@client.test', ['rcpt@auth.test'], harness.make_message())
        self.assertEqual(code, 250, reply)
        self.assertEqual(self.inbound(r), ((1, 0, 1, 1, 2),) * 2)
        # Refused once more, then nothing flows: written at the stop.
        code, reply, _ = harness.smtp_send(
            r, 's@client.test', ['rcpt@auth.test'], harness.make_message(),
            source_address=(OTHER, 0))
        self.assertEqual(code, 554, reply)
        r.stop()
        got = self.inbound(r)
        self.assertEqual(got, ((1, 0, 1, 2, 2),) * 2)
        self.assertIn('relay:      not running\n', r.cli('status').stdout)

    # -- slowing down one address --------------------------------------------

    def timed_auth(self, c, password, expect=535, timeout=30.0):
        t = time.monotonic()
        rep = c.cmd('AUTH PLAIN ' + plain('alice', password), timeout=timeout)
        took = time.monotonic() - t
        self.assertIsNotNone(rep, 'no reply within %.0f s' % timeout)
        self.assertEqual(rep.code, expect, rep)
        return took

    def test_failures_slow_that_address_only(self):
        mport = harness.free_port()
        r = self.auth_relay(metrics_listen='127.0.0.1:%d' % mport)
        c, _ = self.tls_client(r)
        times = [self.timed_auth(c, 'wrong-%d' % i) for i in range(1, 5)]
        self.assertLess(max(times), 0.8, times)
        for i in range(5, 9):
            times.append(self.timed_auth(c, 'wrong-%d' % i))
        # From the fifth failure on, each reply comes later than the last.
        self.assertGreaterEqual(times[4], 0.9, times)
        for a, b in zip(times[4:], times[5:]):
            self.assertGreater(b, a + 0.5, times)
        # While the ninth waits, another address is answered at once, and
        # 127.0.0.1 (mynetworks) still relays.
        c.send('AUTH PLAIN %s\r\n' % plain('alice', 'wrong-9'))
        t9 = time.monotonic()
        o, _ = self.tls_client(r, source=OTHER)
        self.assertLess(self.timed_auth(o, 'wrong-other'), 0.8)
        self.assertLess(time.monotonic() - t9, 2.0)
        code, reply, qid = harness.smtp_send(
            r, 's@client.test', ['rcpt@auth.test'], harness.make_message())
        self.assertEqual(code, 250, reply)
        rep9 = c.read_reply(30)
        self.assertIsNotNone(rep9)
        self.assertEqual(rep9.code, 535)
        self.assertGreater(time.monotonic() - t9, times[-1] + 0.5, times)
        # The tenth: 421 and the session ends.
        rep = c.cmd('AUTH PLAIN ' + plain('alice', 'wrong-10'), timeout=30)
        self.assertEqual(rep.code, 421, rep)
        self.assertTrue(c.eof(5))
        # A new session from that address is cut off at AUTH, even with the
        # right password (no hash check is spent on it).
        c3, _ = self.tls_client(r)
        t = time.monotonic()
        c3.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]), 421)
        self.assertLess(time.monotonic() - t, 0.8)
        # The other address is not affected: it authenticates at once.
        o.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]), 235)
        # A session counts as allowed at its first accepted recipient.
        o.expect_cmd('MAIL FROM:<s@client.test>', 250)
        o.expect_cmd('RCPT TO:<rcpt@auth.test>', 250)
        text = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % mport,
                                      timeout=10).read().decode()
        self.assertIn('tlsrelay_smtpd_auth_failures_total 11\n', text)
        self.assertIn('tlsrelay_smtpd_sessions_allowed_total{by="auth"} 1\n',
                      text)
        self.assertRegex(text, r'tlsrelay_smtpd_sessions_allowed_total'
                         r'\{by="network"\} [1-9]')
        self.assert_secrets_not_logged(r)

    def fire(self, clients, user, password):
        """AUTH PLAIN on every client at once (the lines only), then each
        client's reply and when it came, in client order."""
        line = ('AUTH PLAIN %s\r\n' % plain(user, password)).encode()
        t0 = time.monotonic()
        for c in clients:
            c.send(line)
        got = [None] * len(clients)

        def read(i):
            rep = clients[i].read_reply(40)
            got[i] = (rep.code if rep else None, time.monotonic() - t0)
        threads = [threading.Thread(target=read, args=(i,))
                   for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return got

    def test_pending_checks_count(self):
        """Twelve sessions from one address guess at once: the checks in
        flight count with the failures, so at most ten hashes are computed
        (ten log lines) and the other sessions get 421 at once, without a
        check.  (Before, all twelve were checked.)"""
        r = self.auth_relay()
        clients = [self.tls_client(r)[0] for _ in range(12)]
        got = self.fire(clients, 'alice', 'wrong-pending')
        codes = sorted(code for code, _ in got)
        self.assertTrue(set(codes) <= {421, 535}, got)
        self.assertEqual(codes.count(421), 3, got)  # two at once, the tenth
        quick = [t for code, t in got if code == 421 and t < 1.0]
        self.assertGreaterEqual(len(quick), 2, got)
        log = r.log_text()
        self.assertEqual(len(re.findall(r'authentication failed', log)), 10,
                         log)
        self.assertEqual(len(re.findall(
            r'AUTH refused: too many failed authentication attempts', log)), 2,
            log)
        # A thirteenth session is refused at AUTH at once too.
        c, _ = self.tls_client(r)
        t = time.monotonic()
        c.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]), 421)
        self.assertLess(time.monotonic() - t, 1.0)
        self.assert_secrets_not_logged(r)

    def test_fair_queue(self):
        """One address floods the hash checks (forty sessions guessing at
        once the password of a user whose hash takes about 0.2 s): another
        address's right password is still answered within 2 s, because each
        address waits in its own lane and the lanes take turns.  (Before,
        one queue for everyone: about forty checks, 4 s, came first.)"""
        d = tempfile.mkdtemp(prefix='tlsrelay-authfair-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'passwd')
        users = dict(USERS, slow=('slow-pw-1', b'$6$', 800000))
        write_passwd(path, users)
        r = self.auth_relay(passwd=path)
        flood = [self.tls_client(r, source=CLIENT, timeout=60)[0]
                 for _ in range(40)]
        o, _ = self.tls_client(r, source=OTHER)
        line = ('AUTH PLAIN %s\r\n' % plain('slow', 'wrong-flood')).encode()
        for c in flood:
            c.send(line)
        time.sleep(0.1)
        t = time.monotonic()
        rep = o.cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]),
                    timeout=30)
        took = time.monotonic() - t
        self.assertIsNotNone(rep)
        self.assertEqual(rep.code, 235, rep)
        self.assertLess(took, 2.0, 'AUTH behind the flood took %.1f s' % took)
        for c in flood:
            c.close()
        self.assertTrue(r.alive())

    def test_disconnect_during_check(self):
        """Clients that leave while their hash is checked or their reply
        delayed do not hurt the relay (the job outlives the session)."""
        r = self.auth_relay()
        for _ in range(3):
            c, _ = self.tls_client(r)
            c.send('AUTH PLAIN %s\r\n' % plain('alice', 'wrong-x'))
            c.close()
        clients = []
        for _ in range(8):
            c, _ = self.tls_client(r, source=OTHER)
            c.send('AUTH PLAIN %s\r\n' % plain('bob', USERS['bob'][0]))
            clients.append(c)
        for c in clients[:4]:
            c.close()
        for c in clients[4:]:
            self.assertEqual(c.read_reply(30).code, 235)
        self.assertTrue(r.alive())

    # -- the file --------------------------------------------------------------

    def test_unsupported_hash_refuses_start(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-authbad-')
        self.addCleanup(shutil.rmtree, d, True)
        for extra, line, why in (
                ('md5:%s\n' % crypt_hash('x', b'$1$'), 4, 'unsupported'),
                ('sha256:%s\n' % crypt_hash('x', b'$5$'), 4, 'unsupported'),
                ('locked:!\n', 4, 'locked'),
                ('alice:%s\n' % crypt_hash('x', b'$6$'), 4, 'duplicate')):
            path = os.path.join(d, 'passwd')
            write_passwd(path, USERS, extra)
            r = self.auth_relay(passwd=path, start=False)
            r.start(wait=False)
            try:
                r.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail('relay started with a bad password file')
            r._expect_dead = True
            self.assertEqual(r.proc.returncode, 1)
            self.assertIn('%s:%d: ' % (path, line), r.log_text())
            self.assertRegex(r.log_text(), r'%s:%d: [^\n]*%s'
                             % (re.escape(path), line, why))

    def test_sighup_broken_file_keeps_old(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-authhup-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'passwd')
        write_passwd(path, {'alice': USERS['alice']})
        r = self.auth_relay(passwd=path)
        carol = ('carol-pw-1', b'$6$')
        write_passwd(path, {'carol': carol},
                     'dave:$2b$05$/pSzHGZxwY4.jwiXo2ruI.iu5XsSeLmdzhRqXIdZBGhwLyac\n')
        r.proc.send_signal(signal.SIGHUP)
        self.wait_log(r, r'%s:3: [^\n]*unsupported' % re.escape(path))
        self.wait_log(r, r'invalid password file; keeping the previous one')
        c, _ = self.tls_client(r)
        c.expect_cmd('AUTH PLAIN ' + plain('carol', carol[0]), 535)
        c.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]), 235)
        # Fixed: the new file replaces the old whole.
        write_passwd(path, {'carol': carol})
        r.proc.send_signal(signal.SIGHUP)
        self.wait_log(r, r'sasl_password_file %s: 1 user\b[^\n]*\n(.|\n)*'
                      r'sasl_password_file %s: 1 user\b' % (re.escape(path),
                                                            re.escape(path)))
        c2, _ = self.tls_client(r, source=OTHER)
        c2.expect_cmd('AUTH PLAIN ' + plain('alice', USERS['alice'][0]), 535)
        c2.expect_cmd('AUTH PLAIN ' + plain('carol', carol[0]), 235)


if __name__ == '__main__':
    require_peers()
    if os.environ.get('CI') != 'true' and not os.path.exists(SWAKS):
        sys.stderr.write('swaks not installed; skipping\n')
        sys.exit(77)
    unittest.main(verbosity=2)
