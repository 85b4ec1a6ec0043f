"""README "Postfix as upstream", end to end: a real Postfix (Debian's
postfix, an instance of its own in a temporary directory: its own main.cf,
master.cf, queue and data directories, log file, listening on loopback only)
gets the README's main.cf lines, is reloaded as the README says, and hands
its outbound mail to tlsrelay, which delivers it to an aiosmtpd MX found in
a Knot DNS zone, under a policy entry (encrypt).

The instance is postfixpeer's (shared with test_postfix_upstream): its
master must run as root (as another user this test skips, and under
CI=true it fails); it never touches /etc/postfix or the system queue and is
stopped in cleanup.
"""

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guides  # noqa: E402
from postfixpeer import PostfixInstance, require as require_postfix  # noqa: E402
from test_delivery import (DeliveryBase, msg_id_of, new_msg_id,  # noqa: E402
                           require_peers)

require_peers()
require_postfix()


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
        pf.add_main_cf(lines.replace(':2525', ':%d' % relay.port))
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
