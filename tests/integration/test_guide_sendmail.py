"""README "Applications using sendmail", end to end: the README's link
command (into a temporary directory instead of /usr/sbin), its Python
function run as written with TLSRELAY_CONFIG in the environment, and its PHP
sendmail_path command line; the messages reach an aiosmtpd MX through a
running relay, and bad addresses exit 64/65 with nothing queued.
test_sendmail covers the sendmail options themselves."""

import os
import shlex
import subprocess
import sys
import tempfile
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guides  # noqa: E402
import harness  # noqa: E402
from test_delivery import DeliveryBase, new_msg_id, require_peers  # noqa: E402

require_peers()

EX_USAGE, EX_DATAERR = 64, 65


class SendmailGuide(DeliveryBase):

    RECORDS = [('app.test.', 'MX', '10 mx1.app.test.'),
               ('mx1.app.test.', 'A', '127.0.0.63')]
    HOSTS = ['127.0.0.63']

    def setUp(self):
        self.sbin = tempfile.mkdtemp(prefix='tlsrelay-sbin-')
        self.addCleanup(shutil.rmtree, self.sbin, True)
        self.link = os.path.join(self.sbin, 'sendmail')
        # The README's command, run by the shell, into our directory; the
        # tlsrelay it finds is the one under test.
        cmd = guides.block('sendmail-link').strip()
        self.assertEqual(cmd, 'ln -s "$(command -v tlsrelay)" /usr/sbin/sendmail')
        env = harness.base_env(
            PATH=os.path.dirname(harness.BIN) + os.pathsep
            + os.environ.get('PATH', '/usr/bin:/bin'))
        subprocess.run(['bash', '-ec', cmd.replace('/usr/sbin/', self.sbin + '/')],
                       env=env, check=True, timeout=10)
        self.assertEqual(os.path.realpath(self.link),
                         os.path.realpath(harness.BIN))

    def app_env(self, relay):
        """The application's environment: TLSRELAY_CONFIG names the file."""
        return harness.base_env(TLSRELAY_CONFIG=relay.conf)

    def python_send_mail(self, relay):
        """The README's function, as written, with our link for
        /usr/sbin/sendmail and the application's environment."""
        src = guides.block('sendmail-python')
        self.assertIn("SENDMAIL = '/usr/sbin/sendmail'\n", src)
        ns = {}
        exec(compile(src, 'README.md:sendmail-python', 'exec'), ns)
        ns['SENDMAIL'] = self.link
        real_run = ns['subprocess'].run

        def run_with_env(*a, **kw):
            kw.setdefault('env', self.app_env(relay))
            kw.setdefault('timeout', harness.CLI_TIMEOUT)
            kw.setdefault('stderr', subprocess.PIPE)
            try:
                p = real_run(*a, **kw)
            except subprocess.CalledProcessError as e:
                harness.check_sanitizer(e.stderr.decode(errors='replace'), 'sendmail')
                raise
            harness.check_sanitizer(p.stderr.decode(errors='replace'), 'sendmail')
            self.assertEqual(p.stderr, b'')
            return p

        # The application's process environment, without touching ours.
        ns['subprocess'] = type('subprocess', (), {'run': staticmethod(run_with_env)})
        return ns['send_mail']

    def message(self, to, msg_id):
        return ('From: Shop <shop@app.test>\nTo: %s\nSubject: order 42\n'
                'Message-ID: %s\n\nThank you.\n.\nBye.\n' % (to, msg_id)).encode()

    def test_python_function_from_readme(self):
        mx = self.mx('127.0.0.63', 'mx1.app.test')
        relay = self.relay()
        send_mail = self.python_send_mail(relay)
        msg_id = new_msg_id('py')
        send_mail(self.message('Bob <bob@app.test>', msg_id), 'bounce@app.test')
        env, content = self.messages_with(mx, msg_id)[0]
        self.assertEqual(env['mail_from'], 'bounce@app.test')
        self.assertEqual(env['rcpt_tos'], ['bob@app.test'])
        # -i: the lone "." is text (dot-stuffed on the wire, restored).
        self.assertTrue(content.endswith(b'\r\n\r\nThank you.\r\n.\r\nBye.\r\n'),
                        content)
        self.wait_queue_empty(relay)
        # A bad address in the headers with -t: exit 65, nothing queued.
        with self.assertRaises(subprocess.CalledProcessError) as cm:
            send_mail(self.message('"bob\r\n RCPT TO:<x@app.test>"@app.test',
                                   new_msg_id('bad')), 'bounce@app.test')
        self.assertEqual(cm.exception.returncode, EX_DATAERR)
        # A bad -f (the envelope sender): exit 64, nothing queued.
        with self.assertRaises(subprocess.CalledProcessError) as cm:
            send_mail(self.message('bob@app.test', new_msg_id('bad')),
                      'bounce@app.test>\r\nRCPT TO:<x@app.test')
        self.assertEqual(cm.exception.returncode, EX_USAGE)
        self.assertEqual(relay.mailq_json(), [])
        self.assertEqual(len(mx.messages()), 1)

    def test_php_sendmail_path(self):
        mx = self.mx('127.0.0.63', 'mx1.app.test')
        relay = self.relay()
        line = guides.block('sendmail-php.ini').strip()
        self.assertTrue(line.startswith('sendmail_path = "') and line.endswith('"'), line)
        # PHP runs the command line with /bin/sh and the message on stdin.
        cmd = line.split('"', 2)[1].replace('/usr/sbin/sendmail', shlex.quote(self.link))
        self.assertIn(' -t -i -f bounce@example.com', cmd)
        msg_id = new_msg_id('php')
        p = subprocess.run(['/bin/sh', '-c', cmd], env=self.app_env(relay),
                           input=self.message('carol@app.test', msg_id),
                           capture_output=True, timeout=harness.CLI_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b'')
        env, _ = self.messages_with(mx, msg_id)[0]
        self.assertEqual(env['mail_from'], 'bounce@example.com')
        self.assertEqual(env['rcpt_tos'], ['carol@app.test'])
        self.wait_queue_empty(relay)


if __name__ == '__main__':
    unittest.main()
