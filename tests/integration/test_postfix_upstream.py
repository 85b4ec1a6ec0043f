"""A real Postfix as the relay's client from outside mynetworks (issue 12),
with the README's "Postfix as a client" blocks.

The relay listens on 127.0.0.1 with mynetworks = 127.0.0.1/32; the Postfix
instance (postfixpeer: Debian's postfix in a temporary directory) has the
README's main.cf lines, its relayhost pointed at the relay, and
smtp_bind_address = 127.0.0.9, so it connects from outside mynetworks and
only its certificate or its AUTH can let it relay.  An application hands a
message to Postfix over SMTP; what Postfix does with it is read from its
log, what the relay does from the relay's log, queue and the aiosmtpd MX
(found in a Knot zone).

- client certificate (smtp_tls_cert_file, smtp_tls_security_level =
  encrypt), listed in relay_clientcerts as `tlsrelay certs fingerprint`
  prints it: relayed and delivered; the from= line names ccert_subject and
  ccert_fingerprint, the MX's Received header the certificate;
- the same Postfix with its certificate not listed (another one is): the
  relay sees the certificate and refuses with 554 5.7.1; Postfix bounces
  the recipient (and its bounce to the sender is refused too); the relay's
  queue stays empty and the MX gets nothing;
- SMTP AUTH (smtp_sasl_auth_enable, a texthash password map, no client
  certificate): relayed, the relay logs sasl_username=; with a wrong
  password the relay answers 535 5.7.8, Postfix defers the message and
  nothing is queued at the relay.
"""

import glob
import os
import re
import shutil
import smtplib
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import guides  # noqa: E402
import harness  # noqa: E402
from postfixpeer import PostfixInstance, require as require_postfix  # noqa: E402
from test_auth import crypt_hash  # noqa: E402
from test_delivery import (DeliveryBase, msg_id_of, new_msg_id,  # noqa: E402
                           require_peers)

require_peers()
require_postfix()
guides.need(shutil.which(certs.CERTTOOL), 'certtool (gnutls-bin) not installed')
# Postfix's SASL client finds PLAIN in Cyrus SASL's plugins.
guides.need(glob.glob('/usr/lib/*/sasl2/libplain.so*'),
            'Debian package libsasl2-modules not installed')

OUTSIDE = '127.0.0.9'
MX_IP = '127.0.0.63'
RCPT = 'bob@pfc.test'
SENDER = 'app@app.test'
# The README's example user (guide postfix-relay_passwd).
USER, PASSWORD = 'alice', 'Wonder-land-7'


class PostfixClient(DeliveryBase):

    RECORDS = [('pfc.test.', 'MX', '10 mx1.pfc.test.'),
               ('mx1.pfc.test.', 'A', MX_IP)]
    HOSTS = [MX_IP]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.ccdir = tempfile.mkdtemp(prefix='tlsrelay-pfc-')
        cls.addClassCleanup(shutil.rmtree, d, True)
        # Postfix's client certificate, and one that is listed instead of
        # it in the refusal case.
        cls.client = certs.make_cert(d, 'postfix.client.test',
                                     self_signed=True)
        cls.other = certs.make_cert(d, 'other.client.test', self_signed=True)

    # -- the two sides -----------------------------------------------------

    def ccert_relay(self, listed):
        """The relay asking for client certificates, listing `listed`'s
        digests as `tlsrelay certs fingerprint` prints them."""
        probe = harness.Relay(self, start=False)
        r = probe.cli('certs', 'fingerprint', listed.cert, config=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(probe.dir, 'clientcerts')
        with open(path, 'w') as f:
            f.write(r.stdout)
        return self.relay(mynetworks='127.0.0.1/32',
                          smtpd_tls_cert_file=self.cert.cert,
                          smtpd_tls_key_file=self.cert.key,
                          smtpd_tls_ask_ccert='yes',
                          relay_clientcerts=path)

    def auth_relay(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-pfc-auth-')
        self.addCleanup(shutil.rmtree, d, True)
        passwd = os.path.join(d, 'sasl_passwd')
        with open(passwd, 'w') as f:
            f.write('%s:%s\n' % (USER, crypt_hash(PASSWORD, b'$y$')))
        os.chmod(passwd, 0o600)
        return self.relay(mynetworks='127.0.0.1/32',
                          smtpd_tls_cert_file=self.cert.cert,
                          smtpd_tls_key_file=self.cert.key,
                          smtpd_sasl_password_file=passwd)

    def postfix(self, relay, guide, files=()):
        """A started Postfix instance with the README block guide, pointed
        at relay, binding OUTSIDE for its connections.  files: (name, text)
        for the block's /etc/postfix/NAME paths, made in the instance."""
        pf = PostfixInstance(self)
        lines = guides.block(guide)
        self.assertIn('relayhost = [relay.example]:2525\n', lines)
        for name, text in files:
            self.assertIn('/etc/postfix/%s\n' % name, lines)
            pf.private_file(name, text)
        lines = lines.replace('[relay.example]:2525',
                              '[127.0.0.1]:%d' % relay.port)
        lines = lines.replace('/etc/postfix/', pf.etc + '/')
        pf.add_main_cf(lines + 'smtp_bind_address = %s\n' % OUTSIDE)
        pf.start()
        return pf

    def cert_postfix(self, relay):
        with open(self.client.key) as f:
            key = f.read()
        return self.postfix(relay, 'postfix-client-cert',
                            [('relay-client.pem', self.client.pem()),
                             ('relay-client.key', key)])

    def submit(self, pf):
        """An application's message to Postfix; returns its Message-ID."""
        msg_id = new_msg_id('pfc')
        data = ('From: <%s>\r\nTo: <%s>\r\nSubject: via postfix\r\n'
                'Message-ID: %s\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n'
                '\r\nhello from postfix\r\n' % (SENDER, RCPT, msg_id))
        with smtplib.SMTP('127.0.0.1', pf.port, timeout=10) as s:
            s.ehlo('client.test')
            self.assertEqual(s.sendmail(SENDER, [RCPT], data.encode()), {})
        return msg_id

    def relayed(self, pf, relay, mx, msg_id):
        """Postfix's status=sent, the relay's queue ID in it, the MX's copy;
        returns (queue ID, content at the MX)."""
        m = pf.wait_log(r'postfix/smtp\[\d+\]: \w+: to=<%s>, '
                        r'relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent '
                        r'\(250 2\.0\.0 Ok: queued as ([0-9A-F]{10})\)$'
                        % (re.escape(RCPT), relay.port))
        qid = m.group(1)
        self.sent_line(relay, qid, RCPT, 'mx1.pfc.test', MX_IP)
        env, content = self.messages_with(mx, msg_id)[0]
        self.assertEqual(env['mail_from'], SENDER)
        self.assertEqual(env['rcpt_tos'], [RCPT])
        self.assertEqual(msg_id_of(content), msg_id)
        self.wait_queue_empty(relay)
        return qid, content

    # -- client certificate ------------------------------------------------

    def test_listed_certificate_relays(self):
        mx = self.mx(MX_IP, 'mx1.pfc.test')
        relay = self.ccert_relay(self.client)
        pf = self.cert_postfix(relay)
        msg_id = self.submit(pf)
        qid, content = self.relayed(pf, relay, mx, msg_id)
        fpr = self.client.cert_sha256()
        # From outside mynetworks, allowed by the certificate alone.
        self.wait_log(relay, r'Untrusted TLS connection established from '
                      r'unknown\[127\.0\.0\.9\]')
        self.wait_log(relay, r'unknown\[127\.0\.0\.9\]: client certificate: '
                      r'CN="postfix\.client\.test", .*sha256=%s' % fpr)
        self.wait_log(relay, r'%s: from=<%s>, size=\d+, nrcpt=1, '
                      r'ccert_subject=postfix\.client\.test, '
                      r'ccert_fingerprint=%s$'
                      % (qid, re.escape(SENDER), fpr))
        self.assertRegex(content.decode('utf-8', 'replace'),
                         r'Received: from app\.test \(unknown \[127\.0\.0\.9\]\)'
                         r'\r\n\t\(using TLSv1\.[23] [^\r\n]*\)\r\n'
                         r'\t\(Client CN "postfix\.client\.test", Issuer '
                         r'"postfix\.client\.test" \(not verified\),\r\n'
                         r'\t SHA-256 %s\)' % fpr)
        self.assertNotIn('sasl_username=', relay.log_text())

    def test_unlisted_certificate_refused(self):
        mx = self.mx(MX_IP, 'mx1.pfc.test')
        relay = self.ccert_relay(self.other)
        pf = self.cert_postfix(relay)
        self.submit(pf)
        # The relay saw Postfix's certificate (so the refusal is about the
        # list, not a missing certificate) and refused at RCPT.
        self.wait_log(relay, r'unknown\[127\.0\.0\.9\]: client certificate: '
                      r'CN="postfix\.client\.test", .*sha256=%s'
                      % self.client.cert_sha256())
        self.wait_log(relay, r'NOQUEUE: reject: RCPT from unknown'
                      r'\[127\.0\.0\.9\]: 554 5\.7\.1 <%s>: Relay access denied'
                      % re.escape(RCPT))
        # Postfix takes the 554 at RCPT as final: the recipient bounces and
        # the sender gets a non-delivery notification ...
        m = pf.wait_log(r'postfix/smtp\[\d+\]: (\w+): to=<%s>, '
                        r'relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*'
                        r'status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] '
                        r'said: 554 5\.7\.1 <%s>: Relay access denied '
                        r'\(in reply to RCPT TO command\)\)$'
                        % (re.escape(RCPT), relay.port, re.escape(RCPT)))
        bounce = pf.wait_log(r'postfix/bounce\[\d+\]: %s: sender '
                             r'non-delivery notification: (\w+)$'
                             % m.group(1)).group(1)
        # ... which goes to the same relayhost and is refused there too.
        pf.wait_log(r'postfix/smtp\[\d+\]: %s: to=<%s>, .*status=bounced '
                    r'\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 554 5\.7\.1 '
                    % (bounce, re.escape(SENDER)))
        self.assertEqual(relay.mailq_json(), [], 'nothing may be queued')
        self.assertNotRegex(relay.log_text(), r'[0-9A-F]{10}: from=<')
        self.assertEqual(mx.messages(), [])

    # -- SMTP AUTH -----------------------------------------------------------

    def auth_postfix(self, relay, password):
        passwd = guides.block('postfix-relay_passwd')
        self.assertEqual(passwd, '[relay.example]:2525 %s:%s\n'
                         % (USER, PASSWORD))
        passwd = passwd.replace('[relay.example]:2525',
                                '[127.0.0.1]:%d' % relay.port)
        passwd = passwd.replace(':' + PASSWORD, ':' + password)
        return self.postfix(relay, 'postfix-client-auth',
                            [('relay_passwd', passwd)])

    def test_auth_relays(self):
        mx = self.mx(MX_IP, 'mx1.pfc.test')
        relay = self.auth_relay()
        pf = self.auth_postfix(relay, PASSWORD)
        msg_id = self.submit(pf)
        qid, content = self.relayed(pf, relay, mx, msg_id)
        self.wait_log(relay, r'unknown\[127\.0\.0\.9\]: sasl_method=(PLAIN|LOGIN), '
                      r'sasl_username=%s$' % USER)
        self.wait_log(relay, r'%s: from=<%s>, size=\d+, nrcpt=1, '
                      r'sasl_username=%s$' % (qid, re.escape(SENDER), USER))
        self.assertIn(b'(Authenticated sender: %s)' % USER.encode(), content)
        self.assertNotIn(PASSWORD, relay.log_text())

    def test_wrong_password_deferred(self):
        mx = self.mx(MX_IP, 'mx1.pfc.test')
        relay = self.auth_relay()
        pf = self.auth_postfix(relay, 'not-' + PASSWORD)
        self.submit(pf)
        self.wait_log(relay, r'warning: unknown\[127\.0\.0\.9\]: SASL '
                      r'(PLAIN|LOGIN) authentication failed')
        # Postfix keeps the message and will try again later.
        pf.wait_log(r'postfix/smtp\[\d+\]: \w+: to=<%s>, '
                    r'relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=deferred '
                    r'\(SASL authentication failed; server '
                    r'127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Error: '
                    r'authentication failed\)$' % (re.escape(RCPT), relay.port))
        self.assertEqual(relay.mailq_json(), [], 'nothing may be queued')
        self.assertEqual(mx.messages(), [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
