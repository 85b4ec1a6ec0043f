"""Client certificates on the listener (issue 12, INTERFACE.md "Who may relay").

The relay listens on 127.0.0.1 with mynetworks = 127.0.0.1/32 only; every
client here connects from 127.0.0.9, outside mynetworks, so only its
certificate can let it relay.  Clients are real: Python smtplib (OpenSSL)
and swaks (--tls --tls-cert/--tls-key --local-interface 127.0.0.9), and
gnutls-cli to see whether a certificate was asked for at all.

- a certificate listed in relay_clientcerts (by certificate or public-key
  digest, as `tlsrelay certs fingerprint` prints them) relays; so does a
  serverAuth-only one (a listed digest needs no key usage); an expired
  one is refused even when listed;
- a certificate chaining to relay_client_ca_file relays with clientAuth or
  no extended key usage; serverAuth-only, expired, or from another CA is
  refused with 554 5.7.1 and nothing is queued; so is an unlisted one;
- smtpd_tls_ask_ccert = no: no certificate is asked for, and the same
  client is refused;
- a live edit of relay_clientcerts (saved by rename) takes effect without a
  restart; a broken edit is logged as FILE:LINE and the old list stays;
  a broken file at start refuses the start;
- the Received header at the MX and the from= log line name the certificate
  (CN and SHA-256 digest); the metrics count the session as by="certificate".
"""

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402
import test_delivery  # noqa: E402
from harness import run  # noqa: E402

OUTSIDE = '127.0.0.9'
RELOAD_TIMEOUT = 5.0


def require_tools():
    harness.require_binary()
    for tool in ('swaks', certs.CERTTOOL, 'gnutls-cli'):
        if not shutil.which(tool):
            if os.environ.get('CI') == 'true':
                raise SystemExit('%s not installed (required in CI)' % tool)
            sys.stderr.write('%s not installed; skipping\n' % tool)
            sys.exit(77)


require_tools()


class Certs:
    """Every certificate of the tests, made once per module."""

    def __init__(self):
        d = self.dir = tempfile.mkdtemp(prefix='tlsrelay-ccert-')
        self.server = certs.make_cert(d, 'relay.test', self_signed=True)
        self.client_ca = certs.make_ca(d, cn='Client CA', name='clientca')
        self.other_ca = certs.make_ca(d, cn='Other CA', name='otherca')
        mk = certs.make_cert
        # Listed by digest (self-signed: no CA is involved at all).
        self.listed = mk(d, 'listed.client.test', self_signed=True)
        self.listed_spki = mk(d, 'spki.client.test', self_signed=True)
        self.listed_server_only = mk(d, 'serveronly.client.test',
                                     ca=self.other_ca, usage=('server',))
        self.listed_expired = mk(d, 'expired-listed.client.test',
                                 self_signed=True, expired=True)
        self.unlisted = mk(d, 'unlisted.client.test', self_signed=True)
        # Through relay_client_ca_file.
        self.ca_client = mk(d, 'ca-client.client.test', ca=self.client_ca,
                            usage=('client',))
        self.ca_no_eku = mk(d, 'ca-noeku.client.test', ca=self.client_ca,
                            usage=())
        self.ca_server_only = mk(d, 'ca-server.client.test',
                                 ca=self.client_ca, usage=('server',))
        self.ca_expired = mk(d, 'ca-expired.client.test', ca=self.client_ca,
                             usage=('client',), expired=True)
        self.other = mk(d, 'other.client.test', ca=self.other_ca,
                        usage=('client',))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


C = None


def setUpModule():
    global C
    C = Certs()


def tearDownModule():
    C.close()


def fingerprint_lines(relay, cert):
    """What `tlsrelay certs fingerprint` prints: comment and match= lines."""
    r = relay.cli('certs', 'fingerprint', cert.cert, config=False)
    if r.returncode != 0:
        raise AssertionError('certs fingerprint: %s' % r.stderr)
    return r.stdout


def only(text, which):
    """The comment and match= line of one digest ('certificate' or
    'public key') of `certs fingerprint` output."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('#') and which in line:
            return '\n'.join(lines[i:i + 2]) + '\n'
    raise AssertionError('no %s digest in %r' % (which, text))


def save(path, text):
    """Save as editors do: a temporary file renamed over the old one."""
    tmp = path + '.tmp~'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def relay_keys(d, clientcerts=None, ca=True, ask='yes'):
    keys = {
        'mynetworks': '127.0.0.1/32',
        'smtpd_tls_cert_file': C.server.cert,
        'smtpd_tls_key_file': C.server.key,
        'smtpd_tls_ask_ccert': ask,
    }
    if clientcerts is not None:
        path = os.path.join(d, 'clientcerts')
        with open(path, 'w') as f:
            f.write(clientcerts)
        keys['relay_clientcerts'] = path
    if ca:
        keys['relay_client_ca_file'] = C.client_ca.cert
    return keys


def client_context(cert):
    ctx = harness.unverified_context()
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


def smtplib_rcpt(relay, cert, rcpt='bob@dest.test', data=False):
    """From 127.0.0.9 with smtplib: STARTTLS presenting cert (None: none),
    MAIL, RCPT.  Returns (code, reply) of RCPT, or of DATA with data=True."""
    s = relay.smtp(source_address=(OUTSIDE, 0))
    try:
        s.ehlo()
        s.starttls(context=client_context(cert))
        s.ehlo()
        code, reply = s.mail('alice@client.test')
        assert code == 250, (code, reply)
        code, reply = s.rcpt(rcpt)
        if data and code == 250:
            msg, _ = test_delivery.message('alice@client.test', [rcpt])
            code, reply = s.data(msg)
        try:
            s.quit()
        except Exception:
            pass
        return code, reply.decode()
    finally:
        s.close()


def swaks(relay, cert, rcpt='carol@dest.test'):
    """swaks from 127.0.0.9 with --tls and the client certificate."""
    argv = ['swaks', '--server', '127.0.0.1:%d' % relay.port,
            '--local-interface', OUTSIDE, '--helo', 'client.test',
            '--from', 'swaks@client.test', '--to', rcpt, '--tls',
            '--timeout', '10']
    if cert is not None:
        argv += ['--tls-cert', cert.cert, '--tls-key', cert.key]
    return run(argv, timeout=30)


def cert_requested(relay, cert):
    """Did the relay ask gnutls-cli (presenting cert) for a certificate?"""
    p = subprocess.run(
        ['gnutls-cli', '--insecure', '--starttls-proto=smtp',
         '--port', str(relay.port), '--x509certfile', cert.cert,
         '--x509keyfile', cert.key, '127.0.0.1'],
        input=b'QUIT\r\n', stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=30)
    out = p.stdout.decode('utf-8', 'replace')
    if 'Handshake was completed' not in out:
        raise AssertionError('gnutls-cli did not complete a handshake:\n' + out)
    return 'Server has requested a certificate' in out or \
        'Successfully sent' in out


class ClientCertRelay(harness.RelayTestCase):

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix='tlsrelay-ccert-list-')
        self.addCleanup(shutil.rmtree, self.d, True)

    def start(self, listed=(), spki=(), **kw):
        probe = harness.Relay(self, start=False)
        text = '# clients that may relay\n'
        for c in listed:
            text += only(fingerprint_lines(probe, c), 'certificate')
        for c in spki:
            text += only(fingerprint_lines(probe, c), 'public key')
        return self.relay(**relay_keys(self.d, clientcerts=text, **kw))

    def assertRefused(self, relay, code, reply):
        self.assertEqual(code, 554, reply)
        self.assertIn('5.7.1', reply)
        self.assertIn('Relay access denied', reply)
        self.assertEqual(relay.mailq_json(), [], 'nothing may be queued')

    def assertRelays(self, relay, cert):
        code, reply = smtplib_rcpt(relay, cert, data=True)
        self.assertEqual(code, 250, '%s: %s\nlog:\n%s'
                         % (cert, reply, relay.log_text()[-3000:]))
        self.assertRegex(reply, r'queued as [0-9A-F]{10}')

    # -- listed by digest ---------------------------------------------------

    def test_listed_relays_unlisted_refused(self):
        r = self.start(listed=[C.listed, C.listed_server_only,
                               C.listed_expired], spki=[C.listed_spki])
        # No certificate, an unlisted one, and a listed one past its dates.
        for bad in (None, C.unlisted, C.listed_expired):
            code, reply = smtplib_rcpt(r, bad)
            self.assertRefused(r, code, reply)
        self.assertTrue(r.wait_log(r'client certificate: CN="expired-listed\.client\.test".*'
                                   r'outside its validity dates'))
        self.assertTrue(r.wait_log(r'NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.9\]: '
                                   r'554 5\.7\.1 <bob@dest\.test>: Relay access denied'))
        self.assertRelays(r, C.listed)
        # The public-key digest alone is enough.
        self.assertRelays(r, C.listed_spki)
        # Public CAs drop clientAuth: a listed digest needs no key usage.
        self.assertRelays(r, C.listed_server_only)
        self.assertEqual(len(r.mailq_json()), 3)

    def test_swaks(self):
        r = self.start(listed=[C.listed])
        p = swaks(r, C.listed)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r'<~\s+250 2\.0\.0 Ok: queued as [0-9A-F]{10}')
        p = swaks(r, C.unlisted)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertRegex(p.stdout, r'<~\*\s+554 5\.7\.1 <carol@dest\.test>: '
                         r'Relay access denied')
        p = swaks(r, None)
        self.assertRegex(p.stdout, r'<~\*\s+554 5\.7\.1 ')
        self.assertEqual(len(r.mailq_json()), 1, 'only the listed client queued')

    # -- through relay_client_ca_file --------------------------------------

    def test_ca_verified(self):
        r = self.start()
        self.assertRelays(r, C.ca_client)
        self.assertRelays(r, C.ca_no_eku)
        self.assertEqual(len(r.mailq_json()), 2)
        self.assertTrue(r.wait_log(r'Trusted TLS connection established from '
                                   r'unknown\[127\.0\.0\.9\]'))
        for bad, why in ((C.ca_server_only, 'not for TLS client use'),
                         (C.ca_expired, 'expired'),
                         (C.other, 'signer not found'),
                         (C.unlisted, 'self-signed')):
            before = r.log_text()
            code, reply = smtplib_rcpt(r, bad)
            self.assertEqual(code, 554, '%s: %s' % (bad, reply))
            self.assertIn('5.7.1', reply)
            new = r.log_text()[len(before):]
            self.assertRegex(new, r'Untrusted TLS connection established')
            self.assertRegex(new, r'relay_client_ca_file: [^\n]*' + why)
        self.assertEqual(len(r.mailq_json()), 2, 'nothing more queued')
        p = swaks(r, C.ca_client)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = swaks(r, C.ca_server_only)
        self.assertRegex(p.stdout, r'<~\*\s+554 5\.7\.1 ')

    # -- not asked ------------------------------------------------------------

    def test_not_asked_without_ask_ccert(self):
        r = self.start(listed=[C.listed], ask='no')
        self.assertFalse(cert_requested(r, C.listed),
                         'a certificate was requested with smtpd_tls_ask_ccert = no')
        code, reply = smtplib_rcpt(r, C.listed)
        self.assertRefused(r, code, reply)
        code, reply = smtplib_rcpt(r, C.ca_client)
        self.assertRefused(r, code, reply)
        self.assertNotIn('client certificate:', r.log_text())
        self.assertNotIn('no client certificate presented', r.log_text())
        self.assertRegex(r.log_text(), r'smtpd_tls_ask_ccert = no: no client '
                         r'certificate is asked for')
        # And with it, the same client is asked (the check can tell).
        r2 = self.start(listed=[C.listed])
        self.assertTrue(cert_requested(r2, C.listed))

    # -- live edits ---------------------------------------------------------

    def test_live_edit_and_broken_edit(self):
        r = self.start(listed=[C.listed], ca=False)
        path = r.keys['relay_clientcerts']
        code, reply = smtplib_rcpt(r, C.unlisted)
        self.assertRefused(r, code, reply)
        # Saved by rename: in force within the bound, no restart.
        new = fingerprint_lines(r, C.unlisted)
        save(path, new)
        pid = r.proc.pid
        ok = harness.wait_for(
            lambda: smtplib_rcpt(r, C.unlisted)[0] == 250, RELOAD_TIMEOUT, 0.2)
        self.assertTrue(ok, 'the edit did not take effect; log:\n'
                        + r.log_text()[-2000:])
        self.assertEqual(r.proc.pid, pid)
        self.assertRegex(r.log_text(), r'reloaded relay_clientcerts .*'
                         r'\(file changed\): 2 digests')
        self.assertRefused(r, *smtplib_rcpt(r, C.listed))
        # A broken edit: FILE:LINE in the log, the old list stays.
        save(path, new + 'match=12:34\n')
        self.assertTrue(r.wait_log(re.escape(path) + r':5: bad digest "12:34"',
                                   RELOAD_TIMEOUT), r.log_text()[-2000:])
        self.assertTrue(r.wait_log(r'invalid relay_clientcerts file; keeping '
                                   r'the previous list'))
        self.assertEqual(smtplib_rcpt(r, C.unlisted, rcpt='x@dest.test')[0], 250)
        self.assertRefused(r, *smtplib_rcpt(r, C.listed))
        # SIGHUP reloads it too: fixed, then in force.
        with open(path, 'w') as f:
            f.write(fingerprint_lines(r, C.listed))
        r.proc.send_signal(signal.SIGHUP)
        ok = harness.wait_for(
            lambda: smtplib_rcpt(r, C.listed)[0] == 250, RELOAD_TIMEOUT, 0.2)
        self.assertTrue(ok, r.log_text()[-2000:])

    def test_broken_file_refuses_start(self):
        keys = relay_keys(self.d, clientcerts='match=00:11\n# fine\nnonsense\n')
        r = harness.Relay(self, start=False, **keys)
        r.start(wait=False)
        r._expect_dead = True
        self.assertEqual(r.proc.wait(10), 1)
        log = r.log_text()
        self.assertIn(keys['relay_clientcerts'] + ':1: bad digest "00:11"', log)
        self.assertIn(keys['relay_clientcerts'] + ':3: bad digest "nonsense"', log)
        self.assertIn('not starting', log)


class ClientCertDelivery(test_delivery.DeliveryBase):
    """The Received header at the MX and the from= line name the client
    certificate; the metrics count the session by certificate."""

    RECORDS = [
        ('ccert.test.', 'MX', '10 mx1.ccert.test.'),
        ('mx1.ccert.test.', 'A', '127.0.0.21'),
    ]
    HOSTS = ['127.0.0.21']

    def test_received_names_certificate(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-ccert-dlv-')
        self.addCleanup(shutil.rmtree, d, True)
        metrics_port = harness.free_port()
        probe = harness.Relay(self, start=False)
        keys = relay_keys(d, clientcerts=fingerprint_lines(probe, C.listed))
        keys['metrics_listen'] = '127.0.0.1:%d' % metrics_port
        r = self.relay(**keys)
        mx = self.mx('127.0.0.21', 'mx1.ccert.test')
        code, reply = smtplib_rcpt(r, C.ca_client, rcpt='one@ccert.test',
                                   data=True)
        self.assertEqual(code, 250, reply)
        code, reply = smtplib_rcpt(r, C.listed, rcpt='two@ccert.test',
                                   data=True)
        self.assertEqual(code, 250, reply)
        msgs = mx.wait_messages(2, 20)
        by_rcpt = {}
        for env, content in msgs:
            text = content.decode('utf-8', 'replace')
            for rc in ('one@ccert.test', 'two@ccert.test'):
                if rc in text:
                    by_rcpt[rc] = text
        fpr_ca = C.ca_client.cert_sha256()
        fpr_listed = C.listed.cert_sha256()
        rx = (r'Received: from client\.test \(unknown \[127\.0\.0\.9\]\)\r?\n'
              r'\t\(using TLSv1\.[23] with cipher [^\r\n]+\)\r?\n'
              r'\t\(Client CN "%s", Issuer "%s" \(%s\),\r?\n'
              r'\t SHA-256 %s\)\r?\n\tby ')
        self.assertRegex(by_rcpt['one@ccert.test'], rx % (
            re.escape('ca-client.client.test'), 'Client CA', 'verified OK', fpr_ca))
        self.assertRegex(by_rcpt['two@ccert.test'], rx % (
            re.escape('listed.client.test'), re.escape('listed.client.test'),
            'not verified', fpr_listed))
        log = r.log_text()
        self.assertRegex(log, r'[0-9A-F]{10}: from=<alice@client\.test>, size=\d+, '
                         r'nrcpt=1, ccert_subject=ca-client\.client\.test, '
                         r'ccert_fingerprint=%s' % fpr_ca)
        self.assertRegex(log, r'ccert_subject=listed\.client\.test, '
                         r'ccert_fingerprint=%s' % fpr_listed)
        self.assertRegex(log, r'client certificate: CN="listed\.client\.test", .*'
                         r'pubkey sha256=%s' % C.listed.pubkey_sha256())
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % metrics_port,
                                    timeout=10) as resp:
            body = resp.read().decode()
        self.assertIn('tlsrelay_smtpd_sessions_allowed_total{by="certificate"} 2',
                      body)
        self.assertIn('tlsrelay_smtpd_sessions_allowed_total{by="network"} 0',
                      body)


if __name__ == '__main__':
    unittest.main(verbosity=2)
