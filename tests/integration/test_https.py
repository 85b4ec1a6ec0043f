"""relay/net/https.c (libcurl on the libuv loop) against real HTTPS servers.

The C driver $TLSRELAY_TEST_HTTPS (tests/unit/test_https.c) runs the
requests named on its command line at the same time, on one loop, and
prints one line per request:

    get HOST:PORT/PATH status=OK code=200 type=text/plain len=N sha256=HEX ms=N why=...
    cancelled HOST:PORT/PATH
    pending HOST:PORT/PATH            (the fetcher was freed first)

Lines starting with FAIL are broken promises of https.h (a callback
inside https_get(), twice, or after cancel; the loop not closing).

The servers are Python http.server + ssl on 127.0.0.110-119 (and ::1),
each on a free port, with certificates from a test CA made by certtool
(certs.py).  Every test starts its servers and stops them.  What a server
received is recorded, so the tests also check what was *not* sent (a
redirect target that is never asked).  RFC 8461 section 3.3 is the
reference: no redirects, HTTP 200 only, a certificate valid for the
mta-sts host, a bounded body (64 KiB) and a bounded time.

curl never resolves a name here: the fetcher refuses any resolver start
(the request then fails as LOCAL, "no address for HOST"), so every OK
below also shows that the addresses passed in were curl's only DNS data;
test_given_addresses_are_used_not_dns shows they are the ones used.
"""

import hashlib
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402

TEST_HTTPS = (os.environ.get('TLSRELAY_TEST_HTTPS') or
              '/work/main/build/tests/test_https')

HOST = 'mta-sts.example.test'
PATH = '/.well-known/mta-sts.txt'
POLICY = (b'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\n'
          b'mx: *.mx.example.test\r\nmax_age: 86400\r\n')
CAP = 65536          # RFC 8461 section 3.3, HTTPS_STS_BODY_MAX
BIG = 1024 * 1024    # the "1 MB" body
CHUNK = 16384
MAIN = '127.0.0.110'
OTHER = '127.0.0.111'
SPARE = '127.0.0.112'
SLOW_WAIT = 30       # a stalled handler waits at most this (until close())


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Answers by path; every request is recorded on the server's owner."""
    protocol_version = 'HTTP/1.1'
    timeout = 10  # a client that never speaks TLS does not hold a thread

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.owner = self.server.owner

    def reply(self, code, body=b'', ctype='text/plain', headers=()):
        self.send_response(code)
        if ctype:
            self.send_header('Content-Type', ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def stream(self, total, close_notify=True, code=200, announce=False, pause=0.01):
        """A body with no length (ended by closing), sent in chunks with a
        pause between them; records how much got out before the client
        went away.  The end is a TLS close_notify unless close_notify is
        false: then the TCP connection just closes, which a client cannot
        tell from a truncation by an attacker."""
        self.close_connection = True
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Connection', 'close')
        if announce:
            self.send_header('Content-Length', str(total))
        self.end_headers()
        sent = 0
        try:
            while sent < total:
                n = min(CHUNK, total - sent)
                self.wfile.write(b'x' * n)
                self.wfile.flush()
                sent += n
                if total > CAP + 1:
                    time.sleep(pause)
            if close_notify:
                self.connection.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
        self.owner.streamed.append(sent)

    def do_GET(self):
        self.owner.record(self, b'')
        route = self.owner.routes.get(self.path)
        if route is None and self.path.startswith('/sleep/'):
            time.sleep(0.5)
            return self.reply(200, self.path.encode())
        if route is None:
            return self.reply(404, b'not here\n')
        route(self)

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n)
        self.owner.record(self, body)
        if self.path == '/report':
            return self.reply(202, b'thanks\n')
        self.reply(404, b'not here\n')


def default_routes(srv):
    def slow(h):
        h.send_response(200)
        h.send_header('Content-Type', 'text/plain')
        h.send_header('Content-Length', '100')
        h.end_headers()
        h.wfile.flush()
        srv.stop.wait(SLOW_WAIT)
    return {
        PATH: lambda h: h.reply(200, POLICY, 'text/plain; charset=utf-8'),
        '/empty': lambda h: h.reply(200, b''),
        '/html': lambda h: h.reply(200, b'<html>policy</html>', 'text/html'),
        '/notype': lambda h: h.reply(200, POLICY, None),
        '/badtype': lambda h: h.reply(200, POLICY, 'text/plain; charset'),
        '/500': lambda h: h.reply(500, b'oops\n'),
        '/301': lambda h: h.reply(301, b'moved\n', headers=[
            ('Location', srv.redirect_to or 'https://%s/' % HOST)]),
        '/302': lambda h: h.reply(302, b'', headers=[('Location', PATH)]),
        '/big': lambda h: h.reply(200, b'x' * BIG),
        '/big-stream': lambda h: h.stream(BIG),
        # Slow enough that a client reading these bodies (it must not) would
        # get past CAP long before the end.
        '/big-announced': lambda h: h.stream(BIG, announce=True, pause=0.05),
        '/404-big': lambda h: h.stream(BIG, code=404, announce=True, pause=0.05),
        '/exact': lambda h: h.stream(CAP),
        '/truncated': lambda h: h.stream(1000, close_notify=False),
        '/over': lambda h: h.stream(CAP + 1),
        '/slow': slow,
    }


class HttpsServer:
    """An HTTPS server on (address, free port) with cert; close() stops it."""

    def __init__(self, address, cert, port=0):
        self.requests = []
        self.streamed = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.redirect_to = None
        self.routes = default_routes(self)
        family = socket.AF_INET6 if ':' in address else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                pass  # refused handshakes are what several tests expect

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        self.httpd = Server((address, port), Handler)
        # The handshake runs in the handler's thread (on its first read),
        # never in the accepting one.
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.httpd.owner = self
        self.address = address
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def record(self, h, body):
        with self.lock:
            self.requests.append({
                'method': h.command, 'path': h.path, 'host': h.headers.get('Host'),
                'type': h.headers.get('Content-Type'), 'body': body,
                'headers': dict(h.headers.items())})

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class SilentServer:
    """Accepts TCP connections and never says a word (no TLS either)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def parse_line(line):
    """'get SPEC k=v ... why=TEXT' -> dict with kind, spec and the keys."""
    head, _, why = line.partition(' why=')
    f = head.split()
    out = {'kind': f[0], 'spec': f[1], 'why': why}
    for kv in f[2:]:
        k, _, v = kv.partition('=')
        out[k] = v
    return out


class HttpsTestBase(unittest.TestCase):
    certdir = None

    @classmethod
    def setUpClass(cls):
        if not shutil.which(certs.CERTTOOL):
            raise unittest.SkipTest('certtool (gnutls-bin) not installed')
        if not os.access(TEST_HTTPS, os.X_OK):
            raise unittest.SkipTest('test_https not built at %s' % TEST_HTTPS)
        d = tempfile.mkdtemp(prefix='tlsrelay-https-')
        cls.addClassCleanup(shutil.rmtree, d, True)
        cls.certdir = d
        cls.ca = certs.default_ca(d)
        cls.good = certs.make_cert(d, HOST)
        cls.local = certs.make_cert(d, 'localhost')
        cls.other_name = certs.make_cert(d, 'mta-sts.other.test')
        cls.self_signed = certs.make_cert(d, HOST, self_signed=True, name='selfsigned')
        other_ca = certs.make_ca(d, cn='Another CA', name='otherca')
        cls.foreign = certs.make_cert(d, HOST, ca=other_ca, name='foreign')
        cls.expired = certs.make_cert(d, HOST, expired=True, name='expired')

    def server(self, cert=None, address=MAIN, port=0):
        s = HttpsServer(address, cert or self.good, port)
        self.addCleanup(s.close)
        return s

    @staticmethod
    def spec(srv, path=PATH, host=HOST, addrs=None, kind='get'):
        return '%s:%s:%d%s@%s' % (kind, host, srv.port, path, addrs or srv.address)

    def run_https(self, reqs, ca=True, timeout=None, body_max=None, text_plain=False,
                  free_after=None, cancel_after=None, body_file=None, ctype=None,
                  limit=60):
        """Run the driver; returns (lines parsed, elapsed seconds)."""
        args = [TEST_HTTPS]
        if ca is not None:
            args += ['-c', self.ca.cert if ca is True else ca]
        for opt, val in (('-t', timeout), ('-m', body_max), ('-f', free_after),
                         ('-x', cancel_after), ('-b', body_file), ('-y', ctype)):
            if val is not None:
                args += [opt, str(val)]
        if text_plain:
            args.append('-T')
        t0 = time.monotonic()
        r = harness.run(args + list(reqs), timeout=limit)
        took = time.monotonic() - t0
        self.assertNotRegex(r.stdout, r'(?m)^FAIL', r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(reqs), r.stdout)
        return [parse_line(l) if ' status=' in l else l for l in lines], took

    def one(self, req, **kw):
        lines, _ = self.run_https([req], **kw)
        return lines[0]

    def assert_result(self, r, status, code, why=None):
        self.assertEqual((r['status'], r['code']), (status, str(code)), r)
        if why is not None:
            self.assertEqual(r['why'], why, r)


class Fetch(HttpsTestBase):
    """The successful fetch, and what goes over the wire."""

    def test_policy_delivered(self):
        srv = self.server()
        r = self.one(self.spec(srv), text_plain=True)
        self.assert_result(r, 'OK', 200, '')
        self.assertEqual(r['type'], 'text/plain')  # charset dropped
        self.assertEqual((r['len'], r['sha256']), (str(len(POLICY)), sha(POLICY)))
        self.assertEqual(len(srv.requests), 1)
        req = srv.requests[0]
        self.assertEqual((req['method'], req['path']), ('GET', PATH))
        self.assertEqual(req['host'], '%s:%d' % (HOST, srv.port))
        # No compression (the cap counts the bytes sent), no cookies.
        self.assertNotIn('Accept-Encoding', req['headers'])
        self.assertNotIn('Cookie', req['headers'])
        self.assertEqual(req['headers'].get('User-Agent'), 'tlsrelay')

    def test_empty_body(self):
        srv = self.server()
        r = self.one(self.spec(srv, '/empty'))
        self.assert_result(r, 'OK', 200, '')
        self.assertEqual((r['len'], r['sha256']), ('0', sha(b'')))

    def test_exactly_the_cap(self):
        srv = self.server()
        r = self.one(self.spec(srv, '/exact'), body_max=CAP)
        self.assert_result(r, 'OK', 200, '')
        self.assertEqual((r['len'], r['sha256']), (str(CAP), sha(b'x' * CAP)))

    def test_given_addresses_are_used_not_dns(self):
        # "localhost" resolves to 127.0.0.1 (and ::1) through the system;
        # the server is on another address, so only the address passed in
        # can reach it.
        srv = self.server(self.local)
        self.assertFalse(harness.port_open(srv.port, '127.0.0.1'))
        r = self.one(self.spec(srv, host='localhost'))
        self.assert_result(r, 'OK', 200, '')
        # A name no DNS knows works the same way.
        r = self.one(self.spec(self.server(), host=HOST))
        self.assert_result(r, 'OK', 200, '')

    def test_next_address_after_a_refusal(self):
        srv = self.server()
        r = self.one(self.spec(srv, addrs=SPARE + ',' + MAIN))
        self.assert_result(r, 'OK', 200, '')
        self.assertEqual(r['sha256'], sha(POLICY))

    def test_ipv6_address(self):
        try:
            srv = self.server(address='::1')
        except OSError as e:
            self.fail('cannot listen on [::1]: %s' % e)
        r = self.one(self.spec(srv, addrs='::1'))
        self.assert_result(r, 'OK', 200, '')

    def test_default_port_443(self):
        # The port is a request parameter; without one, 443.
        try:
            srv = self.server(port=443)
        except PermissionError:
            if os.environ.get('CI') == 'true':
                raise
            self.skipTest('binding port 443 needs root')
        r = self.one('get:%s%s@%s' % (HOST, PATH, MAIN))
        self.assert_result(r, 'OK', 200, '')
        self.assertEqual(srv.requests[0]['host'], HOST)

    def test_media_type_exposed_without_requirement(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/html'), self.spec(srv, '/notype')])
        self.assert_result(lines[0], 'OK', 200, '')
        self.assertEqual(lines[0]['type'], 'text/html')
        self.assert_result(lines[1], 'OK', 200, '')
        self.assertEqual(lines[1]['type'], '-')


class HttpFailures(HttpsTestBase):
    """RFC 8461 section 3.3: 200 only, redirects never followed."""

    def test_not_found_and_server_error(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/nothing'), self.spec(srv, '/500')])
        self.assert_result(lines[0], 'HTTP', 404, 'HTTP status 404')
        self.assert_result(lines[1], 'HTTP', 500, 'HTTP status 500')
        self.assertEqual([l['len'] for l in lines], ['0', '0'])

    def test_redirect_not_followed(self):
        target = self.server(address=OTHER)
        srv = self.server()
        srv.redirect_to = 'https://%s:%d%s' % (HOST, target.port, PATH)
        lines, _ = self.run_https([self.spec(srv, '/301', addrs=MAIN),
                                   self.spec(srv, '/302', addrs=MAIN)])
        self.assert_result(lines[0], 'REDIRECT', 301, 'redirect refused (HTTP 301)')
        self.assert_result(lines[1], 'REDIRECT', 302, 'redirect refused (HTTP 302)')
        self.assertEqual(sorted(r['path'] for r in srv.requests), ['/301', '/302'])
        self.assertEqual(target.requests, [])

    def test_wrong_content_type_required(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/html'), self.spec(srv, '/notype'),
                                   self.spec(srv, '/badtype')], text_plain=True)
        self.assert_result(lines[0], 'TYPE', 200, 'content type text/html, not text/plain')
        self.assertEqual(lines[0]['type'], 'text/html')
        self.assert_result(lines[1], 'TYPE', 200, 'no content type (text/plain required)')
        self.assert_result(lines[2], 'TYPE', 200,
                           'malformed content type (text/plain required)')
        self.assertEqual([l['len'] for l in lines], ['0', '0', '0'])


class Bounds(HttpsTestBase):
    """The body cap and the time bound."""

    def test_announced_big_body(self):
        srv = self.server()
        r = self.one(self.spec(srv, '/big'), body_max=CAP)
        self.assert_result(r, 'TOOBIG', 200, 'body over 65536 bytes')
        self.assertEqual(r['len'], '0')

    def test_streamed_big_body_aborted_early(self):
        srv = self.server()
        r = self.one(self.spec(srv, '/big-stream'), body_max=CAP)
        self.assert_result(r, 'TOOBIG', 200, 'body over 65536 bytes')
        self.assertTrue(harness.wait_for(lambda: srv.streamed, 10), 'server still sending')
        # The client hung up soon after the cap: most of the megabyte was
        # never sent (the server pauses between chunks).
        self.assertLess(srv.streamed[0], BIG // 2, srv.streamed)

    def test_refused_at_the_header(self):
        # Announced too big, or a failure status with a big body: the
        # decision comes with the header, before the body is read.
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/big-announced'),
                                   self.spec(srv, '/404-big')], body_max=CAP)
        self.assert_result(lines[0], 'TOOBIG', 200, 'body over 65536 bytes')
        self.assert_result(lines[1], 'HTTP', 404, 'HTTP status 404')
        self.assertTrue(harness.wait_for(lambda: len(srv.streamed) == 2, 10),
                        'server still sending')
        self.assertLess(max(srv.streamed), CAP, srv.streamed)

    def test_one_byte_over(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/over'), self.spec(srv, '/exact')],
                                  body_max=CAP)
        self.assert_result(lines[0], 'TOOBIG', 200, 'body over 65536 bytes')
        self.assert_result(lines[1], 'OK', 200, '')

    def test_close_without_close_notify_is_truncation(self):
        # A body delimited by the end of the connection is complete only
        # with the TLS close_notify: a bare TCP close could be an attacker
        # cutting the policy short.
        srv = self.server()
        r = self.one(self.spec(srv, '/truncated'))
        self.assert_result(r, 'PROTOCOL', 200)
        self.assertIn('non-properly terminated', r['why'])
        self.assertEqual(r['len'], '0')

    def test_default_cap_and_smaller_caps(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, '/over'), self.spec(srv)])
        self.assert_result(lines[0], 'TOOBIG', 200, 'body over 65536 bytes')
        r = self.one(self.spec(srv), body_max=20)
        self.assert_result(r, 'TOOBIG', 200, 'body over 20 bytes')

    def test_stalled_server_times_out(self):
        srv = self.server()
        r = self.one(self.spec(srv, '/slow'), timeout=1000)
        self.assert_result(r, 'TIMEOUT', 200, 'timed out after 1 s')
        self.assertGreaterEqual(int(r['ms']), 900, r)
        self.assertLess(int(r['ms']), 3000, r)

    def test_silent_peer_times_out(self):
        # TCP accepted, TLS never answered.
        silent = SilentServer(MAIN)
        self.addCleanup(silent.close)
        r = self.one('get:%s:%d%s@%s' % (HOST, silent.port, PATH, MAIN), timeout=1500)
        self.assert_result(r, 'TIMEOUT', 0, 'timed out after 1500 ms')
        self.assertLess(int(r['ms']), 3500, r)

    def test_connection_refused(self):
        port = harness.free_port()
        r = self.one('get:%s:%d%s@%s' % (HOST, port, PATH, SPARE))
        self.assert_result(r, 'CONNECT', 0)
        self.assertTrue(r['why'].startswith('cannot connect: '), r)


class Certificates(HttpsTestBase):
    """RFC 8461 section 3.3: a certificate valid for the mta-sts host."""

    def check_refused(self, cert, ca=True):
        srv = self.server(cert)
        r = self.one(self.spec(srv), ca=ca)
        self.assert_result(r, 'CERT', 0)
        self.assertTrue(r['why'].startswith('certificate not valid for %s: ' % HOST), r)
        self.assertEqual(srv.requests, [])
        return r

    def test_certificate_for_another_name(self):
        r = self.check_refused(self.other_name)
        self.assertIn('mta-sts.other.test', r['why'])

    def test_self_signed(self):
        self.check_refused(self.self_signed)

    def test_other_ca(self):
        self.check_refused(self.foreign)

    def test_expired(self):
        self.check_refused(self.expired)

    def test_system_store_does_not_know_the_test_ca(self):
        self.check_refused(self.good, ca=None)


class Concurrency(HttpsTestBase):
    """Many at once; cancel; free with requests in flight."""

    def test_many_in_parallel(self):
        srv = self.server()
        n = 24
        reqs = [self.spec(srv, '/sleep/%d' % i) for i in range(n)]
        lines, took = self.run_https(reqs)
        for i, r in enumerate(lines):
            self.assert_result(r, 'OK', 200, '')
            self.assertEqual(r['sha256'], sha(('/sleep/%d' % i).encode()), r)
        # Each answer takes 0.5 s: one after the other would be 12 s.
        self.assertLess(took, 6, 'requests did not run in parallel')
        self.assertEqual(len(srv.requests), n)

    def test_cancel_at_once(self):
        srv = self.server()
        lines, _ = self.run_https([self.spec(srv, kind='cancel'), self.spec(srv),
                                   self.spec(srv, kind='cancel')])
        self.assertEqual(lines[0], 'cancelled %s:%d%s' % (HOST, srv.port, PATH))
        self.assert_result(lines[1], 'OK', 200, '')
        self.assertTrue(lines[2].startswith('cancelled '), lines)

    def test_cancel_in_flight(self):
        srv = self.server()
        lines, took = self.run_https([self.spec(srv, '/slow', kind='late'), self.spec(srv)],
                                     cancel_after=500, timeout=20000)
        self.assertTrue(lines[0].startswith('cancelled '), lines)
        self.assert_result(lines[1], 'OK', 200, '')
        self.assertLess(took, 5)
        self.assertIn('/slow', [r['path'] for r in srv.requests])

    def test_free_with_requests_in_flight(self):
        srv = self.server()
        reqs = [self.spec(srv, '/slow') for _ in range(3)] + [self.spec(srv)]
        lines, took = self.run_https(reqs, free_after=500, timeout=20000)
        self.assertEqual(lines[:3], ['pending %s:%d/slow' % (HOST, srv.port)] * 3)
        self.assert_result(lines[3], 'OK', 200, '')
        self.assertLess(took, 5)
        self.assertTrue(harness.wait_for(
            lambda: [r['path'] for r in srv.requests].count('/slow') == 3, 5))

    def test_bad_requests_refused_at_once(self):
        lines, _ = self.run_https(['get:bad..name/x@127.0.0.1',
                                   'get:%s/a b@127.0.0.1' % HOST,
                                   'get:%s/a#frag@127.0.0.1' % HOST])
        for l in lines:
            self.assertRegex(l, r'error=-22\b')


class Post(HttpsTestBase):
    """The POST variant (TLS-RPT reports, RFC 8460 section 3)."""

    def test_post_report(self):
        srv = self.server()
        body = os.urandom(20000)
        path = os.path.join(self.certdir, 'report.gz')
        with open(path, 'wb') as f:
            f.write(body)
        lines, _ = self.run_https([self.spec(srv, '/report', kind='post'),
                                   self.spec(srv, '/nothing', kind='post')],
                                  body_file=path, ctype='application/tlsrpt+gzip')
        self.assert_result(lines[0], 'OK', 202, '')
        self.assertEqual(lines[0]['sha256'], sha(b'thanks\n'))
        self.assert_result(lines[1], 'HTTP', 404, 'HTTP status 404')
        got = [r for r in srv.requests if r['path'] == '/report']
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]['method'], 'POST')
        self.assertEqual(got[0]['type'], 'application/tlsrpt+gzip')
        self.assertEqual(sha(got[0]['body']), sha(body))
        self.assertNotIn('Expect', got[0]['headers'])

    def test_post_bad_media_type_refused(self):
        path = os.path.join(self.certdir, 'empty')
        open(path, 'wb').close()
        lines, _ = self.run_https(['post:%s/report@127.0.0.1' % HOST], body_file=path,
                                  ctype='text/plain\r\nX-Injected: 1')
        self.assertRegex(lines[0], r'error=-22\b')


def _sigterm(signum, frame):
    # meson's timeout: fail the running case, so its cleanups stop the servers.
    raise RuntimeError('SIGTERM (meson timeout?)')


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, _sigterm)
    prog = unittest.main(verbosity=2, exit=False)
    res = prog.result
    # A skipped case is a skipped test for meson (and a failure under CI=true).
    sys.exit(1 if not res.wasSuccessful() else 77 if res.skipped else 0)
