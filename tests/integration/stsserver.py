#!/usr/bin/python3
"""An MTA-STS policy host (RFC 8461 section 3.3) for the integration tests.

Run as a subprocess by StsServer (below), one per 127.0.0.x address, on
port 443 (the relay always fetches https://mta-sts.DOMAIN/.well-known/
mta-sts.txt on 443; the tests run as root):

    srv = StsServer(self, 'mta-sts.sts.test', '127.0.0.150', cert)
    srv.start(body=b'version: STSv1\\r\\nmode: enforce\\r\\n...')
    srv.set(behaviour='status', status=404)    # takes effect at once
    srv.set(body=NEW_BODY, behaviour='ok')
    srv.gets()          # the GETs of the policy path, oldest first
    srv.stop(); srv.start()                    # down, then up again
    # stopped at cleanup (or srv.close())

What the policy path (/.well-known/mta-sts.txt) answers, by behaviour:

    ok        200, Content-Type text/plain, the body
    status    the status code given (default 404), text/plain, the body
    redirect  301 to https://HOST/moved (HOST: the server's name), where
              GET /moved answers 200 text/plain with the body
    html      200, Content-Type text/html, the body
    big       200, text/plain, Content-Length 1048576: the body, then
              `pad: xxx...` lines (an unknown key, which a policy parser
              ignores) up to 1 MiB
    slow      200, text/plain, Content-Length of the body: the headers, then
              nothing until the client closes the connection, the server
              stops, or MAX_STALL seconds pass

Every other path is 404.  The body and behaviour live in DIR/state.json,
read on each request, so set() changes them at runtime.  Each request is
logged in DIR/requests.log (one JSON object a line): event "request" with
t (epoch seconds), method, path, host (the Host header), sni (the server
name of the TLS handshake, or null), peer, behaviour; event "sent" when the
answer is out (status, length); event "stall-end" when a slow answer ends
(why: "client closed" / "stopped" / "max stall"), with the path and t.

Run directly:  stsserver.py --host IP --port 443 --cert C --key K --dir DIR
[--name HOST]; it writes DIR/ready once it listens, exits 0 on SIGTERM.
Stdlib only.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLICY_PATH = '/.well-known/mta-sts.txt'
MOVED_PATH = '/moved'
BIG_SIZE = 1024 * 1024
MAX_STALL = 300.0
BEHAVIOURS = ('ok', 'status', 'redirect', 'html', 'big', 'slow')

HERE = os.path.abspath(__file__)
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') \
    else sys.executable
KEEP_TMP = os.environ.get('TLSRELAY_KEEP_TMP') == '1'
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def write_atomic(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def big_body(body, size=BIG_SIZE):
    """body followed by `pad:` lines, exactly size bytes."""
    out = bytearray(body)
    line = b'pad: ' + b'x' * 70 + b'\r\n'
    while len(out) + len(line) <= size:
        out += line
    rest = size - len(out)
    if rest >= 7:
        out += b'pad: ' + b'y' * (rest - 7) + b'\r\n'
    else:
        out += b'\r\n' * (rest // 2) + b' ' * (rest % 2)
    assert len(out) == size, (len(out), size)
    return bytes(out)


# -- the server process ------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 10  # a client that never speaks does not hold a thread

    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype='text/plain', headers=()):
        self.send_response(code)
        if ctype:
            self.send_header('Content-Type', ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.server.owner.log(event='sent', path=self.path, status=code,
                              length=len(body))

    def stall(self, body):
        """Headers announcing body, then nothing: until the client closes,
        the server stops, or MAX_STALL."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.flush()
        owner.log(event='sent', path=self.path, status=200, length=0)
        self.close_connection = True
        deadline = time.monotonic() + MAX_STALL
        why = 'max stall'
        self.connection.settimeout(0.2)
        while time.monotonic() < deadline:
            if owner.stopping.is_set():
                why = 'stopped'
                break
            try:
                data = self.connection.recv(1)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError):
                why = 'client closed'
                break
            if not data:
                why = 'client closed'
                break
        owner.log(event='stall-end', path=self.path, why=why)

    def do_GET(self):
        owner = self.server.owner
        state = owner.state()
        behaviour = state.get('behaviour', 'ok')
        body = state.get('body', '').encode('utf-8', 'surrogateescape')
        owner.log(event='request', method='GET', path=self.path,
                  host=self.headers.get('Host'),
                  sni=getattr(self.connection, 'sts_sni', None),
                  peer=list(self.client_address[:2]), behaviour=behaviour)
        if self.path == POLICY_PATH:
            if behaviour == 'ok':
                return self.answer(200, body)
            if behaviour == 'status':
                return self.answer(int(state.get('status', 404)), body)
            if behaviour == 'redirect':
                return self.answer(301, b'moved\n', headers=[
                    ('Location', 'https://%s%s' % (owner.name, MOVED_PATH))])
            if behaviour == 'html':
                return self.answer(200, body, 'text/html')
            if behaviour == 'big':
                return self.answer(200, big_body(body))
            if behaviour == 'slow':
                return self.stall(body)
            return self.answer(500, b'unknown behaviour\n')
        if self.path == MOVED_PATH and behaviour == 'redirect':
            return self.answer(200, body)
        self.answer(404, b'not here\n')

    def do_HEAD(self):
        self.server.owner.log(event='request', method='HEAD', path=self.path,
                              host=self.headers.get('Host'), sni=None,
                              peer=list(self.client_address[:2]),
                              behaviour=None)
        self.send_response(405)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_POST = do_HEAD


class Owner:
    def __init__(self, args):
        self.dir = args.dir
        self.name = args.name
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.log_path = os.path.join(self.dir, 'requests.log')

    def state(self):
        with open(os.path.join(self.dir, 'state.json')) as f:
            return json.load(f)

    def log(self, **fields):
        rec = {'t': round(time.time(), 3)}
        rec.update(fields)
        with self.lock, open(self.log_path, 'a') as f:
            f.write(json.dumps(rec) + '\n')


def record_sni(sslsock, name, ctx):
    sslsock.sts_sni = name
    return None


def serve(args):
    owner = Owner(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.sni_callback = record_sni

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            pass  # failed handshakes and dropped clients are not ours

    httpd = Server((args.host, args.port), Handler)
    # The handshake runs in the handler's thread, never the accepting one.
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                   do_handshake_on_connect=False)
    httpd.owner = owner

    def on_term(signum, frame):
        owner.stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    write_atomic(os.path.join(args.dir, 'ready'), json.dumps(
        {'pid': os.getpid(), 'host': args.host,
         'port': httpd.server_address[1]}).encode())
    httpd.serve_forever(poll_interval=0.05)
    httpd.server_close()
    # Stalled handlers see `stopping` within 0.2 s and log their end.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and \
            threading.active_count() > 1:
        time.sleep(0.05)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', required=True)
    p.add_argument('--port', type=int, default=443)
    p.add_argument('--cert', required=True)
    p.add_argument('--key', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--name', default='mta-sts.invalid')
    args = p.parse_args(argv)
    return serve(args)


# -- the test side -------------------------------------------------------------


class StsServer:
    """One stsserver.py process for the policy host `name` on ip:port with
    cert (a certs.Cert).  Pass a TestCase to have close() run at cleanup."""

    def __init__(self, testcase, name, ip, cert, port=443):
        self.name = name
        self.ip = ip
        self.port = port
        self.cert = cert
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-sts-')
        self.log_path = os.path.join(self.dir, 'requests.log')
        self.state_path = os.path.join(self.dir, 'state.json')
        self.out_path = os.path.join(self.dir, 'server.out')
        self.proc = None
        self.problems = []
        self._state = {'behaviour': 'ok', 'body': '', 'status': 404}
        if testcase is not None:
            testcase.addCleanup(self.close)

    def set(self, body=None, behaviour=None, status=None):
        """Change what the policy path answers (from the next request)."""
        if body is not None:
            if isinstance(body, bytes):
                body = body.decode('utf-8', 'surrogateescape')
            self._state['body'] = body
        if behaviour is not None:
            if behaviour not in BEHAVIOURS:
                raise ValueError('unknown behaviour %r' % behaviour)
            self._state['behaviour'] = behaviour
        if status is not None:
            self._state['status'] = int(status)
        write_atomic(self.state_path, json.dumps(self._state).encode())

    def start(self, body=None, behaviour=None, status=None):
        """Start (or start again, after stop()) and wait until it listens."""
        assert self.proc is None, 'already running'
        self.set(body, behaviour, status)
        ready = os.path.join(self.dir, 'ready')
        if os.path.exists(ready):
            os.unlink(ready)
        argv = [PYTHON, HERE, '--host', self.ip, '--port', str(self.port),
                '--cert', self.cert.cert, '--key', self.cert.key,
                '--dir', self.dir, '--name', self.name]
        with open(self.out_path, 'ab') as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                self.proc = None
                raise AssertionError('stsserver.py on %s:%d exited while '
                                     'starting:\n%s'
                                     % (self.ip, self.port, self.output()))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                raise AssertionError('stsserver.py not ready within %.0f s:'
                                     '\n%s' % (START_TIMEOUT, self.output()))
            time.sleep(0.02)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait (SIGKILL after STOP_TIMEOUT); records a problem
        when it did not exit 0."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.problems.append('stsserver.py did not stop on SIGTERM')
                return
        if p.returncode != 0:
            self.problems.append('stsserver.py exited %s:\n%s'
                                 % (p.returncode, self.output()[-3000:]))

    def close(self):
        try:
            self.stop()
            if self.problems:
                raise AssertionError('; '.join(self.problems))
        finally:
            if KEEP_TMP:
                sys.stderr.write('kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- inspection ---------------------------------------------------------

    def output(self):
        try:
            with open(self.out_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def events(self):
        """Every record of the request log, oldest first."""
        try:
            with open(self.log_path) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def requests(self):
        """The requests received (any method, any path)."""
        return [e for e in self.events() if e['event'] == 'request']

    def gets(self, path=POLICY_PATH):
        """The GETs of path (default: the policy)."""
        return [e for e in self.requests()
                if e['method'] == 'GET' and e['path'] == path]


class _Conn(http.client.HTTPSConnection):
    """An HTTPS connection to a name, made to a given address."""

    def __init__(self, ip, host, port, context, timeout):
        super().__init__(host, port, context=context, timeout=timeout)
        self._ip = ip
        self._ctx = context

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def fetch(ip, host, cafile, path=POLICY_PATH, port=443, timeout=10,
          read_body=True):
    """GET https://host/path from ip, verifying the certificate for host
    against cafile (Python's ssl: chain and name).  Returns (status,
    headers as a dict with lower-case names, body bytes or None)."""
    ctx = ssl.create_default_context(cafile=cafile)
    c = _Conn(ip, host, port, ctx, timeout)
    try:
        c.request('GET', path, headers={'Connection': 'close'})
        r = c.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        body = r.read() if read_body else None
        return r.status, headers, body
    finally:
        c.close()


if __name__ == '__main__':
    sys.exit(main())
