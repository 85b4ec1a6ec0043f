"""Hostile MX hosts for the hardening tests: many listening sockets in one
thread, counting the connections they take.

Modes:
  'close'   accept and close at once (no greeting);
  'tarpit'  accept and never say anything (the relay's greeting timeout);
  'close-after'  accept, say nothing, close after `delay` seconds;
  'no-tls'  greet 220, answer EHLO with 250 (no STARTTLS), QUIT with 221.

Every socket is bound to a loopback address; stop() closes them all.
"""

import selectors
import socket
import threading
import time


class TcpPeers:
    def __init__(self, testcase, addrs, port, mode='close', delay=1.0):
        self.mode = mode
        self.delay = delay
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.accepted = {}           # address -> number of connections taken
        self.conns = {}              # socket -> (deadline or None, buffer)
        self.listeners = []
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a, port))
            s.listen(256)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, ('listen', a))
            self.listeners.append(s)
            self.accepted[a] = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.stop)

    def total(self):
        with self.lock:
            return sum(self.accepted.values())

    def open_now(self):
        with self.lock:
            return len(self.conns)

    def _close(self, c):
        try:
            self.sel.unregister(c)
        except (KeyError, ValueError):
            pass
        c.close()
        with self.lock:
            self.conns.pop(c, None)

    def _accept(self, s, addr):
        try:
            c, _ = s.accept()
        except OSError:
            return
        with self.lock:
            self.accepted[addr] += 1
        if self.mode == 'close':
            c.close()
            return
        c.setblocking(False)
        deadline = time.monotonic() + self.delay if self.mode == 'close-after' else None
        with self.lock:
            self.conns[c] = [deadline, b'']
        self.sel.register(c, selectors.EVENT_READ, ('conn', addr))
        if self.mode == 'no-tls':
            c.send(b'220 hostile.test ESMTP\r\n')

    def _read(self, c):
        try:
            data = c.recv(4096)
        except OSError:
            data = b''
        if not data:
            self._close(c)
            return
        if self.mode != 'no-tls':
            return  # tarpits read and say nothing
        with self.lock:
            st = self.conns.get(c)
            if st is None:
                return
            st[1] += data
            buf = st[1]
        while b'\r\n' in buf:
            line, buf = buf.split(b'\r\n', 1)
            verb = line[:4].upper()
            if verb in (b'EHLO', b'HELO'):
                c.send(b'250 hostile.test\r\n')
            elif verb == b'QUIT':
                c.send(b'221 bye\r\n')
                self._close(c)
                return
            else:
                c.send(b'502 no\r\n')
        with self.lock:
            if c in self.conns:
                self.conns[c][1] = buf

    def _run(self):
        while not self.stopping:
            for key, _ in self.sel.select(0.1):
                kind, addr = key.data
                if kind == 'listen':
                    self._accept(key.fileobj, addr)
                else:
                    self._read(key.fileobj)
            now = time.monotonic()
            with self.lock:
                due = [c for c, st in self.conns.items()
                       if st[0] is not None and st[0] <= now]
            for c in due:
                self._close(c)

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.thread.join(5)
        for c in list(self.conns):
            self._close(c)
        for s in self.listeners:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.sel.close()
