"""TLS-RPT (RFC 8460) end to end: counting, `tlsrpt show`, `tlsrpt send`.

Peers: a Knot DNS zone `test.` with the destinations, their
`_smtp._tls` TXT records and the MX of the report mailbox; aiosmtpd MX
hosts (mxpeer.py) on their own 127.0.0.x addresses; a Python HTTPS server
for an https: rua, with a certificate of a CA the relay trusts
(tls_ca_file).  The relay resolves through the zone only (dns_servers is
an unused port plus the zone's unbound configuration).

    Counting   rpt.test has two MX hosts: the first offers no STARTTLS
               (default_tls_level encrypt: a failed session,
               starttls-not-supported), the second takes the mail (a
               successful one).  `tlsrpt show --day TODAY` prints the
               report, checked field by field against RFC 8460 section 4;
               `tlsrpt send` queues it to the mailto: rua, whose MX gets a
               multipart/report whose gzip attachment decodes to the same
               JSON; the session that carried the report is not counted;
               a second send sends nothing.
    Https      web.test asks for https: reports; the POST body decompresses
               to the report of `tlsrpt show`.
    Daily      serve with tlsrpt = yes sends yesterday's reports at start:
               counts of yesterday and the day before are written into the
               queue first (tlsrpt_seed, the queue API); the rua MX gets
               one report mail, for yesterday only, with the headers and
               gzip JSON of RFC 8460, and the log line once; after a
               restart only a domain counted meanwhile gets its report.
"""

import base64
import datetime
import email
import email.policy
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402
from test_https import HttpsServer  # noqa: E402

RESULT_TYPES = {
    'starttls-not-supported', 'certificate-host-mismatch',
    'certificate-expired', 'certificate-not-trusted', 'validation-failure',
    'tlsa-invalid', 'dnssec-invalid', 'dane-required',
    'sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid'}
WAIT = 20.0


def today():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')


class TlsRpt(DeliveryBase):
    RECORDS = [
        ('rpt.test.', 'MX', '10 mx1.rpt.test.'),
        ('rpt.test.', 'MX', '20 mx2.rpt.test.'),
        ('mx1.rpt.test.', 'A', '127.0.0.90'),
        ('mx2.rpt.test.', 'A', '127.0.0.91'),
        ('_smtp._tls.rpt.test.', 'TXT',
         '"v=TLSRPTv1; rua=mailto:tlsrpt@rua.test"'),
        ('rua.test.', 'MX', '10 mx.rua.test.'),
        ('mx.rua.test.', 'A', '127.0.0.92'),
        ('web.test.', 'MX', '10 mx.web.test.'),
        ('mx.web.test.', 'A', '127.0.0.93'),
        ('reports.web.test.', 'A', '127.0.0.94'),
        ('_smtp._tls.daily.test.', 'TXT',
         '"v=TLSRPTv1; rua=mailto:tlsrpt@rua.test"'),
        ('_smtp._tls.late.test.', 'TXT',
         '"v=TLSRPTv1; rua=mailto:tlsrpt@rua.test"'),
    ]
    HOSTS = ['127.0.0.90', '127.0.0.91', '127.0.0.92', '127.0.0.93']

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.webcert = certs.make_cert(cls.certdir, 'reports.web.test')
        cls.ca = certs.default_ca(cls.certdir)

    def show(self, relay, domain):
        r = relay.cli('tlsrpt', 'show', '--day', today(), domain)
        return r

    def wait_report(self, relay, domain, ok, fail):
        """The report of show once its counts reached ok/fail (flushed)."""
        def got():
            r = self.show(relay, domain)
            if r.returncode != 0:
                return None
            rep = json.loads(r.stdout)
            s = rep['policies'][0]['summary'] if rep['policies'] else {}
            tot_ok = sum(p['summary']['total-successful-session-count']
                         for p in rep['policies'])
            tot_fail = sum(p['summary']['total-failure-session-count']
                           for p in rep['policies'])
            return rep if (tot_ok, tot_fail) == (ok, fail) and s else None
        rep = harness.wait_for(got, WAIT, 0.3)
        if not rep:
            self.fail('no report with %d/%d sessions for %s: %s\nlog:\n%s'
                      % (ok, fail, domain, self.show(relay, domain).stdout,
                         relay.log_text()[-3000:]))
        return rep

    def check_structure(self, rep, domain):
        """RFC 8460 section 4, field by field."""
        self.assertEqual(set(rep), {'organization-name', 'date-range',
                                    'contact-info', 'report-id', 'policies'})
        self.assertEqual(rep['organization-name'], harness.HOSTNAME)
        self.assertEqual(rep['contact-info'], 'postmaster@' + harness.HOSTNAME)
        self.assertEqual(rep['date-range'],
                         {'start-datetime': today() + 'T00:00:00Z',
                          'end-datetime': today() + 'T23:59:59Z'})
        self.assertTrue(rep['report-id'])
        for p in rep['policies']:
            self.assertLessEqual(set(p), {'policy', 'summary', 'failure-details'})
            pol = p['policy']
            self.assertIn(pol['policy-type'], ('sts', 'tlsa', 'no-policy-found'))
            self.assertEqual(pol['policy-domain'], domain)
            self.assertIsInstance(pol['mx-host'], list)
            if 'policy-string' in pol:
                self.assertIsInstance(pol['policy-string'], list)
            self.assertEqual(set(p['summary']),
                             {'total-successful-session-count',
                              'total-failure-session-count'})
            fails = 0
            for d in p.get('failure-details', []):
                self.assertIn(d['result-type'], RESULT_TYPES)
                self.assertIsInstance(d['failed-session-count'], int)
                fails += d['failed-session-count']
            self.assertEqual(fails, p['summary']['total-failure-session-count'])

    def test_count_show_send(self):
        mx1 = self.mx('127.0.0.90', 'mx1.rpt.test', no_starttls=True)
        mx2 = self.mx('127.0.0.91', 'mx2.rpt.test')
        rua = self.mx('127.0.0.92', 'mx.rua.test')
        relay = self.relay(default_tls_level='encrypt')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@rpt.test'])
        self.messages_with(mx2, mid)
        self.wait_gone(relay, qid)
        self.assertEqual(mx1.messages(), [])
        rep = self.wait_report(relay, 'rpt.test', 1, 1)
        self.check_structure(rep, 'rpt.test')
        self.assertEqual(len(rep['policies']), 1)
        p = rep['policies'][0]
        self.assertEqual(p['policy']['policy-type'], 'no-policy-found')
        self.assertEqual(sorted(p['policy']['mx-host']),
                         ['mx1.rpt.test', 'mx2.rpt.test'])
        self.assertEqual(p['failure-details'], [{
            'result-type': 'starttls-not-supported',
            'sending-mta-ip': '127.0.0.1',
            'receiving-mx-hostname': 'mx1.rpt.test',
            'receiving-ip': '127.0.0.90',
            'failed-session-count': 1}])
        shown = self.show(relay, 'rpt.test').stdout

        r = relay.cli('tlsrpt', 'send', '--day', today())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r'tlsrpt: report for rpt\.test \(%s\) sent to '
                         r'mailto:tlsrpt@rua\.test: 1 successful, 1 failed '
                         r'sessions' % today())
        got = harness.wait_for(lambda: rua.messages(), WAIT, 0.1)
        self.assertTrue(got, 'no report at the rua MX:\n%s' % relay.log_text()[-3000:])
        env, content = got[0]
        self.assertEqual(env['rcpt_tos'], ['tlsrpt@rua.test'])
        self.assertEqual(env['mail_from'], 'noreply-tlsrpt@' + harness.HOSTNAME)
        msg = email.message_from_bytes(content, policy=email.policy.default)
        self.assertEqual(msg['TLS-Report-Domain'], 'rpt.test')
        self.assertEqual(msg['TLS-Report-Submitter'], harness.HOSTNAME)
        self.assertRegex(msg['Subject'], r'^Report Domain: rpt\.test Submitter: %s '
                         r'Report-ID: <%s>$' % (re.escape(harness.HOSTNAME),
                                                re.escape(rep['report-id'])))
        self.assertEqual(msg.get_content_type(), 'multipart/report')
        self.assertEqual(msg.get_param('report-type'), 'tlsrpt')
        parts = [p for p in msg.walk() if p.get_content_type() == 'application/tlsrpt+gzip']
        self.assertEqual(len(parts), 1)
        fname = parts[0].get_filename()
        self.assertRegex(fname, r'^%s!rpt\.test!\d+!\d+!.+\.json\.gz$'
                         % re.escape(harness.HOSTNAME))
        data = gzip.decompress(parts[0].get_payload(decode=True))
        self.assertEqual(json.loads(data), json.loads(shown))
        # The report's own delivery is not counted (no report loops).
        self.wait_log(relay, r'to=<tlsrpt@rua\.test>.*status=sent')
        relay.stop()   # writes the last counts
        rua_rep = relay.cli('tlsrpt', 'show', '--day', today(), 'rua.test')
        self.assertNotEqual(rua_rep.returncode, 0, rua_rep.stdout)
        # Never twice.
        r = relay.cli('tlsrpt', 'send', '--day', today())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('sent to', r.stderr)
        self.assertEqual(len(rua.messages()), 1)

    def test_https_rua(self):
        web = HttpsServer('127.0.0.94', self.webcert)
        self.addCleanup(web.close)
        self.zone.set_records(self.RECORDS + [
            ('_smtp._tls.web.test.', 'TXT',
             '"v=TLSRPTv1; rua=https://reports.web.test:%d/report"' % web.port)])
        mx = self.mx('127.0.0.93', 'mx.web.test')
        relay = self.relay(default_tls_level='encrypt', tls_ca_file=self.ca.cert,
                           tlsrpt='yes')
        qid, mid = self.send(relay, 'alice@client.test', ['bob@web.test'])
        self.messages_with(mx, mid)
        self.wait_gone(relay, qid)
        rep = self.wait_report(relay, 'web.test', 1, 0)
        self.check_structure(rep, 'web.test')
        self.assertNotIn('failure-details', rep['policies'][0])
        r = relay.cli('tlsrpt', 'send', '--day', today())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r'tlsrpt: report for web\.test \(%s\) sent to '
                         r'https://reports\.web\.test:%d/report: 1 successful, 0 '
                         r'failed sessions' % (today(), web.port))
        posts = [q for q in web.requests if q['method'] == 'POST']
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]['type'], 'application/tlsrpt+gzip')
        self.assertEqual(json.loads(gzip.decompress(posts[0]['body'])), rep)

    # -- the daily run of serve ---------------------------------------------

    @staticmethod
    def utc_day(offset_days):
        t = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(days=offset_days)
        return t.strftime('%Y-%m-%d')

    def seed(self, relay, day, domain, ok, fail):
        """Write counts of day for domain into the relay's queue (relay
        stopped): ok successes and fail starttls-not-supported failures to
        mx.DOMAIN."""
        tool = os.environ.get('TLSRELAY_TLSRPT_SEED')
        self.assertTrue(tool and os.access(tool, os.X_OK),
                        'TLSRELAY_TLSRPT_SEED names no program (run through '
                        'meson test)')
        r = subprocess.run([tool, relay.queue_dir, day, domain, 'mx.' + domain,
                            str(ok), str(fail)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, encoding='utf-8',
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    @staticmethod
    def away_from_midnight():
        """The run waits until 00:02 UTC for yesterday's last counts, and
        the seeded day must still be yesterday when it runs: outside
        23:59-00:02:30 at once, else wait (bounded) until 00:02:30."""
        now = time.time()
        sec = now % 86400
        if sec < 150:
            time.sleep(150 - sec)
        elif sec > 86400 - 60:
            time.sleep(86400 - sec + 150)

    def report_mails(self, rua):
        return [email.message_from_bytes(c, policy=email.policy.default)
                for _, c in rua.messages()]

    def check_report_mail(self, msg, domain, day, ok, fail):
        """The RFC 8460 5.3 mail of domain's report of day; returns the
        decoded JSON."""
        rid = '%s_%s@%s' % (day, domain, harness.HOSTNAME)
        self.assertEqual(msg['TLS-Report-Domain'], domain)
        self.assertEqual(msg['TLS-Report-Submitter'], harness.HOSTNAME)
        self.assertEqual(msg['Subject'], 'Report Domain: %s Submitter: %s '
                         'Report-ID: <%s>' % (domain, harness.HOSTNAME, rid))
        self.assertEqual(msg['From'].addresses[0].addr_spec,
                         'noreply-tlsrpt@' + harness.HOSTNAME)
        self.assertEqual(msg.get_content_type(), 'multipart/report')
        self.assertEqual(msg.get_param('report-type'), 'tlsrpt')
        parts = [p for p in msg.walk()
                 if p.get_content_type() == 'application/tlsrpt+gzip']
        self.assertEqual(len(parts), 1)
        self.assertRegex(parts[0].get_filename(), r'^%s!%s!\d+!\d+!.+\.json\.gz$'
                         % (re.escape(harness.HOSTNAME), re.escape(domain)))
        rep = json.loads(gzip.decompress(parts[0].get_payload(decode=True)))
        self.assertEqual(rep['report-id'], rid)
        self.assertEqual(rep['date-range'],
                         {'start-datetime': day + 'T00:00:00Z',
                          'end-datetime': day + 'T23:59:59Z'})
        self.assertEqual(len(rep['policies']), 1, rep)
        p = rep['policies'][0]
        self.assertEqual(p['policy']['policy-type'], 'no-policy-found')
        self.assertEqual(p['policy']['policy-domain'], domain)
        self.assertEqual(p['summary'], {'total-successful-session-count': ok,
                                        'total-failure-session-count': fail})
        self.assertEqual(p['failure-details'], [{
            'result-type': 'starttls-not-supported',
            'sending-mta-ip': '127.0.0.1',
            'receiving-mx-hostname': 'mx.' + domain,
            'receiving-ip': '127.0.0.2',
            'failed-session-count': fail}])
        return rep

    def test_daily_run_sends_yesterday_at_start(self):
        rua = self.mx('127.0.0.92', 'mx.rua.test')
        relay = harness.Relay(self, start=False, **dict(
            self.zone.relay_keys(), remote_port=self.port, retry_min='1s',
            retry_max='2s', default_tls_level='encrypt', tlsrpt='yes'))
        self.away_from_midnight()
        yesterday, before = self.utc_day(-1), self.utc_day(-2)
        self.seed(relay, yesterday, 'daily.test', 3, 2)
        self.seed(relay, before, 'daily.test', 7, 7)   # not yesterday: never
        relay.start()
        line = (r'tlsrpt: report for %s \(%s\) sent to mailto:tlsrpt@rua\.test: '
                r'%d successful, %d failed sessions')
        daily_rx = re.compile(line % ('daily\\.test', yesterday, 3, 2))
        got = harness.wait_for(lambda: rua.messages(), WAIT, 0.1)
        self.assertTrue(got, 'no report mail at the rua MX; log:\n%s'
                        % relay.log_text()[-3000:])
        env, _ = got[0]
        self.assertEqual(env['rcpt_tos'], ['tlsrpt@rua.test'])
        self.assertEqual(env['mail_from'], 'noreply-tlsrpt@' + harness.HOSTNAME)
        rep = self.check_report_mail(self.report_mails(rua)[0], 'daily.test',
                                     yesterday, 3, 2)
        self.wait_log(relay, r'to=<tlsrpt@rua\.test>.*status=sent')
        self.assertEqual(len(daily_rx.findall(relay.log_text())), 1,
                         relay.log_text()[-3000:])
        shown = relay.cli('tlsrpt', 'show', '--day', yesterday, 'daily.test')
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertEqual(json.loads(shown.stdout), rep)

        # A restart: the day's run comes again; daily.test's report went
        # (marked in the queue), late.test's is new and goes.
        relay.stop()
        self.seed(relay, yesterday, 'late.test', 1, 1)
        since = len(relay.log_text())
        relay.start()
        late_rx = re.compile(line % ('late\\.test', yesterday, 1, 1))
        if not harness.wait_for(lambda: len(rua.messages()) >= 2, WAIT, 0.1):
            self.fail('no report for late.test after the restart; log:\n%s'
                      % relay.log_text()[since:][-3000:])
        sent_rx = re.compile(r'to=<tlsrpt@rua\.test>.*status=sent')
        if not harness.wait_for(
                lambda: sent_rx.search(relay.log_text()[since:]), WAIT, 0.1):
            self.fail('the report mail was not logged as sent; log:\n%s'
                      % relay.log_text()[since:][-3000:])
        mails = self.report_mails(rua)
        self.assertEqual(len(mails), 2, [m['Subject'] for m in mails])
        self.check_report_mail(mails[1], 'late.test', yesterday, 1, 1)
        log = relay.log_text()
        self.assertEqual(len(daily_rx.findall(log)), 1, log[-3000:])
        self.assertEqual(len(late_rx.findall(log)), 1, log[-3000:])
        self.assertNotIn('(%s)' % before, log)


if __name__ == '__main__':
    require_peers()
    unittest.main(verbosity=2)
