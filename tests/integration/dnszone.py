"""A DNSSEC-signed Knot DNS zone on loopback for integration tests (stdlib only).

    from dnszone import DnsZone

    with DnsZone([('example.test.', 'MX', '10 mx1.example.test.'),
                  ('mx1.example.test.', 'A', '127.0.0.5')]) as zone:
        keys = zone.relay_keys()   # dns_unbound_config etc. for tlsrelay.conf
        ...
        zone.set_records([...])    # replace the records; returns once served

DnsZone(records, zone='test.') makes a temporary directory, writes knot.conf
and the zone file (SOA, NS and ns.<zone> A 127.0.0.1 are added; the records
are (owner, type, rdata) or (owner, ttl, type, rdata) tuples, owners absolute
or relative to the zone), starts knotd (as a child process) on 127.0.0.1 and a free port,
waits until the zone is served signed, writes the zone's DS record as a
trust-anchor file (`keymgr ... ds`) and an unbound.conf that sends queries for
the zone to Knot and validates them with that anchor.  Knot signs the zone
itself (automatic keys), so every answer from the zone is DNSSEC-secure.

unsigned_children={'insecure.test.': [records]} adds unsigned child zones
served by the same knotd: the parent delegates to them without a DS record
(a signed proof that there is none), so their answers are DNSSEC-insecure
(RFC 4035 section 5.2), and unbound.conf gets a stub zone for each.

bogus_children={'bogus.test.': [records]} adds child zones that Knot signs
with their own keys, while the parent publishes a DS record for each that
does not match (the child's real SHA-256 DS with its last hex digit
changed): every answer from such a child is DNSSEC-bogus.  start() returns
once the parent serves that DS, signed.

TLSA records for a certificate: tlsa_rdata(cert, usage, selector, mtype)
gives the rdata text ('3 1 1 AB12...') for a PEM file (or a certs.Cert, or
DER bytes); tlsa_owner(host, port) the owner name '_PORT._tcp.HOST.'.

A resolver that must not reach Knot directly (e.g. through dnsproxy.py):
write_unbound_conf(path, stub_port=PORT) points every stub zone at
127.0.0.1@PORT instead.

signed=False serves the zone without DNSSEC (no keys, no signatures, no
trust anchor): a stand-in for a resolver that strips DNSSEC records, when
it is a forwarder for a relay that holds the signed zone's anchor.

Pass testcase=self (unittest) to have the server stopped at cleanup; or use
the object as a context manager; or call close().  Set TLSRELAY_KEEP_TMP=1 to
keep the directory (knot.log, zone file) for inspection.

Facts this relies on (see shared/TESTING.md): libunbound treats `test.` as a
local NXDOMAIN zone unless `local-zone: "test." nodefault`; it refuses to
query 127.0.0.1 unless `do-not-query-localhost: no`; Knot listens for knotc
on knot.sock in its rundir (the temporary directory).
"""

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

KNOTD = shutil.which('knotd') or '/usr/sbin/knotd'
KNOTC = shutil.which('knotc') or '/usr/sbin/knotc'
KEYMGR = shutil.which('keymgr') or '/usr/sbin/keymgr'
KDIG = shutil.which('kdig') or '/usr/bin/kdig'
KEEP_TMP = os.environ.get('TLSRELAY_KEEP_TMP') == '1'

START_TIMEOUT = 15.0
RELOAD_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def available():
    """True when Knot DNS (knot) and kdig (knot-dnsutils) are installed."""
    return all(os.access(p, os.X_OK) for p in (KNOTD, KNOTC, KEYMGR, KDIG))


def require_knot():
    """Exit 77 (meson's "skip") when Knot DNS is not installed."""
    if not available():
        sys.stderr.write('knot / knot-dnsutils not installed; skipping\n')
        sys.exit(77)


def free_dns_port():
    """A port on 127.0.0.1 free for both UDP and TCP right now."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(('127.0.0.1', 0))
            port = t.getsockname()[1]
            u.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError('no free port for a DNS server')


# -- TLSA rdata for a certificate (RFC 6698) ---------------------------------

PEM_CERT_RE = re.compile(r'-----BEGIN CERTIFICATE-----(.+?)'
                         r'-----END CERTIFICATE-----', re.S)


def cert_der(cert):
    """The DER of a certificate: cert is DER bytes, a certs.Cert (its .cert
    file), or the path of a PEM file (the first certificate in it: a chain
    file gives its leaf) or of a DER file."""
    if isinstance(cert, (bytes, bytearray)):
        return bytes(cert)
    path = getattr(cert, 'cert', cert)
    with open(path, 'rb') as f:
        data = f.read()
    m = PEM_CERT_RE.search(data.decode('ascii', 'replace'))
    if m:
        return base64.b64decode(''.join(m.group(1).split()))
    return data


def _der_tlv(data, pos):
    """(tag, start of value, end of value) of the DER element at pos."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0 or count > 4:
            raise ValueError('unsupported DER length')
        n = int.from_bytes(data[pos:pos + count], 'big')
        pos += count
    if pos + n > len(data):
        raise ValueError('truncated DER')
    return tag, pos, pos + n


def spki_der(der):
    """The SubjectPublicKeyInfo (DER) of a certificate (DER): the 7th
    element of tbsCertificate, counting the optional [0] version."""
    tag, s, _ = _der_tlv(der, 0)            # Certificate
    if tag != 0x30:
        raise ValueError('not a certificate')
    tag, s, _ = _der_tlv(der, s)            # tbsCertificate
    if tag != 0x30:
        raise ValueError('no tbsCertificate')
    pos = s
    tag, _, end = _der_tlv(der, pos)
    if tag == 0xA0:                         # version
        pos = end
    # serialNumber, signature, issuer, validity, subject
    for _ in range(5):
        _, _, pos = _der_tlv(der, pos)
    tag, _, end = _der_tlv(der, pos)
    if tag != 0x30:
        raise ValueError('no SubjectPublicKeyInfo')
    return der[pos:end]


def tlsa_data(cert, selector=1, mtype=1):
    """The association data (bytes) of a TLSA record for cert: selector
    0 = the full certificate, 1 = its SubjectPublicKeyInfo; matching type
    0 = the data itself, 1 = SHA-256, 2 = SHA-512."""
    der = cert_der(cert)
    data = spki_der(der) if selector == 1 else der
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def tlsa_rdata(cert, usage=3, selector=1, mtype=1):
    """TLSA rdata text for a zone file, e.g. '3 1 1 5E0A...' (usage 3 =
    DANE-EE, 2 = DANE-TA: then cert is the trust anchor's certificate)."""
    return '%d %d %d %s' % (usage, selector, mtype,
                            tlsa_data(cert, selector, mtype).hex().upper())


def tlsa_owner(host, port=25):
    """'_PORT._tcp.HOST.': where a TLSA RRset for an SMTP server lives."""
    return '_%d._tcp.%s.' % (port, host.rstrip('.'))


def _absolute(name, zone):
    """name as a fully qualified name ('@' is the zone apex)."""
    if name == '@':
        return zone
    if name.endswith('.'):
        return name
    return '%s.%s' % (name, zone)


class DnsZone:
    """One knotd serving one signed zone on 127.0.0.1@port."""

    def __init__(self, records=(), zone='test.', testcase=None, start=True,
                 ttl=5, unsigned_children=None, bogus_children=None,
                 signed=True):
        if not zone.endswith('.'):
            zone += '.'
        self.zone = zone
        self.signed = signed
        self.children = {_absolute(c, zone): list(r)
                         for c, r in (unsigned_children or {}).items()}
        self.bogus = {_absolute(c, zone): list(r)
                      for c, r in (bogus_children or {}).items()}
        # The DS record the parent publishes for each bogus child (wrong
        # digest), known once the child's keys exist; the child's real one.
        self.bogus_ds = {}
        self.real_ds = {}
        self.ttl = ttl
        self.records = list(records)
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-dns-')
        self.port = free_dns_port()
        self.conf = os.path.join(self.dir, 'knot.conf')
        self.zone_file = os.path.join(self.dir, '%szone' % zone)
        self.log_path = os.path.join(self.dir, 'knot.log')
        self.ta_file = os.path.join(self.dir, 'trust-anchor.ds')
        self.unbound_conf = os.path.join(self.dir, 'unbound.conf')
        self.serial = 1
        self.ds = None
        self.proc = None
        self._out = None
        if testcase is not None:
            testcase.addCleanup(self.close)
        if start:
            self.start()

    # -- context manager ---------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- files ---------------------------------------------------------------

    def _write_knot_conf(self):
        d = self.dir
        text = '\n'.join([
            'server:',
            '    listen: 127.0.0.1@%d' % self.port,
            '    rundir: "%s"' % d,
            'database:',
            '    storage: "%s"' % os.path.join(d, 'db'),
            'template:',
            '  - id: default',
            '    storage: "%s"' % d,
            '    file: "%s.zone"',
            '    dnssec-signing: %s' % ('on' if self.signed else 'off'),
            '    zonefile-sync: -1',
            'zone:',
            '  - domain: %s' % self.zone,
        ] + [l for c in self.children for l in (
            '  - domain: %s' % c,
            '    dnssec-signing: off',
        )] + [l for c in self.bogus for l in (
            '  - domain: %s' % c,
        )] + [
            'log:',
            '  - target: "%s"' % self.log_path,
            '    any: info',
            '',
        ])
        os.makedirs(os.path.join(d, 'db'), exist_ok=True)
        with open(self.conf, 'w') as f:
            f.write(text)

    def _write_zone(self):
        z = self.zone
        lines = [
            '$ORIGIN %s' % z,
            '$TTL %d' % self.ttl,
            '@ SOA ns.%s hostmaster.%s %d 3600 600 86400 %d'
            % (z, z, self.serial, self.ttl),
            '@ NS ns.%s' % z,
            'ns.%s A 127.0.0.1' % z,
        ]
        # The delegations to the unsigned children: NS, and no DS.
        lines += ['%s NS ns.%s' % (c, z) for c in self.children]
        # The delegations to the bogus children: NS, and a DS that does not
        # match (once the child's key is known, see _add_bogus_ds()).
        lines += ['%s NS ns.%s' % (c, z) for c in self.bogus]
        lines += ['%s DS %s' % (c, ds) for c, ds in self.bogus_ds.items()]
        self._write_zone_file(self.zone_file, z, lines, self.records)
        for c, recs in list(self.children.items()) + list(self.bogus.items()):
            head = ['$ORIGIN %s' % c, '$TTL %d' % self.ttl,
                    '@ SOA ns.%s hostmaster.%s 1 3600 600 86400 %d'
                    % (z, z, self.ttl),
                    '@ NS ns.%s' % z]
            self._write_zone_file(os.path.join(self.dir, '%szone' % c), c,
                                  head, recs)

    @staticmethod
    def _write_zone_file(path, z, lines, records):
        lines = list(lines)
        for rec in records:
            if len(rec) == 3:
                owner, rtype, rdata = rec
                ttl = ''
            else:
                owner, ttl, rtype, rdata = rec
                ttl = '%d ' % ttl
            lines.append('%s %s%s %s' % (_absolute(owner, z), ttl, rtype, rdata))
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.replace(tmp, path)

    def write_unbound_conf(self, path=None, trust_anchor_file=None,
                           extra_server=(), stub_port=None):
        """Write an unbound.conf for dns_unbound_config (default: the one at
        self.unbound_conf, with the zone's real trust anchor).  Variants for
        a test: another trust_anchor_file (e.g. bad_trust_anchor()), more
        `server:` lines, or stub_port: send the queries to 127.0.0.1 at that
        port (a dnsproxy.DnsProxy in front of Knot) instead of to Knot.
        Returns the path."""
        path = path or self.unbound_conf
        stub_port = stub_port or self.port
        ta = trust_anchor_file or self.ta_file
        lines = [
            'server:',
            # The stub server is on 127.0.0.1, which unbound skips by default.
            '    do-not-query-localhost: no',
            # test. (RFC 6761) is a built-in NXDOMAIN zone; harmless for others.
            '    local-zone: "%s" nodefault' % self.zone,
            '    trust-anchor-file: "%s"' % ta,
            '    module-config: "validator iterator"',
        ]
        lines += ['    %s' % l for l in extra_server]
        for z in [self.zone] + list(self.children) + list(self.bogus):
            lines += [
                'stub-zone:',
                '    name: "%s"' % z,
                '    stub-addr: 127.0.0.1@%d' % stub_port,
            ]
        lines.append('')
        with open(path, 'w') as f:
            f.write('\n'.join(lines))
        return path

    def bad_trust_anchor(self, path=None):
        """A DS trust anchor for the zone with a wrong digest (last hex digit
        changed): answers validated against it are bogus.  Returns the path."""
        path = path or os.path.join(self.dir, 'bad-anchor.ds')
        fields = self.ds.split()
        digest = fields[-1]
        fields[-1] = digest[:-1] + ('0' if digest[-1] != '0' else '1')
        with open(path, 'w') as f:
            f.write(' '.join(fields) + '\n')
        return path

    def relay_keys(self):
        """tlsrelay.conf keys that make the relay resolve the zone here."""
        return {
            'dns_unbound_config': self.unbound_conf,
            'dns_trust_anchor_file': self.ta_file,
        }

    # -- process control -----------------------------------------------------

    def _run(self, args, timeout=10):
        return subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              encoding='utf-8', errors='replace',
                              timeout=timeout)

    def knotc(self, *args):
        return self._run([KNOTC, '-c', self.conf] + list(args))

    def log_text(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def _out_text(self):
        try:
            with open(os.path.join(self.dir, 'knotd.out'), errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def start(self):
        assert self.proc is None, 'already started'
        self._write_knot_conf()
        self._write_zone()
        # In the foreground (no -d) knotd stays our child: we learn its exit
        # and reap it, where a daemon would linger as a zombie under a PID 1
        # that does not reap (containers).
        self._out = open(os.path.join(self.dir, 'knotd.out'), 'ab')
        self.proc = subprocess.Popen([KNOTD, '-c', self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out)
        try:
            self._wait_served(self.serial)
            for c in self.children:
                self._wait_child(c)
            for c in self.bogus:
                self._wait_served(1, zone=c)
            if self.bogus:
                self._add_bogus_ds()
            if self.signed:
                self._write_trust_anchor()
                self.write_unbound_conf()
        except BaseException:
            self.stop()
            raise

    def keymgr_ds(self, zone=None):
        """The SHA-256 DS record of a zone Knot signs, as keymgr prints it
        ('test. DS 12345 13 2 HEX')."""
        zone = zone or self.zone
        r = self._run([KEYMGR, '-c', self.conf, zone, 'ds'])
        lines = [l.strip() for l in r.stdout.splitlines() if ' DS ' in l]
        if r.returncode != 0 or not lines:
            raise RuntimeError('keymgr ds %s failed (%d): %s%s'
                               % (zone, r.returncode, r.stdout, r.stderr))
        # The first line is the SHA-256 digest, which every validator knows.
        return lines[0]

    def _write_trust_anchor(self):
        self.ds = self.keymgr_ds()
        with open(self.ta_file, 'w') as f:
            f.write(self.ds + '\n')

    def _add_bogus_ds(self):
        """Publish in the parent, for each bogus child, its real DS with the
        digest's last hex digit changed (key tag and algorithm still right,
        so a validator finds the key and then the mismatch), and wait until
        the parent serves it signed."""
        for c in self.bogus:
            real = self.keymgr_ds(c)
            rdata = real.split(' DS ', 1)[1].split()
            self.real_ds[c] = ' '.join(rdata)
            digest = rdata[-1]
            rdata[-1] = digest[:-1] + ('0' if digest[-1] != '0' else '1')
            self.bogus_ds[c] = ' '.join(rdata)
        self._reload()
        for c, ds in self.bogus_ds.items():
            want = ds.upper().split()
            deadline = time.monotonic() + RELOAD_TIMEOUT
            while [l.upper().split() for l in self.query(c, 'DS')] != [want]:
                if time.monotonic() >= deadline:
                    raise RuntimeError('parent does not serve DS %s for %s '
                                       'within %.0f s (serves %s); log:\n%s'
                                       % (ds, c, RELOAD_TIMEOUT,
                                          self.query(c, 'DS'),
                                          self.log_text()))
                time.sleep(0.05)

    def served_serial(self, zone=None):
        """The SOA serial Knot serves for the zone (default: the main one),
        if the SOA is signed (or the zone is meant to be unsigned); else
        None."""
        try:
            r = self._run([KDIG, '@127.0.0.1', '-p', str(self.port),
                           '+dnssec', '+short', '+timeout=1', '+retry=0',
                           'SOA', zone or self.zone], timeout=5)
        except subprocess.TimeoutExpired:
            return None
        serial = None
        signed = False
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 7 and f[0] == 'ns.' + self.zone:
                serial = int(f[2])
            elif f and f[0] == 'SOA':
                signed = True
        return serial if signed or not self.signed else None

    def _wait_served(self, serial, timeout=START_TIMEOUT, zone=None):
        """Until Knot serves a signed SOA with at least this serial (for
        the main zone, or the given one)."""
        zone = zone or self.zone
        deadline = time.monotonic() + timeout
        while True:
            got = self.served_serial(zone)
            if got is not None and got >= serial:
                return got
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError('knotd exited with %s; log:\n%s%s'
                                   % (self.proc.returncode, self.log_text(),
                                      self._out_text()))
            if time.monotonic() >= deadline:
                raise RuntimeError('zone %s not served signed with serial >= %d '
                                   'within %.0f s (got %s); log:\n%s'
                                   % (zone, serial, timeout, got,
                                      self.log_text()))
            time.sleep(0.05)

    def _wait_child(self, child, timeout=START_TIMEOUT):
        """Until Knot serves the (unsigned) child zone's SOA."""
        deadline = time.monotonic() + timeout
        while not any(l.split()[:1] == ['ns.' + self.zone]
                      for l in self.query(child, 'SOA')):
            if time.monotonic() >= deadline:
                raise RuntimeError('zone %s not served within %.0f s; log:\n%s'
                                   % (child, timeout, self.log_text()))
            time.sleep(0.05)

    def set_records(self, records):
        """Replace the zone's records (SOA/NS stay), reload Knot and return
        once the new version is served, signed."""
        self.records = list(records)
        self._reload()

    def _reload(self):
        """Write the zone files again and have Knot serve the new version."""
        # Knot bumps the serial when it signs; start above what it serves.
        current = self.served_serial() or self.serial
        self.serial = max(self.serial, current) + 1
        self._write_zone()
        r = self.knotc('zone-reload', self.zone)
        if r.returncode != 0:
            raise RuntimeError('knotc zone-reload failed (%d): %s%s'
                               % (r.returncode, r.stdout, r.stderr))
        self._wait_served(self.serial, RELOAD_TIMEOUT)

    def query(self, name, rtype='A'):
        """kdig +short answer lines for name/rtype (for debugging tests)."""
        r = self._run([KDIG, '@127.0.0.1', '-p', str(self.port), '+short',
                       '+timeout=1', '+retry=0', rtype, name], timeout=5)
        return r.stdout.splitlines()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stop knotd: knotc stop, then SIGTERM, then SIGKILL; reaped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.knotc('stop')
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self.proc.wait(STOP_TIMEOUT / 2)
                break
            except subprocess.TimeoutExpired:
                self.proc.send_signal(sig)
        self.proc.wait(STOP_TIMEOUT / 2)
        self.proc = None
        self._out.close()

    def close(self):
        try:
            self.stop()
        finally:
            if KEEP_TMP:
                sys.stderr.write('kept %s\n' % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

