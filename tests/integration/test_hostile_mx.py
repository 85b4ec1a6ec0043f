"""Outbound replies a hostile MX sends, and SMTPUTF8 (RFC 6531 3.4).

Reply classes (RFC 5321 4.3.2): an MX that answers 354 after the end of
data, 354 to RCPT or 334 to MAIL has not taken the message.  The relay
ends the session (QUIT at most), keeps the message queued as deferred with
"protocol error: unexpected reply ..." in mailq, and never logs
status=sent.  (An older relay read every code below 400 as success: it
logged status=sent and deleted the message.)

SMTPUTF8: mail received with MAIL FROM ... SMTPUTF8 goes only to an MX
that offers SMTPUTF8, with SMTPUTF8 in our MAIL FROM; an MX without it
never sees the message, and the sender gets a DSN with status 5.6.7 at
once.  Both MX hosts are aiosmtpd (tests/peers/mx.py, --no-smtputf8 for
enable_SMTPUTF8=False).
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import (DELIVERY_TIMEOUT, DeliveryBase, dsn_parts,  # noqa: E402
                           message, null_sender, per_recipient, require_peers)


class ReplyClasses(DeliveryBase):
    RECORDS = [
        ('dot.test.', 'MX', '10 mx1.dot.test.'),
        ('mx1.dot.test.', 'A', '127.0.0.90'),
        ('rcpt.test.', 'MX', '10 mx1.rcpt.test.'),
        ('mx1.rcpt.test.', 'A', '127.0.0.91'),
        ('mail.test.', 'MX', '10 mx1.mail.test.'),
        ('mx1.mail.test.', 'A', '127.0.0.92'),
    ]
    HOSTS = ['127.0.0.90', '127.0.0.91', '127.0.0.92']

    def relay(self, **keys):
        # One attempt in the test's time: a retry comes an hour later.
        keys.setdefault('retry_min', '1h')
        keys.setdefault('retry_max', '1h')
        return super().relay(**keys)

    def assert_deferred(self, relay, qid, rcpt, host, ip, reason):
        """The message stays queued as deferred with reason in mailq (JSON
        and text), the log says status=deferred with it, never sent."""
        m = self.wait_deferred(relay, qid)
        self.assertEqual(m['queue_name'], 'deferred', m)
        self.assertEqual([r['address'] for r in m['recipients']], [rcpt])
        self.assertIn(reason, m['recipients'][0]['delay_reason'])
        self.assertIn('from %s[%s]' % (host, ip),
                      m['recipients'][0]['delay_reason'])
        self.assertIn(reason, relay.mailq_text())
        self.wait_log(relay, r'%s: to=<%s>, relay=%s\[%s\]:%d, delay=[0-9.]+, tls=[a-z]+, '
                      r'dsn=4\.5\.0, status=deferred \(%s'
                      % (qid, re.escape(rcpt), re.escape(host), re.escape(ip),
                         self.port, re.escape(reason)))
        self.assertNotRegex(relay.log_text(), r'%s: to=<[^>]*>.*status=sent'
                            % qid)
        self.assertIsNotNone(relay.find(qid))

    def test_354_after_end_of_data_is_not_delivered(self):
        mx = self.mx('127.0.0.90', 'mx1.dot.test', tls=False,
                     data_reply='354 3.0.0 Send more')
        relay = self.relay()
        qid, _ = self.send(relay, 'alice@client.test', ['bob@dot.test'])
        self.assert_deferred(relay, qid, 'bob@dot.test', 'mx1.dot.test',
                             '127.0.0.90', 'protocol error: unexpected reply '
                             '"354 3.0.0 Send more" to end of data')
        # The MX got the content once, then at most QUIT on that session.
        kinds = [e['event'] for e in mx.events()]
        self.assertEqual(kinds.count('data'), 1, kinds)
        self.assertEqual(kinds[kinds.index('data') + 1:],
                         ['quit'] if 'quit' in kinds else [], kinds)

    def test_354_to_rcpt_is_not_an_accepted_recipient(self):
        mx = self.mx('127.0.0.91', 'mx1.rcpt.test', tls=False,
                     rcpt_reply={'bob@rcpt.test': '354 Start mail input'})
        relay = self.relay()
        qid, _ = self.send(relay, 'alice@client.test', ['bob@rcpt.test'])
        self.assert_deferred(relay, qid, 'bob@rcpt.test', 'mx1.rcpt.test',
                             '127.0.0.91', 'protocol error: unexpected reply '
                             '"354 Start mail input" to RCPT TO')
        kinds = [e['event'] for e in mx.events()]
        self.assertIn('rcpt', kinds)
        self.assertNotIn('data', kinds)   # no DATA, no content
        self.assertEqual(mx.messages(), [])

    def test_334_to_mail_ends_the_session(self):
        mx = self.mx('127.0.0.92', 'mx1.mail.test', tls=False,
                     mail_reply='334 VXNlcm5hbWU6')
        relay = self.relay()
        qid, _ = self.send(relay, 'alice@client.test', ['bob@mail.test'])
        self.assert_deferred(relay, qid, 'bob@mail.test', 'mx1.mail.test',
                             '127.0.0.92', 'protocol error: unexpected reply '
                             '"334 VXNlcm5hbWU6" to MAIL FROM')
        kinds = [e['event'] for e in mx.events()]
        self.assertIn('mail', kinds)
        self.assertFalse({'rcpt', 'data'} & set(kinds), kinds)


class SmtpUtf8(DeliveryBase):
    RECORDS = [
        ('u8.test.', 'MX', '10 mx1.u8.test.'),
        ('mx1.u8.test.', 'A', '127.0.0.93'),
        ('ascii.test.', 'MX', '10 mx1.ascii.test.'),
        ('mx1.ascii.test.', 'A', '127.0.0.94'),
        # The senders' domain: DSNs go here.
        ('snd8.test.', 'MX', '10 mx1.snd8.test.'),
        ('mx1.snd8.test.', 'A', '127.0.0.95'),
    ]
    HOSTS = ['127.0.0.93', '127.0.0.94', '127.0.0.95']

    def send_utf8(self, relay, sender, rcpt):
        data, msg_id = message(sender, [rcpt])
        code, reply, qid = harness.smtp_send(relay, sender, [rcpt], data,
                                             mail_options=['SMTPUTF8'])
        self.assertEqual(code, 250, reply)
        self.assertIsNotNone(qid, reply)
        return qid, msg_id

    def test_smtputf8_passed_on_to_an_mx_that_offers_it(self):
        mx = self.mx('127.0.0.93', 'mx1.u8.test', tls=False)
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send_utf8(relay, 'alice@snd8.test', 'j\u00f6rg@u8.test')
        env, _ = self.messages_with(mx, mid)[0]
        self.assertIn('SMTPUTF8', [o.upper() for o in env['mail_options']],
                      env)
        self.assertEqual(env['rcpt_tos'], ['j\u00f6rg@u8.test'])
        self.wait_log(relay, r'%s: to=<j\u00f6rg@u8\.test>, relay=mx1\.u8\.test'
                      r'\[127\.0\.0\.93\]:%d, .*status=sent' % (qid, self.port))
        self.wait_gone(relay, qid)

    def test_smtputf8_bounces_5_6_7_without_it(self):
        plain = self.mx('127.0.0.94', 'mx1.ascii.test', tls=False,
                        no_smtputf8=True)
        snd = self.mx('127.0.0.95', 'mx1.snd8.test', tls=False)
        relay = self.relay(retry_min='1h', retry_max='1h')
        qid, mid = self.send_utf8(relay, 'carol@snd8.test', 'dave@ascii.test')
        why = 'SMTPUTF8 is required, but was not offered by host ' \
              'mx1.ascii.test[127.0.0.94]'
        self.wait_log(relay, r'%s: to=<dave@ascii\.test>, relay=mx1\.ascii\.'
                      r'test\[127\.0\.0\.94\]:%d, delay=[0-9.]+, tls=[a-z]+, dsn=5\.6\.7, '
                      r'status=bounced \(%s\)'
                      % (qid, self.port, re.escape(why)))
        dsns = harness.wait_for(lambda: [
            (e, c) for e, c in snd.messages() if null_sender(e['mail_from'])],
            DELIVERY_TIMEOUT)
        self.assertTrue(dsns, 'no DSN at mx1.snd8.test; events: %s\nlog:\n%s'
                        % (snd.events(), relay.log_text()[-3000:]))
        env, content = dsns[0]
        self.assertEqual(env['rcpt_tos'], ['carol@snd8.test'])
        _, blocks = dsn_parts(content)
        fields = per_recipient(blocks)['dave@ascii.test']
        self.assertEqual(fields['Status'].strip(), '5.6.7')
        self.assertEqual(fields['Action'].strip().lower(), 'failed')
        self.assertIn(mid.encode(), content)
        # The MX without SMTPUTF8 was never offered the message.
        self.assertTrue(harness.wait_for(
            lambda: any(e['event'] == 'ehlo' for e in plain.events()), 5))
        self.assertFalse({'mail', 'rcpt', 'data'}
                         & {e['event'] for e in plain.events()},
                         plain.events())
        self.assertEqual(plain.messages(), [])
        self.wait_queue_empty(relay)


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
