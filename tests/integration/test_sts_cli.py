"""MTA-STS in the command-line tools, against a DNSSEC-signed Knot DNS zone
and a real HTTPS server for the policy:

- `policy show DOMAIN` prints the cached policy (read-only, as mailq reads
  the queue), the `_mta-sts` record, a fresh fetch (never stored) or its
  failure with the RFC 8460 result type, the policy in force, and per MX
  host the rule that won (`  rule: MTA-STS enforce (level verify: ...)`);
  a policy file entry wins without any fetch; mta_sts = no says so;
- `certs probe --domain D HOST:PORT` applies D's policy before the
  handshake, as the relay does: Verified (mta-sts: ...) for a certificate
  valid for HOST, the relay's MTA-STS reason for one that is not.

The policy server is Python's http.server over ssl on 127.0.0.90:443 (the
port RFC 8461 fixes), with a certificate for mta-sts.sts.test from the
test CA, which is also the relay's tls_ca_file.  It records every request
(the tests check that a show with an entry asks nothing).  The MX is
tests/peers/mx.py on 127.0.0.91.  Names outside the zone go to a port
nobody answers on: nothing leaves the machine.
"""

import os
import re
import shutil
import ssl
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
import mxpeer  # noqa: E402
from harness import BIN, base_env, run  # noqa: E402

harness.require_binary()
dnszone.require_knot()
if shutil.which(certs.CERTTOOL) is None:
    sys.stderr.write('certtool (gnutls-bin) not found; skipping\n')
    sys.exit(77)
if not mxpeer.aiosmtpd_available():
    sys.stderr.write('python3-aiosmtpd not found; skipping\n')
    sys.exit(77)

DOMAIN = 'sts.test'
WEB = '127.0.0.90'      # mta-sts.sts.test
MX1 = '127.0.0.91'      # mx1.sts.test: listed in the policy
MX2 = '127.0.0.92'      # mx2.sts.test: not listed
ID1 = '20260101T1'
ID2 = '20260102T2'
PATH = '/.well-known/mta-sts.txt'
URL = 'https://mta-sts.%s%s' % (DOMAIN, PATH)
ENFORCE = ('version: STSv1\r\nmode: enforce\r\nmx: mx1.sts.test\r\n'
           'mx: *.pool.sts.test\r\nmax_age: 86400\r\n')
TESTING = ('version: STSv1\nmode: testing\nmx: mx1.sts.test\n'
           'max_age: 3600\n')
PATTERNS = 'mx: mx1.sts.test, *.pool.sts.test'
TIME = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC'
SHOW_TIMEOUT = 120  # TXT, address and fetch, each bounded at 30 s


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 10

    def log_message(self, *args):
        pass

    def do_GET(self):
        web = self.server.web
        with web.lock:
            web.requests.append((self.path, self.headers.get('Host')))
        body = web.policy.encode() if self.path == PATH else b'not here\n'
        self.send_response(200 if self.path == PATH else 404)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PolicyServer:
    """HTTPS on WEB:443 serving one policy; close() stops it."""

    def __init__(self, cert, policy):
        self.policy = policy
        self.requests = []
        self.lock = threading.Lock()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        self.httpd = Server((WEB, 443), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.httpd.web = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        if self.httpd is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
        self.httpd = None


def records(sts_id=ID1):
    return [
        (DOMAIN + '.', 'MX', '10 mx1.sts.test.'),
        (DOMAIN + '.', 'MX', '20 mx2.sts.test.'),
        ('mx1.sts.test.', 'A', MX1),
        ('mx2.sts.test.', 'A', MX2),
        ('mta-sts.sts.test.', 'A', WEB),
        ('_mta-sts.sts.test.', 'TXT', '"v=STSv1; id=%s"' % sts_id),
    ]


class StsCli(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-stscli-')
        cls.ca = certs.make_ca(cls.dir)
        cls.web_cert = certs.make_cert(cls.dir, 'mta-sts.sts.test', ca=cls.ca)
        cls.mx_cert = certs.make_cert(cls.dir, 'mx1.sts.test', ca=cls.ca)
        cls.other_cert = certs.make_cert(cls.dir, 'other.test', ca=cls.ca)
        cls.zone = dnszone.DnsZone(records())

    @classmethod
    def tearDownClass(cls):
        cls.zone.close()
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='tlsrelay-stscli-t-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.policy = os.path.join(self.tmp, 'tls_policy')
        self.conf = os.path.join(self.tmp, 'tlsrelay.conf')
        self.queue = os.path.join(self.tmp, 'queue')
        self.web = self.start_web(ENFORCE)

    def start_web(self, policy):
        web = PolicyServer(self.web_cert, policy)
        self.addCleanup(web.close)
        return web

    def settings(self, **keys):
        s = dict(self.zone.relay_keys(),
                 myhostname='relay.test',
                 queue_dir=self.queue,
                 policy_file=self.policy,
                 tls_ca_file=self.ca.cert,
                 default_tls_level='encrypt',
                 remote_port=25,
                 dns_servers='127.0.0.1@%d' % harness.unused_udp_port())
        s.update(keys)
        return s

    def configure(self, policy='', **keys):
        with open(self.policy, 'w') as f:
            f.write(policy)
        harness.write_config(self.conf, self.settings(**keys))

    def show(self):
        r = run([BIN, 'policy', 'show', '-c', self.conf, DOMAIN],
                env=base_env(), timeout=SHOW_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        return r.stdout.splitlines()

    def sts_lines(self, out):
        return [l for l in out if l.startswith('MTA-STS')]

    def host_lines(self, out, host):
        """The lines of one MX host: its "mx:" line and the indented ones."""
        for i, line in enumerate(out):
            if line.startswith('mx: %s ' % host):
                rest = [l for l in out[i + 1:] if l.startswith('  ')]
                n = 0
                while n < len(rest) and out[i + 1 + n] == rest[n]:
                    n += 1
                return [line] + rest[:n]
        self.fail('no mx: line for %s in:\n%s' % (host, '\n'.join(out)))

    # -- policy show -------------------------------------------------------

    def test_show_enforce(self):
        """A fresh fetch (nothing cached: no queue yet), its patterns, and
        per MX host the rule that won: enforce where the host is listed,
        the relay's deferral where it is not."""
        self.configure()
        out = self.show()
        self.assertEqual(self.sts_lines(out), [
            'MTA-STS cache: none cached (no queue at %s yet)' % self.queue,
            'MTA-STS record: id %s (_mta-sts.sts.test)' % ID1,
            'MTA-STS fetch: id %s, mode enforce, max_age 86400, %s (%s)'
            % (ID1, PATTERNS, URL),
            'MTA-STS: in force: enforce (the fetched policy, id %s)' % ID1,
        ])
        # The MTA-STS lines come once, before the MX hosts.
        self.assertLess(out.index(self.sts_lines(out)[-1]),
                        [i for i, l in enumerate(out) if l.startswith('mx:')][0])
        self.assertEqual(self.host_lines(out, 'mx1.sts.test'), [
            'mx: mx1.sts.test (pref 10): MX secure, addresses secure (%s), '
            'TLSA: none (secure denial at _25._tcp.mx1.sts.test)' % MX1,
            '  level: encrypt (default_tls_level, config %s; no usable TLSA '
            'records)' % self.conf,
            '  rule: MTA-STS enforce (level verify: mx1.sts.test matches the '
            'policy of sts.test, id %s; the certificate must chain to %s and '
            'be valid for mx1.sts.test)' % (ID1, self.ca.cert),
        ])
        self.assertEqual(self.host_lines(out, 'mx2.sts.test')[2],
                         '  rule: MTA-STS enforce: mail deferred: MTA-STS '
                         'policy of sts.test (enforce): MX host mx2.sts.test '
                         'does not match')
        self.assertEqual(self.web.requests, [(PATH, 'mta-sts.sts.test')])
        # A show stores nothing: not even a queue to store in was made.
        self.assertFalse(os.path.exists(self.queue))

    def test_show_entry_wins(self):
        """The policy file's entry wins: no MTA-STS lookup at all."""
        self.configure('sts.test encrypt\n')
        out = self.show()
        self.assertEqual(self.sts_lines(out), [
            'MTA-STS: not looked up (the policy entry sts.test wins, policy '
            'file %s:1)' % self.policy])
        self.assertEqual(self.host_lines(out, 'mx1.sts.test')[1:], [
            '  level: encrypt (policy file %s:1; the entry wins over DANE)'
            % self.policy])
        self.assertEqual(self.web.requests, [])

    def test_show_mta_sts_no(self):
        self.configure(mta_sts='no')
        out = self.show()
        self.assertEqual(self.sts_lines(out),
                         ['MTA-STS: not used (mta_sts = no)'])
        self.assertEqual(self.host_lines(out, 'mx1.sts.test')[1:], [
            '  level: encrypt (default_tls_level, config %s; no usable TLSA '
            'records)' % self.conf])
        self.assertEqual(self.web.requests, [])

    def deliver_once(self):
        """Let the relay deliver one message to sts.test, which makes it
        fetch the policy and cache it; then stop it."""
        mx = mxpeer.MX(self).start(MX1, 0, tls_cert=self.mx_cert.cert,
                                   tls_key=self.mx_cert.key,
                                   hostname='mx1.sts.test')
        with open(self.policy, 'w') as f:
            f.write('')
        relay = harness.Relay(self, **self.settings(remote_port=mx.port))
        code, reply, _ = harness.smtp_send(relay, 'a@relay.test',
                                           ['b@sts.test'],
                                           harness.make_message())
        self.assertEqual(code, 250, reply)
        env, _ = mx.wait_messages(1, timeout=60)[0]
        self.assertTrue(env['tls'])
        self.assertTrue(relay.wait_log(
            r'mta-sts: sts\.test: policy id %s fetched \(mode enforce, '
            r'max_age 86400\)' % ID1, 10), relay.log_text())
        self.assertTrue(relay.wait_log(r'status=sent', 30), relay.log_text())
        relay.stop()
        harness.write_config(self.conf, relay.keys)
        return relay

    def test_show_cached_server_down(self):
        """What the relay cached is shown; the fresh fetch fails (server
        down) with its RFC 8460 result type, and the cached policy stays
        in force (its id is the record's).  Later a new id and a testing
        policy are fetched and shown, but the cache keeps the old one."""
        self.deliver_once()
        self.assertEqual(len(self.web.requests), 1)
        self.web.close()
        out = self.show()
        sts = self.sts_lines(out)
        self.assertEqual(len(sts), 4, out)
        cached = sts[0]
        self.assertRegex(cached, r'^MTA-STS cache: id %s, fetched %s, expires '
                         r'%s, mode enforce, max_age 86400, %s$'
                         % (ID1, TIME, TIME, re.escape(PATTERNS)))
        self.assertEqual(sts[1], 'MTA-STS record: id %s (_mta-sts.sts.test)'
                         % ID1)
        self.assertRegex(sts[2], r'^MTA-STS fetch: failed '
                         r'\(sts-policy-fetch-error\): .+')
        self.assertEqual(sts[3:], [
            'MTA-STS: in force: enforce (the cached policy, id %s: the '
            "record's id)" % ID1])
        self.assertEqual(self.host_lines(out, 'mx1.sts.test')[2],
                         '  rule: MTA-STS enforce (level verify: mx1.sts.test '
                         'matches the policy of sts.test, id %s; the '
                         'certificate must chain to %s and be valid for '
                         'mx1.sts.test)' % (ID1, self.ca.cert))
        # A new id and a testing policy: fetched and in force, not stored.
        web = self.start_web(TESTING)
        self.zone.set_records(records(ID2))
        self.addCleanup(self.zone.set_records, records())
        for _ in range(2):
            out = self.show()
            self.assertEqual(self.sts_lines(out), [
                cached,
                'MTA-STS record: id %s (_mta-sts.sts.test)' % ID2,
                'MTA-STS fetch: id %s, mode testing, max_age 3600, mx: '
                'mx1.sts.test (%s)' % (ID2, URL),
                'MTA-STS: in force: testing (the fetched policy, id %s)' % ID2,
            ])
        self.assertEqual(self.host_lines(out, 'mx2.sts.test')[2],
                         '  rule: MTA-STS testing (level encrypt, from '
                         'default_tls_level; mx2.sts.test does not match the '
                         'policy of sts.test, id %s; what enforce would '
                         'refuse is only reported)' % ID2)
        self.assertEqual(len(web.requests), 2)

    # -- certs probe --domain ----------------------------------------------

    def probe(self, cert, host='mx1.sts.test', addr=MX1):
        mx = mxpeer.MX(self).start(addr, 0, tls_cert=cert.cert,
                                   tls_key=cert.key, hostname=host)
        self.configure()
        r = run([BIN, 'certs', 'probe', '-c', self.conf, '--domain', DOMAIN,
                 '%s:%d' % (host, mx.port)], env=base_env(), timeout=SHOW_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, '')
        self.assertIn('\nMTA-STS fetch: id %s, mode enforce, max_age 86400, '
                      '%s (%s)\n' % (ID1, PATTERNS, URL), r.stdout)
        return r.stdout

    def test_probe_enforce_verified(self):
        out = self.probe(self.mx_cert)
        self.assertIn('\nrule: MTA-STS enforce (level verify: mx1.sts.test '
                      'matches the policy of sts.test, id %s; the certificate '
                      'must chain to %s and be valid for mx1.sts.test)\n'
                      % (ID1, self.ca.cert), out)
        self.assertIn('\nnames: matched mx1.sts.test\n', out)
        self.assertIn('\nVerified TLS connection established to '
                      'mx1.sts.test[%s]:' % MX1, out)
        self.assertEqual(out.splitlines()[-1],
                         'Verification: Verified (mta-sts: MTA-STS policy of '
                         'sts.test (enforce): name matched mx1.sts.test)')
        self.assertEqual(self.web.requests, [(PATH, 'mta-sts.sts.test')])

    def test_probe_enforce_wrong_name(self):
        """A certificate from the trusted CA for another name: the relay's
        MTA-STS reason."""
        out = self.probe(self.other_cert)
        self.assertIn('\nchain: trusted\n', out)
        self.assertRegex(out.splitlines()[-1],
                         r'^Verification: failed: MTA-STS policy of sts\.test '
                         r'\(enforce\): certificate not valid for mx1\.sts\.test: '
                         r'Server certificate not verified: name mismatch '
                         r'\(expected mx1\.sts\.test; certificate .*other\.test.*\)$')

    def test_probe_enforce_host_not_listed(self):
        """A host the policy does not list: the relay's deferral, before
        any certificate is looked at."""
        out = self.probe(self.mx_cert, host='mx2.sts.test', addr=MX2)
        self.assertIn('\nrule: MTA-STS enforce: mail deferred: MTA-STS policy '
                      'of sts.test (enforce): MX host mx2.sts.test does not '
                      'match\n', out)
        self.assertEqual(out.splitlines()[-1],
                         'Verification: failed: MTA-STS policy of sts.test '
                         '(enforce): MX host mx2.sts.test does not match')


if __name__ == '__main__':
    unittest.main()
