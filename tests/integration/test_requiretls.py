"""REQUIRETLS (RFC 8689) end to end, with real peers.

Inbound: the listener offers REQUIRETLS in EHLO only under TLS and with
`requiretls = yes`; `MAIL FROM:<..> REQUIRETLS` anywhere else gets
550 5.7.30 and nothing is queued.  A message taken with it carries the flag
in the queue (`mailq --json` says "requiretls": true, `queue show` says
`requiretls: yes`).

Outbound: such a message goes only over TLS verified by the policy
(`secure`, `verify`, `fingerprint` here) to an MX that offers REQUIRETLS
after STARTTLS, with REQUIRETLS in its MAIL FROM.  Otherwise (`encrypt`,
even with a CA-signed certificate; a verified MX without the extension) it
bounces at once with 5.7.30: nothing reaches that MX, and a redacted DSN
(only the original Message-ID) reaches the sender's MX.  A `TLS-Required:
No` header never weakens a policy.

The peers are real: a DNSSEC-signed Knot DNS zone `test.` (dnszone.py),
one aiosmtpd MX per destination on its own 127.0.0.x address (mx.py through
mxpeer.py, with `requiretls=True` where the MX offers the extension), and
certificates from a test CA (certs.py) that the relay trusts through
`tls_ca_file`.  Retries are an hour away, so every bounce seen here is the
first attempt's.
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
from harness import smtp_send, unverified_context  # noqa: E402
from mxpeer import MX  # noqa: E402
from test_delivery import (common_port, dsn_parts, message,  # noqa: E402
                           msg_id_of, null_sender, per_recipient,
                           require_peers)

TIMEOUT = 15.0
SENDER = 'alice@snd.test'
SECRET = 'secret-subject-8689'

# (domain, MX host, address, policy line after the domain or None)
DESTS = {
    'ok': ('rtls-ok.test', 'mx1.rtls-ok.test', '127.0.0.60', 'secure'),
    'enc': ('rtls-enc.test', 'mx1.rtls-enc.test', '127.0.0.61', 'encrypt'),
    'noext': ('rtls-noext.test', 'mx1.rtls-noext.test', '127.0.0.62',
              'verify'),
    'fp': ('rtls-fp.test', 'mx1.rtls-fp.test', '127.0.0.63', None),
    'down': ('rtls-down.test', 'mx1.rtls-down.test', '127.0.0.64', 'secure'),
    'notls': ('rtls-notls.test', 'mx1.rtls-notls.test', '127.0.0.65',
              'encrypt'),
    'snd': ('snd.test', 'mx1.snd.test', '127.0.0.66', 'may'),
}
HOSTS = sorted(ip for _, _, ip, _ in DESTS.values())


def zone_records():
    recs = []
    for domain, host, ip, _ in DESTS.values():
        recs.append((domain + '.', 'MX', '10 %s.' % host))
        recs.append((host + '.', 'A', ip))
    return recs


FIX = None


class Fixture:
    def __init__(self):
        self.zone = dnszone.DnsZone(zone_records())
        try:
            self.port = common_port(HOSTS)
            self.dir = tempfile.mkdtemp(prefix='tlsrelay-rtls-')
            d = self.dir
            self.ca = certs.default_ca(d)
            # CA-signed certificates for the MX names; the fingerprint MX
            # is self-signed (only its digest can authenticate it).
            self.cert = {k: certs.make_cert(d, host) for k, (_, host, _, _)
                         in DESTS.items() if k != 'fp'}
            self.cert['fp'] = certs.make_cert(d, DESTS['fp'][1],
                                              self_signed=True)
            # The listener's own certificate, for inbound STARTTLS.
            self.smtpd = certs.make_cert(d, harness.HOSTNAME,
                                         name='smtpd')
            lines = ['%s %s' % (dom, pol) for dom, _, _, pol in
                     DESTS.values() if pol]
            lines.append('rtls-fp.test fingerprint match=%s'
                         % self.cert['fp'].cert_sha256())
            self.policy = '\n'.join(lines) + '\n'
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.zone.close()
        finally:
            if getattr(self, 'dir', None):
                shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global FIX
    FIX = Fixture()


def tearDownModule():
    if FIX is not None:
        FIX.close()


class Base(unittest.TestCase):

    def relay(self, **keys):
        """A relay with the policy file above, the test CA as tls_ca_file,
        STARTTLS on the listener and retries an hour away."""
        k = dict(FIX.zone.relay_keys())
        k.update({'remote_port': FIX.port, 'tls_ca_file': FIX.ca.cert,
                  'default_tls_level': 'may',
                  'smtpd_tls_cert_file': FIX.smtpd.cert,
                  'smtpd_tls_key_file': FIX.smtpd.key,
                  'retry_min': '1h', 'retry_max': '1h'})
        k.update(keys)
        k = {key: v for key, v in k.items() if v is not None}
        relay = harness.Relay(self, start=False, **k)
        with open(relay.keys['policy_file'], 'w') as f:
            f.write(FIX.policy)
        relay.start()
        return relay

    def mx(self, key, tls=True, **opts):
        _, host, ip, _ = DESTS[key]
        m = MX(self)
        if tls:
            opts.update(tls_cert=FIX.cert[key].cert,
                        tls_key=FIX.cert[key].key)
        m.start(ip, FIX.port, hostname=host, **opts)
        return m

    def send(self, relay, key, local='bob', requiretls=True, extra=()):
        """Submit over STARTTLS one message to local@DESTS[key]'s domain;
        returns (queue ID, Message-ID, recipient)."""
        rcpt = '%s@%s' % (local, DESTS[key][0])
        data, mid = message(SENDER, [rcpt], subject=SECRET)
        if extra:
            head, _, body = data.partition(b'\r\n\r\n')
            data = head + b'\r\n' + b'\r\n'.join(extra) + b'\r\n\r\n' + body
        code, reply, qid = smtp_send(
            relay, SENDER, [rcpt], data, starttls=True,
            mail_options=['REQUIRETLS'] if requiretls else [])
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, mid, rcpt

    def log_tail(self, relay):
        return relay.log_text()[-4000:]

    def wait_log(self, relay, regex, timeout=TIMEOUT):
        m = relay.wait_log(regex, timeout)
        if not m:
            self.fail('no log line matching %r within %.0f s; log:\n%s'
                      % (regex, timeout, self.log_tail(relay)))
        return m

    def wait_gone(self, relay, qid):
        if not harness.wait_for(lambda: relay.find(qid) is None, TIMEOUT):
            self.fail('%s still queued: %s\nlog:\n%s'
                      % (qid, relay.find(qid), self.log_tail(relay)))

    def stored(self, mx, mid):
        return [(e, c) for e, c in mx.messages() if msg_id_of(c) == mid]

    def assert_no_transaction(self, mx, rcpt):
        """mx never saw MAIL, RCPT or DATA for the REQUIRETLS message:
        no MAIL FROM with REQUIRETLS, no RCPT TO for rcpt."""
        events = mx.events()
        self.assertEqual([e for e in events if e['event'] == 'mail' and
                          'REQUIRETLS' in e.get('options', [])], [], events)
        self.assertEqual([e for e in events if e['event'] == 'rcpt' and
                          e.get('address', '').lower() == rcpt], [], events)

    def assert_bounced(self, relay, snd, qid, mid, rcpt, key, reason):
        """qid's rcpt bounced at once with 5.7.30 and reason, the queue
        holds nothing of it, and a redacted DSN reached the sender's MX."""
        _, host, ip, _ = DESTS[key]
        # relay=none: bounced before any connection (the policy cannot
        # verify); else after the session's verdict.
        self.wait_log(relay, r'%s: to=<%s>, relay=(?:%s\[%s\]:%d|none), '
                      r'delay=[0-9.]+, (?:tls=[a-z-]+, )?dsn=5\.7\.30, '
                      r'status=bounced \(%s'
                      % (qid, re.escape(rcpt), re.escape(host),
                         re.escape(ip), FIX.port, re.escape(reason)))
        self.wait_gone(relay, qid)
        dsns = harness.wait_for(lambda: [
            (e, c) for e, c in snd.messages() if null_sender(e['mail_from'])],
            TIMEOUT)
        self.assertTrue(dsns, 'no DSN at mx1.snd.test; events: %s\nlog:\n%s'
                        % (snd.events(), self.log_tail(relay)))
        self.assertEqual(len(dsns), 1, dsns)
        env, content = dsns[0]
        self.assertEqual(env['rcpt_tos'], [SENDER])
        # The DSN is ordinary mail (redacted, RFC 8689 section 5).
        self.assertNotIn('REQUIRETLS', env['mail_options'])
        _, blocks = dsn_parts(content)
        fields = per_recipient(blocks)[rcpt]
        self.assertEqual(fields['Status'].strip(), '5.7.30')
        self.assertEqual(fields['Action'].strip().lower(), 'failed')
        diag = ' '.join(fields.get('Diagnostic-Code', '').split())
        self.assertIn(reason, diag)
        # Redacted: the original's Message-ID comes back, nothing else.
        self.assertIn(('Message-ID: %s' % mid).encode(), content)
        self.assertNotIn(SECRET.encode(), content)
        self.assertNotIn(b'hello ', content)
        self.assertIn(b'only its Message-ID is attached', content)


class Inbound(Base):

    def ehlo_features(self, relay):
        s = relay.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        before = dict(s.esmtp_features)
        s.starttls(context=unverified_context())
        s.ehlo()
        return s, before, dict(s.esmtp_features)

    def test_offered_only_after_starttls(self):
        relay = self.relay()
        s, before, after = self.ehlo_features(relay)
        self.assertIn('starttls', before)
        self.assertNotIn('requiretls', before)
        self.assertIn('requiretls', after)
        s.quit()

    def test_in_clear_refused_nothing_queued(self):
        relay = self.relay()
        s = relay.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        code, reply = s.mail(SENDER, ['REQUIRETLS'])
        self.assertEqual(code, 550, reply)
        self.assertTrue(reply.startswith(b'5.7.30 REQUIRETLS support '
                                         b'required'), reply)
        self.assertIn(b'STARTTLS', reply)
        # No transaction was started: RCPT needs a MAIL first.
        self.assertEqual(s.rcpt('bob@rtls-ok.test')[0], 503)
        self.assertEqual(relay.mailq_json(), [])
        self.wait_log(relay, r'NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]:'
                      r' 550 5\.7\.30 .*; from=<%s> proto=ESMTP' % SENDER)
        # The session goes on: mail without REQUIRETLS is taken.
        s.rset()
        self.assertEqual(s.mail(SENDER)[0], 250)
        s.quit()

    def test_listener_without_tls_refuses(self):
        relay = self.relay(smtpd_tls_cert_file=None, smtpd_tls_key_file=None)
        s = relay.smtp()
        self.addCleanup(s.close)
        s.ehlo()
        self.assertNotIn('starttls', s.esmtp_features)
        self.assertNotIn('requiretls', s.esmtp_features)
        code, reply = s.mail(SENDER, ['REQUIRETLS'])
        self.assertEqual(code, 550, reply)
        self.assertIn(b'5.7.30', reply)
        self.assertEqual(relay.mailq_json(), [])
        s.quit()

    def test_requiretls_no(self):
        relay = self.relay(requiretls='no')
        s, before, after = self.ehlo_features(relay)
        self.assertNotIn('requiretls', before)
        self.assertNotIn('requiretls', after)
        code, reply = s.mail(SENDER, ['REQUIRETLS'])
        self.assertEqual(code, 550, reply)
        self.assertIn(b'5.7.30', reply)
        self.assertIn(b'not offered', reply)
        self.assertEqual(relay.mailq_json(), [])
        s.quit()

    def test_flag_in_mailq_and_queue_show(self):
        """Queued (its MX is down): mailq --json says "requiretls": true,
        only for that message; queue show says so."""
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'down')
        plain, _, _ = self.send(relay, 'down', local='carol', requiretls=False)
        m = harness.wait_for(lambda: relay.find(qid), TIMEOUT)
        self.assertTrue(m, relay.mailq_json())
        self.assertIs(m.get('requiretls'), True, m)
        self.assertNotIn('requiretls', relay.find(plain))
        show = relay.queue_show(qid)
        self.assertIn(b'\nrequiretls: yes', show)
        self.assertNotIn(b'requiretls:', relay.queue_show(plain))
        # No connection is no REQUIRETLS failure: deferred, not bounced.
        m = harness.wait_for(lambda: (lambda x: x if x and x['recipients']
                                      and x['recipients'][0].get(
                                          'delay_reason') else None)(
                                              relay.find(qid)), TIMEOUT)
        self.assertTrue(m, relay.find(qid))
        self.assertEqual(m['queue_name'], 'deferred')
        self.assertIs(m.get('requiretls'), True, m)


class Outbound(Base):

    def test_secure_mx_with_requiretls_gets_it(self):
        mx = self.mx('ok', requiretls=True)
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'ok')
        got = harness.wait_for(lambda: self.stored(mx, mid), TIMEOUT)
        self.assertTrue(got, 'not delivered; mx events %s\nlog:\n%s'
                        % (mx.events(), self.log_tail(relay)))
        env, _ = got[0]
        self.assertIs(env['tls'], True)
        self.assertEqual(env['rcpt_tos'], [rcpt])
        self.assertIn('REQUIRETLS', env['mail_options'])
        self.wait_log(relay, r'%s: to=<%s>, relay=mx1\.rtls-ok\.test\[127\.0\.0'
                      r'\.60\]:%d, delay=[0-9.]+, tls=verified, dsn=2\.\d+\.\d+,'
                      r' status=sent' % (qid, re.escape(rcpt), FIX.port))
        self.wait_gone(relay, qid)

    def test_fingerprint_mx_with_requiretls_gets_it(self):
        mx = self.mx('fp', requiretls=True)
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'fp')
        got = harness.wait_for(lambda: self.stored(mx, mid), TIMEOUT)
        self.assertTrue(got, 'not delivered; mx events %s\nlog:\n%s'
                        % (mx.events(), self.log_tail(relay)))
        self.assertIn('REQUIRETLS', got[0][0]['mail_options'])
        self.wait_gone(relay, qid)

    def test_encrypt_bounces_5730(self):
        """encrypt, even with a certificate from the trusted CA, is not
        verified: the REQUIRETLS message bounces at once, before any
        connection, and never reaches the MX, while ordinary mail to it
        goes as usual."""
        mx = self.mx('enc', requiretls=True)
        snd = self.mx('snd')
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'enc')
        self.assert_bounced(relay, snd, qid, mid, rcpt, 'enc',
                            'REQUIRETLS: the TLS policy of rtls-enc.test '
                            '(level encrypt) cannot verify mx1.rtls-enc.test')
        self.assertEqual(self.stored(mx, mid), [])
        self.assert_no_transaction(mx, rcpt)
        # Control: the same MX takes ordinary mail under encrypt.
        pq, pmid, _ = self.send(relay, 'enc', local='carol', requiretls=False)
        self.assertTrue(harness.wait_for(lambda: self.stored(mx, pmid),
                                         TIMEOUT), mx.events())
        self.assert_no_transaction(mx, rcpt)

    def test_verified_mx_without_requiretls_bounces_5730(self):
        mx = self.mx('noext')
        snd = self.mx('snd')
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'noext')
        self.assert_bounced(relay, snd, qid, mid, rcpt, 'noext',
                            'REQUIRETLS: host mx1.rtls-noext.test'
                            '[127.0.0.62] does not offer REQUIRETLS')
        self.assertEqual(self.stored(mx, mid), [])
        self.assert_no_transaction(mx, rcpt)
        self.assertEqual([e for e in mx.events() if e['event'] == 'mail'], [])
        # The relay did get as far as verified TLS with it.
        self.wait_log(relay, r'Verified TLS connection established to '
                      r'mx1\.rtls-noext\.test\[127\.0\.0\.62\]')

    def test_mx_without_starttls_bounces_5730_at_once(self):
        """An encrypt destination whose MX offers no STARTTLS: the
        REQUIRETLS message is not kept deferred until it expires; it
        bounces at once (the policy can never verify), nothing reaches
        the MX."""
        mx = self.mx('notls', tls=False)
        snd = self.mx('snd')
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'notls')
        self.assert_bounced(relay, snd, qid, mid, rcpt, 'notls',
                            'REQUIRETLS: the TLS policy of %s (level '
                            'encrypt) cannot verify %s' % DESTS['notls'][:2])
        self.assertEqual(mx.messages(), [])
        self.assertEqual([e for e in mx.events() if e['event'] == 'mail'], [])

    def test_tls_required_no_never_weakens(self):
        """`TLS-Required: No` (RFC 8689 section 3) is never honoured: an
        encrypt destination without STARTTLS still gets nothing in clear."""
        mx = self.mx('notls', tls=False)
        relay = self.relay()
        qid, mid, rcpt = self.send(relay, 'notls', requiretls=False,
                                   extra=[b'TLS-Required: No'])

        def deferred():
            m = relay.find(qid)
            return m if m and m['recipients'] and m['recipients'][0].get(
                'delay_reason') else None
        m = harness.wait_for(deferred, TIMEOUT)
        self.assertTrue(m, 'not deferred: %s\nlog:\n%s'
                        % (relay.find(qid), self.log_tail(relay)))
        self.assertIn('TLS is required, but was not offered',
                      m['recipients'][0]['delay_reason'])
        self.assertEqual(mx.messages(), [])
        self.assertEqual([e for e in mx.events() if e['event'] == 'mail'], [])


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
