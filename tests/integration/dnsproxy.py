"""A DNS proxy on loopback that silently drops chosen query types.

    from dnsproxy import DnsProxy

    proxy = DnsProxy(zone.port, drop_qtypes={52}, testcase=self)
    ub = zone.write_unbound_conf(path, stub_port=proxy.port)
    ... TLSA (52) queries now go unanswered, everything else is answered ...
    proxy.dropped      # [(qname, qtype, 'udp' or 'tcp'), ...] seen so far

DnsProxy(upstream_port) listens on 127.0.0.1 and a free port, UDP and TCP,
and forwards each query to 127.0.0.1@upstream_port (Knot), the answer back
to the asker, except queries whose QTYPE is in drop_qtypes: those it
records and never answers (over TCP the connection stays open, silent), as
a server behind a broken middlebox does.  A query it cannot parse is
forwarded as it is.  It runs in threads of the test process; stop() (or
close(), the context manager, or the cleanup registered with testcase=)
closes every socket and joins the threads.
"""

import selectors
import socket
import struct
import threading
import time

TLSA = 52
UPSTREAM_TIMEOUT = 5.0   # an unanswered forwarded UDP query is forgotten
STOP_TIMEOUT = 5.0


def question(msg):
    """(qname, qtype) of a DNS query's first question, or None when the
    message is too short or malformed."""
    if len(msg) < 12 or struct.unpack('!H', msg[4:6])[0] < 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:        # no compression in a question we sent
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode('ascii', 'replace'))
        pos += 1 + n
    if pos + 2 > len(msg):
        return None
    return '.'.join(labels) + '.', struct.unpack('!H', msg[pos:pos + 2])[0]


def _bind_pair(host):
    """A UDP and a TCP socket bound to the same free port on host."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((host, 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind((host, port))
        except OSError:
            u.close()
            t.close()
            continue
        t.listen(16)
        return u, t, port
    raise RuntimeError('no port free for both UDP and TCP on %s' % host)


def _recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class DnsProxy:
    """A forwarding DNS proxy that drops queries of some types."""

    def __init__(self, upstream_port, drop_qtypes=(TLSA,), testcase=None,
                 host='127.0.0.1', upstream_host='127.0.0.1', start=True):
        self.upstream = (upstream_host, upstream_port)
        self.drop_qtypes = set(drop_qtypes)
        self.host = host
        self.port = None
        self.dropped = []       # (qname, qtype, transport)
        self.forwarded = []     # (qname, qtype, transport)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._conns = set()
        self._udp = self._tcp = None
        if testcase is not None:
            testcase.addCleanup(self.close)
        if start:
            self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- control -------------------------------------------------------------

    def start(self):
        assert self._udp is None, 'already started'
        self._udp, self._tcp, self.port = _bind_pair(self.host)
        for target in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        """Close every socket and join the threads (bounded)."""
        if self._udp is None:
            return
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        # The two loops first: then no connection thread is added.
        for t in self._threads[:2]:
            t.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            threads = list(self._threads)
        for t in threads[2:]:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t for t in threads if t.is_alive()]
        for s in (self._udp, self._tcp):
            s.close()
        self._udp = self._tcp = None
        self._threads = []
        if alive:
            raise RuntimeError('dnsproxy: %d thread(s) did not stop within '
                               '%.0f s' % (len(alive), STOP_TIMEOUT))

    close = stop

    # -- bookkeeping ---------------------------------------------------------

    def _note(self, msg, transport):
        """Record the query; True when it is to be dropped."""
        q = question(msg)
        drop = q is not None and q[1] in self.drop_qtypes
        with self._lock:
            (self.dropped if drop else self.forwarded).append(
                (q[0], q[1], transport) if q else (None, None, transport))
        return drop

    def dropped_types(self):
        with self._lock:
            return {t for _, t, _ in self.dropped}

    # -- UDP -----------------------------------------------------------------

    def _udp_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self._udp, selectors.EVENT_READ, None)
        pending = {}    # upstream socket -> (client address, deadline)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    if key.data is None:
                        try:
                            msg, client = self._udp.recvfrom(65535)
                        except OSError:
                            continue
                        if self._note(msg, 'udp'):
                            continue
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.setblocking(False)
                        try:
                            up.connect(self.upstream)
                            up.send(msg)
                        except OSError:
                            up.close()
                            continue
                        pending[up] = (client, time.monotonic() +
                                       UPSTREAM_TIMEOUT)
                        sel.register(up, selectors.EVENT_READ, 'up')
                    else:
                        up = key.fileobj
                        client, _ = pending.pop(up)
                        sel.unregister(up)
                        try:
                            self._udp.sendto(up.recv(65535), client)
                        except OSError:
                            pass
                        up.close()
                now = time.monotonic()
                for up, (_, deadline) in list(pending.items()):
                    if now >= deadline:
                        del pending[up]
                        sel.unregister(up)
                        up.close()
        finally:
            for up in pending:
                up.close()
            sel.close()

    # -- TCP -----------------------------------------------------------------

    def _tcp_loop(self):
        self._tcp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            t = threading.Thread(target=self._tcp_conn, args=(conn,),
                                 daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _tcp_conn(self, conn):
        """One client connection: length-prefixed queries, one at a time."""
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    head = _recv_exact(conn, 2)
                except socket.timeout:
                    continue
                if head is None:
                    return
                conn.settimeout(UPSTREAM_TIMEOUT)
                msg = _recv_exact(conn, struct.unpack('!H', head)[0])
                conn.settimeout(0.2)
                if msg is None:
                    return
                if self._note(msg, 'tcp'):
                    continue
                with socket.create_connection(self.upstream,
                                              UPSTREAM_TIMEOUT) as up:
                    up.sendall(head + msg)
                    rhead = _recv_exact(up, 2)
                    if rhead is None:
                        return
                    answer = _recv_exact(up, struct.unpack('!H', rhead)[0])
                    if answer is None:
                        return
                conn.sendall(rhead + answer)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
