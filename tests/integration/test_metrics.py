"""The metrics endpoint (metrics_listen): Prometheus text at /metrics.

A relay with metrics_listen on a free 127.0.0.1 port delivers through real
MX hosts (tests/peers/mx.py via mxpeer) found in a signed Knot zone:
one that takes the mail (sent), one that refuses a recipient with 550
(bounced), one without STARTTLS under `encrypt` (deferred, and a TLS
failure starttls-not-supported).  The endpoint is scraped with curl and
read with Python's prometheus text parser (python3-prometheus-client):
every name of the contract is there with its TYPE and HELP, and the
counts move as the log lines say; a SIGHUP keeps the counters; /other is
404, POST 405, a request head over 4 KiB is refused with 431 and a client
that sends nothing is cut off, while the endpoint keeps serving.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_delivery import DeliveryBase, require_peers  # noqa: E402

CURL = shutil.which('curl') or '/usr/bin/curl'

# The contract's names and their types (INTERFACE.md, "Metrics").
CONTRACT = {
    'tlsrelay_queue_messages': 'gauge',
    'tlsrelay_queue_oldest_seconds': 'gauge',
    'tlsrelay_deliveries_total': 'counter',
    'tlsrelay_tls_failures_total': 'counter',
    'tlsrelay_smtpd_connections': 'gauge',
    'tlsrelay_queue_map_used_bytes': 'gauge',
    'tlsrelay_queue_map_size_bytes': 'gauge',
}
TLS_WORDS = ['none', 'anonymous', 'untrusted', 'trusted', 'verified', 'dane',
             'mta_sts']


def parse(text):
    """{sample name: {frozenset(labels): value}} and {family: type}, by the
    prometheus_client parser (it names a counter's family without _total)."""
    from prometheus_client.parser import text_string_to_metric_families
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = \
                s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get(name, {}).get(frozenset(labels.items()))


class Metrics(DeliveryBase):
    RECORDS = [
        ('ok.test.', 'MX', '10 mx1.ok.test.'),
        ('mx1.ok.test.', 'A', '127.0.0.51'),
        ('bounce.test.', 'MX', '10 mx1.bounce.test.'),
        ('mx1.bounce.test.', 'A', '127.0.0.52'),
        ('defer.test.', 'MX', '10 mx1.defer.test.'),
        ('mx1.defer.test.', 'A', '127.0.0.53'),
    ]
    HOSTS = ['127.0.0.51', '127.0.0.52', '127.0.0.53']

    def setUp(self):
        self.mport = harness.free_port()
        self.url = 'http://127.0.0.1:%d' % self.mport
        # encrypt everywhere: the self-signed MX hosts are "untrusted", the
        # one without STARTTLS defers.
        self.r = self.relay(default_tls_level='encrypt',
                            metrics_listen='127.0.0.1:%d' % self.mport)
        self.assertTrue(harness.wait_for(
            lambda: harness.port_open(self.mport), 5),
            'nothing listens on metrics_listen; log:\n' + self.r.log_text())

    # -- scraping ------------------------------------------------------------

    def curl(self, *args, path='/metrics'):
        """curl's output undecoded as to line ends (CRLF stays CRLF)."""
        r = subprocess.run([CURL, '-sS', '--max-time', '10'] + list(args)
                           + [self.url + path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        r.stdout = r.stdout.decode('utf-8')
        r.stderr = r.stderr.decode('utf-8', 'replace')
        harness.check_sanitizer(r.stderr, 'curl')
        return r

    def scrape(self):
        """(samples, types, text) of one curl scrape, which must be a 200."""
        r = self.curl('-f', '-D', '-')
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition('\r\n\r\n')
        self.assertRegex(head, r'^HTTP/1\.1 200 ')
        self.assertRegex(head, r'(?im)^content-type: text/plain; '
                         r'version=0\.0\.4')
        samples, types = parse(body)
        return samples, types, body

    def wait_value(self, pred, what, timeout=15.0):
        """Scrape until pred(samples) holds (the queue read is cached 1 s)."""
        last = [None]

        def ok():
            last[0] = self.scrape()
            return pred(last[0][0])
        if not harness.wait_for(ok, timeout, 0.3):
            self.fail('%s: not seen within %.0f s; last scrape:\n%s\nlog:\n%s'
                      % (what, timeout, last[0][2],
                         self.r.log_text()[-3000:]))
        return last[0][0]

    def http_raw(self, data, timeout=10.0):
        """Send data on a fresh connection; everything the server answers."""
        with socket.create_connection(('127.0.0.1', self.mport), 5) as s:
            s.settimeout(timeout)
            s.sendall(data)
            out = b''
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out

    # -- tests ---------------------------------------------------------------

    def test_names_types_and_help(self):
        samples, types, text = self.scrape()
        for name, typ in CONTRACT.items():
            fam = name[:-len('_total')] if typ == 'counter' else name
            self.assertEqual(types.get(fam), typ, '%s in\n%s' % (name, text))
            self.assertIn(name, samples, text)
            self.assertRegex(text, r'(?m)^# HELP %s \S' % name)
            self.assertRegex(text, r'(?m)^# TYPE %s %s$' % (name, typ))
        for state in ('incoming', 'active', 'deferred', 'hold'):
            self.assertEqual(value(samples, 'tlsrelay_queue_messages',
                                   state=state), 0, text)
        for status in ('sent', 'deferred', 'bounced'):
            for tls in TLS_WORDS:
                self.assertEqual(value(samples, 'tlsrelay_deliveries_total',
                                       status=status, tls=tls), 0, text)
        self.assertNotIn('mta-sts', text)
        self.assertEqual(value(samples, 'tlsrelay_tls_failures_total',
                               reason='starttls-not-supported'), 0, text)
        self.assertEqual(value(samples, 'tlsrelay_queue_oldest_seconds'), 0)
        self.assertEqual(value(samples, 'tlsrelay_queue_map_size_bytes'),
                         4294967296)
        used = value(samples, 'tlsrelay_queue_map_used_bytes')
        self.assertTrue(0 < used < 4294967296, used)

    def test_counts_move_with_mail_and_survive_sighup(self):
        ok = self.mx('127.0.0.51', 'mx1.ok.test')
        self.mx('127.0.0.52', 'mx1.bounce.test',
                rcpt_reply={'bad@bounce.test': '550 5.1.1 No such user'})
        self.mx('127.0.0.53', 'mx1.defer.test', no_starttls=True)

        # sent: the tls= word of the delivery line is the label (mta-sts
        # would be mta_sts).
        qid, mid = self.send(self.r, 'alice@ok.test', ['bob@ok.test'])
        self.messages_with(ok, mid)
        m = self.wait_log(self.r, r'%s: to=<bob@ok\.test>, .*, tls=([a-z-]+), '
                          r'.*status=sent' % qid)
        sent_tls = m.group(1).replace('-', '_')
        self.assertIn(sent_tls, TLS_WORDS)
        self.wait_value(lambda s: value(s, 'tlsrelay_deliveries_total',
                                        status='sent', tls=sent_tls) >= 1,
                        'sent counted')

        # bounced: the 550 (the DSN goes to alice@ok.test, and is sent).
        qid, _ = self.send(self.r, 'alice@ok.test', ['bad@bounce.test'])
        self.wait_log(self.r, r'%s: to=<bad@bounce\.test>, .*status=bounced'
                      % qid)
        self.wait_value(lambda s: sum(
            value(s, 'tlsrelay_deliveries_total', status='bounced', tls=t)
            for t in TLS_WORDS) >= 1, 'bounce counted')

        # deferred: no STARTTLS under encrypt; a TLS failure of its kind,
        # and the message waits in the queue.
        qid, _ = self.send(self.r, 'alice@ok.test', ['carol@defer.test'])
        self.wait_deferred(self.r, qid)
        s = self.wait_value(lambda s: (
            sum(value(s, 'tlsrelay_deliveries_total', status='deferred',
                      tls=t) for t in TLS_WORDS) >= 1 and
            value(s, 'tlsrelay_tls_failures_total',
                  reason='starttls-not-supported') >= 1 and
            value(s, 'tlsrelay_queue_messages', state='deferred') +
            value(s, 'tlsrelay_queue_messages', state='active') >= 1),
            'deferral counted, queue gauge')
        self.assertGreaterEqual(value(s, 'tlsrelay_queue_oldest_seconds'), 0)

        # hold: the queue gauge follows `queue hold`.
        r = self.r.cli('queue', 'hold', qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_value(lambda s: value(s, 'tlsrelay_queue_messages',
                                        state='hold') == 1 and
                        value(s, 'tlsrelay_queue_messages',
                              state='deferred') == 0, 'held message')
        time.sleep(1.2)  # let the age grow past the 1 s cache
        s, _, _ = self.scrape()
        self.assertGreaterEqual(value(s, 'tlsrelay_queue_oldest_seconds'), 1)

        # SIGHUP reloads the configuration and keeps every counter.
        before, _, _ = self.scrape()
        self.r.proc.send_signal(signal.SIGHUP)
        self.wait_log(self.r, r'reloaded configuration from ')
        after, _, text = self.scrape()
        for name in ('tlsrelay_deliveries_total', 'tlsrelay_tls_failures_total'):
            for labels, v in before[name].items():
                self.assertGreaterEqual(after[name][labels], v,
                                        '%s %s after SIGHUP:\n%s'
                                        % (name, dict(labels), text))
        self.assertGreaterEqual(value(after, 'tlsrelay_deliveries_total',
                                      status='sent', tls=sent_tls), 1)

    def test_smtpd_connections(self):
        with self.r.raw() as c:
            c.expect(220)
            self.wait_value(lambda s: value(s, 'tlsrelay_smtpd_connections')
                            >= 1, 'an open inbound session')
        self.wait_value(lambda s: value(s, 'tlsrelay_smtpd_connections') == 0,
                        'the session gone')

    def test_http_answers(self):
        r = self.curl('-o', '/dev/null', '-w', '%{http_code}', path='/other')
        self.assertEqual(r.stdout, '404', r.stderr)
        r = self.curl('-o', '/dev/null', '-w', '%{http_code}', path='/')
        self.assertEqual(r.stdout, '404', r.stderr)
        r = self.curl('-X', 'POST', '-d', 'x', '-o', '/dev/null', '-w',
                      '%{http_code}')
        self.assertEqual(r.stdout, '405', r.stderr)
        out = self.http_raw(b'GET /metrics HTTP/1.1\r\n\r\n')
        self.assertTrue(out.startswith(b'HTTP/1.1 400 '), out[:200])
        # One request per connection: the server closes after its answer.
        out = self.http_raw(b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
                            b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(out.count(b'HTTP/1.1 200 '), 1, out[:300])
        self.assertIn(b'\r\nConnection: close\r\n', out)

    def test_oversized_request_refused_and_serving_goes_on(self):
        big = (b'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ' + b'a' * 8192
               + b'\r\n\r\n')
        out = self.http_raw(big)
        self.assertTrue(out.startswith(b'HTTP/1.1 431 '), out[:200])
        # A header that never ends is refused at the bound as well.
        with socket.create_connection(('127.0.0.1', self.mport), 5) as s:
            s.settimeout(10)
            s.sendall(b'GET /metrics HTTP/1.1\r\nX: ' + b'b' * 5000)
            self.assertTrue(s.recv(100).startswith(b'HTTP/1.1 431 '))
        self.scrape()
        self.assertTrue(self.r.alive())

    def test_silent_client_is_cut_off(self):
        with socket.create_connection(('127.0.0.1', self.mport), 5) as s:
            s.settimeout(15)
            s.sendall(b'GET /metrics HTTP/1.1\r\n')
            t0 = time.monotonic()
            # Meanwhile others are served.
            self.scrape()
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b''
            took = time.monotonic() - t0
        self.assertEqual(got, b'')
        self.assertLess(took, 8.0)
        self.assertGreater(took, 3.0)


if __name__ == '__main__':
    require_peers()
    if not shutil.which(CURL):
        sys.stderr.write('curl not installed; skipping\n')
        sys.exit(77)
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError:
        sys.stderr.write('python3-prometheus-client not installed; skipping\n')
        sys.exit(77)
    unittest.main(verbosity=2)
