"""relay/dns.c (libunbound on libuv) against a DNSSEC-signed Knot DNS zone.

The C driver $TLSRELAY_TEST_DNS (tests/unit/test_dns.c) reads a tlsrelay
configuration, runs the lookups named on its command line at the same time
and prints one line per lookup:

    mx NAME status=OK secure=1 implicit=0 null_mx=0 hosts=10:a,20:b ms=N why=...
    addrs NAME status=OK secure=1 secure6=1 secure4=1 addrs=::1,127.0.0.5 canon=- ms=N why=...
    tlsa NAME status=OK secure=1 n=1 dropped=0 rdata=35:030101AB... ms=N why=...
    txt NAME status=OK secure=1 n=1 dropped=0 rdata=21:14763D53... ms=N why=...

Lines starting with FAIL are broken promises of dns.h (callback inside the
starting call, twice, or after cancel; the loop not closing after dns_free).
"""

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
import dnsproxy  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402

TEST_DNS = (os.environ.get('TLSRELAY_TEST_DNS') or
            '/work/main/build/tests/test_dns')

SANITIZER_MARKERS = harness.SANITIZER_MARKERS

# The zone every test reads from (test. is signed by Knot itself).
RECORDS = [
    # MX by preference, listed out of order on purpose.
    ('pref.test.', 'MX', '30 mx3.pref.test.'),
    ('pref.test.', 'MX', '10 mx1.pref.test.'),
    ('pref.test.', 'MX', '20 mx2.pref.test.'),
    # One best host, then three of equal preference.
    ('equal.test.', 'MX', '5 first.equal.test.'),
    ('equal.test.', 'MX', '10 a.equal.test.'),
    ('equal.test.', 'MX', '10 b.equal.test.'),
    ('equal.test.', 'MX', '10 c.equal.test.'),
    # No MX at all, an address only: the implicit MX (RFC 5321 5.1).
    ('implicit.test.', 'A', '127.0.0.7'),
    # RFC 7505 null MX; a "." next to a real MX; a "." with preference 10.
    ('null.test.', 'MX', '0 .'),
    ('mixed-null.test.', 'MX', '0 .'),
    ('mixed-null.test.', 'MX', '10 mx1.pref.test.'),
    ('root-only.test.', 'MX', '10 .'),
    # An exchange name no host can have (a space in a label) is skipped.
    ('weird.test.', 'MX', '10 bad\\032name.test.'),
    ('weird.test.', 'MX', '20 mx2.pref.test.'),
    ('all-weird.test.', 'MX', '10 bad\\032name.test.'),
    # Addresses of both families, one family, a CNAME, many.
    ('both.test.', 'A', '127.0.0.5'),
    ('both.test.', 'AAAA', '::1'),
    ('v4.test.', 'A', '127.0.0.6'),
    ('v6.test.', 'AAAA', '::1'),
    ('alias.test.', 'CNAME', 'both.test.'),
    ('alias-mx.test.', 'CNAME', 'pref.test.'),
    # Internationalised names, stored as A-labels: bücher.test (MX),
    # münchen.test (address), faß.test (IDNA2008 keeps the sharp s; the
    # transitional form fass.test exists too, pointing elsewhere).
    ('xn--bcher-kva.test.', 'MX', '10 mx1.pref.test.'),
    ('xn--mnchen-3ya.test.', 'A', '127.0.0.8'),
    ('xn--fa-hia.test.', 'A', '127.0.0.9'),
    ('fass.test.', 'A', '127.0.0.10'),
] + [('many.test.', 'A', '127.0.0.%d' % i) for i in range(10, 30)] + [
    ('many.test.', 'AAAA', '::1'),
]

# TLSA (RFC 6698): a DANE-EE and a DANE-TA record for mx.test; a name with
# other data only (NODATA); one record of the largest size kept (3 + 4096
# octets) next to one an octet larger; more records than DNS_TLSA_MAX.
TLSA_EE = '3 1 1 ' + 'AB' * 32
TLSA_TA = '2 0 1 ' + ''.join('%02X' % i for i in range(32))
TLSA_MAX_DATA = 4096  # DNS_TLSA_RDATA_MAX - 3
RECORDS += [
    ('_25._tcp.mx.test.', 'TLSA', TLSA_EE),
    ('_25._tcp.mx.test.', 'TLSA', TLSA_TA),
    ('mx.test.', 'A', '127.0.0.5'),
    ('_25._tcp.nodata.test.', 'TXT', '"no TLSA here"'),
    ('_25._tcp.big.test.', 'TLSA', '3 0 0 ' + '11' * TLSA_MAX_DATA),
    ('_25._tcp.big.test.', 'TLSA', '3 0 0 ' + '22' * (TLSA_MAX_DATA + 1)),
] + [('_25._tcp.manytlsa.test.', 'TLSA', '3 1 1 %064X' % i)
     for i in range(34)]

# TXT (MTA-STS, TLS-RPT): one record; one split into character-strings;
# raw octets (NUL, 0xFF) that must come through as they are; an address
# only (NODATA); the largest rdata kept (16 strings of 255 octets = 4096
# octets of rdata) next to one an octet larger; more than DNS_TXT_MAX.
TXT_STS = '"v=STSv1; id=20240101"'
TXT_SPLIT = '"v=STSv1; " "id=abc"'
TXT_RPT = '"v=TLSRPTv1; rua=mailto:tlsrpt@x.test"'
TXT_RAW = '"a\\000b" "\\255"'
TXT_BIG = ' '.join(['"%s"' % ('a' * 255)] * 16)
TXT_BIGGER = TXT_BIG + ' ""'
RECORDS += [
    ('_mta-sts.x.test.', 'TXT', TXT_STS),
    ('_smtp._tls.x.test.', 'TXT', TXT_RPT),
    ('_mta-sts.split.test.', 'TXT', TXT_SPLIT),
    ('raw.test.', 'TXT', TXT_RAW),
    ('_mta-sts.notxt.test.', 'A', '127.0.0.5'),
    ('_mta-sts.bigtxt.test.', 'TXT', TXT_BIG),
    ('_mta-sts.bigtxt.test.', 'TXT', TXT_BIGGER),
] + [('_mta-sts.manytxt.test.', 'TXT', '"v=STSv1; id=n%02d"' % i)
     for i in range(20)]

# An unsigned child zone under an insecure delegation (no DS in test.).
UNSIGNED_CHILDREN = {'insecure.test.': [
    ('_mta-sts.insecure.test.', 'TXT', TXT_STS),
    ('_25._tcp.mx.insecure.test.', 'TLSA', TLSA_EE),
    ('mx.insecure.test.', 'A', '127.0.0.5'),
    ('mx.insecure.test.', 'AAAA', '::1'),
]}


def rdata_hex(text):
    """'3 1 1 ABCD' -> the driver's 'LEN:HEX' for that rdata."""
    f = text.split()
    data = ''.join(f[3:])
    return '%d:%02X%02X%02X%s' % (3 + len(data) // 2, int(f[0]), int(f[1]),
                                  int(f[2]), data)


def txt_hex(*strings):
    """Character-strings (bytes) -> the driver's 'LEN:HEX' of their rdata."""
    wire = b''.join(bytes([len(x)]) + x for x in strings)
    return '%d:%s' % (len(wire), wire.hex().upper())


def parse_line(line):
    """'mx NAME k=v k=v ... why=TEXT' -> dict with kind, name and the keys."""
    head, _, why = line.partition(' why=')
    f = head.split()
    out = {'kind': f[0], 'name': f[1], 'why': why}
    for kv in f[2:]:
        k, _, v = kv.partition('=')
        out[k] = v
    return out


class DnsTestBase(unittest.TestCase):
    zone = None

    @classmethod
    def setUpClass(cls):
        dnszone.require_knot()
        if not os.access(TEST_DNS, os.X_OK):
            raise unittest.SkipTest('test_dns not built at %s' % TEST_DNS)
        cls.zone = dnszone.DnsZone(RECORDS,
                                   unsigned_children=UNSIGNED_CHILDREN)
        cls.addClassCleanup(cls.zone.close)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='tlsrelay-dnstest-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def config(self, name='relay.conf', **keys):
        """A tlsrelay.conf resolving through the zone unless keys say else.
        The default dns_servers is an unused port: only the stub zone for
        test. answers, nothing leaves the machine."""
        k = {
            'dns_servers': '127.0.0.1@%d' % harness.unused_udp_port(),
            'dns_unbound_config': self.zone.unbound_conf,
            'dns_trust_anchor_file': self.zone.ta_file,
        }
        k.update(keys)
        path = os.path.join(self.dir, name)
        harness.write_config(path, {a: b for a, b in k.items()
                                    if b is not None})
        return path

    def run_dns(self, conf, lookups, timeout_ms=None, free_after=None,
                want_rc=0, limit=60):
        """Run the driver; returns (lines parsed, elapsed seconds)."""
        args = [TEST_DNS, '-c', conf]
        if timeout_ms is not None:
            args += ['-t', str(timeout_ms)]
        if free_after is not None:
            args += ['-f', str(free_after)]
        t0 = time.monotonic()
        r = subprocess.run(args + list(lookups), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding='utf-8', errors='replace', timeout=limit)
        took = time.monotonic() - t0
        for m in SANITIZER_MARKERS:
            self.assertNotIn(m, r.stderr, r.stderr)
        self.assertNotRegex(r.stdout, r'(?m)^FAIL', r.stdout)
        self.assertEqual(r.returncode, want_rc, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(lookups), r.stdout)
        return [parse_line(l) if ' status=' in l else l for l in lines], took

    def one(self, conf, lookup, **kw):
        lines, _ = self.run_dns(conf, [lookup], **kw)
        return lines[0]


class MxLookups(DnsTestBase):

    def test_mx_by_preference(self):
        r = self.one(self.config(), 'mx:pref.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertEqual(r['hosts'], '10:mx1.pref.test,20:mx2.pref.test,'
                                     '30:mx3.pref.test')
        self.assertEqual((r['secure'], r['implicit'], r['null_mx']),
                         ('1', '0', '0'))
        self.assertEqual(r['why'], '')

    def test_trailing_dot_and_case(self):
        r = self.one(self.config(), 'mx:PREF.test.')
        self.assertEqual(r['status'], 'OK', r)
        # Names keep the case they arrive in; here Knot compresses the
        # exchange against the question, so it echoes the asker's case.
        self.assertEqual(r['hosts'].split(',')[0].lower(), '10:mx1.pref.test')

    def test_equal_preferences_in_both_orders(self):
        lines, _ = self.run_dns(self.config(), ['mx:equal.test'] * 40)
        orders = set()
        for r in lines:
            self.assertEqual(r['status'], 'OK', r)
            hosts = r['hosts'].split(',')
            self.assertEqual(hosts[0], '5:first.equal.test', r)
            self.assertEqual(sorted(hosts[1:]), ['10:a.equal.test',
                                                 '10:b.equal.test',
                                                 '10:c.equal.test'])
            orders.add(tuple(hosts[1:]))
        # Uniform shuffling: 40 draws of 6 orders leave one out with
        # probability < 1e-3; a fixed order shows as exactly one.
        pairs = {(o.index('10:a.equal.test') < o.index('10:b.equal.test'))
                 for o in orders}
        self.assertEqual(pairs, {True, False}, orders)
        self.assertGreaterEqual(len(orders), 4, orders)

    def test_implicit_mx(self):
        r = self.one(self.config(), 'mx:implicit.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertEqual(r['implicit'], '1')
        self.assertEqual(r['hosts'], '0:implicit.test')
        self.assertEqual(r['secure'], '1')

    def test_null_mx(self):
        r = self.one(self.config(), 'mx:null.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertEqual((r['null_mx'], r['implicit'], r['hosts']),
                         ('1', '0', ''))
        self.assertIn('nullMX', r['why'])

    def test_root_exchange_beside_other_mx_is_skipped(self):
        lines, _ = self.run_dns(self.config(), ['mx:mixed-null.test',
                                                'mx:root-only.test'])
        self.assertEqual((lines[0]['status'], lines[0]['null_mx'],
                          lines[0]['hosts']),
                         ('OK', '0', '10:mx1.pref.test'))
        # Not RFC 7505's "0 .", and no host either: defer, do not bounce.
        self.assertEqual((lines[1]['status'], lines[1]['null_mx'],
                          lines[1]['hosts']), ('TEMPFAIL', '0', ''))
        self.assertIn('no usable host', lines[1]['why'])

    def test_unreadable_exchange_is_skipped(self):
        lines, _ = self.run_dns(self.config(), ['mx:weird.test',
                                                'mx:all-weird.test'])
        self.assertEqual((lines[0]['status'], lines[0]['hosts']),
                         ('OK', '20:mx2.pref.test'))
        self.assertEqual(lines[1]['status'], 'TEMPFAIL', lines[1])

    def test_nxdomain(self):
        r = self.one(self.config(), 'mx:nowhere.test')
        self.assertEqual(r['status'], 'NXDOMAIN', r)
        self.assertEqual(r['secure'], '1')  # a validated denial
        # The caller's sentence names the name and type; dns says only this.
        self.assertEqual(r['why'], 'Host not found')

    def test_cname_to_mx(self):
        r = self.one(self.config(), 'mx:alias-mx.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertTrue(r['hosts'].startswith('10:mx1.pref.test'), r)

    def test_bad_names_refused_at_once(self):
        lines, _ = self.run_dns(self.config(),
                                ['mx:bad..name', 'mx:', 'addrs:sp ace.test'])
        for l in lines:
            self.assertRegex(l, r'error=-22\b')


class InternationalNames(DnsTestBase):
    """UTF-8 names are looked up by their A-labels (IDNA2008)."""

    def test_u_labels_resolve_as_a_labels(self):
        lines, _ = self.run_dns(self.config(), [
            'mx:b\u00fccher.test', 'addrs:m\u00fcnchen.test',
            'addrs:fa\u00df.test', 'addrs:M\u00dcNCHEN.test'])
        self.assertEqual((lines[0]['status'], lines[0]['hosts']),
                         ('OK', '10:mx1.pref.test'), lines[0])
        self.assertEqual((lines[1]['status'], lines[1]['addrs']),
                         ('OK', '127.0.0.8'), lines[1])
        # Nontransitional: xn--fa-hia, not fass.
        self.assertEqual((lines[2]['status'], lines[2]['addrs']),
                         ('OK', '127.0.0.9'), lines[2])
        # UTS 46 mapping, as Postfix: upper case is folded first.
        self.assertEqual((lines[3]['status'], lines[3]['addrs']),
                         ('OK', '127.0.0.8'), lines[3])

    def test_unconvertible_name_fails_permanently(self):
        # A label that starts with a combining mark (RFC 5891 4.2.3.2);
        # bytes that are not UTF-8 at all.
        lines, took = self.run_dns(self.config(), [
            'mx:\u0301a.test', 'addrs:\u0301a.test', 'mx:caf\udcff.test'])
        for r in lines:
            self.assertEqual(r['status'], 'NXDOMAIN', r)
            self.assertIn('Host not found (not a valid internationalized '
                          'domain name: ', r['why'])
        self.assertLess(took, 10)


class AddressLookups(DnsTestBase):

    def test_both_families_ipv6_first(self):
        r = self.one(self.config(), 'addrs:both.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertEqual(r['addrs'], '::1,127.0.0.5')
        self.assertEqual(r['secure'], '1')

    def test_one_family(self):
        lines, _ = self.run_dns(self.config(), ['addrs:v4.test',
                                                'addrs:v6.test'])
        self.assertEqual((lines[0]['status'], lines[0]['addrs']),
                         ('OK', '127.0.0.6'))
        self.assertEqual((lines[1]['status'], lines[1]['addrs']),
                         ('OK', '::1'))
        self.assertEqual([l['secure'] for l in lines], ['1', '1'])

    def test_cname_to_address(self):
        r = self.one(self.config(), 'addrs:alias.test')
        self.assertEqual(r['status'], 'OK', r)
        self.assertEqual(r['addrs'], '::1,127.0.0.5')
        self.assertEqual(r['secure'], '1')
        # DANE looks for TLSA records at the end of the chain first.
        self.assertEqual(r['canon'], 'both.test')
        self.assertEqual(self.one(self.config(), 'addrs:both.test')['canon'], '-')

    def test_capped(self):
        r = self.one(self.config(), 'addrs:many.test')
        addrs = r['addrs'].split(',')
        self.assertEqual(len(addrs), 16, r)  # DNS_ADDR_MAX
        self.assertEqual(addrs[0], '::1')
        self.assertTrue(all(a.startswith('127.0.0.') for a in addrs[1:]))

    def test_nxdomain_and_nodata(self):
        lines, _ = self.run_dns(self.config(), ['addrs:nowhere.test',
                                                'addrs:pref.test'])
        self.assertEqual(lines[0]['status'], 'NXDOMAIN', lines[0])
        self.assertEqual(lines[1]['status'], 'NODATA', lines[1])
        self.assertEqual([l['addrs'] for l in lines], ['', ''])
        self.assertEqual([l['secure'] for l in lines], ['1', '1'])


class TlsaLookups(DnsTestBase):
    """dns_tlsa(): the result classes DANE needs (RFC 7672 section 2.2)."""

    def test_secure_records_exact_rdata(self):
        r = self.one(self.config(), 'tlsa:_25._tcp.mx.test')
        self.assertEqual((r['status'], r['secure'], r['n'], r['dropped']),
                         ('OK', '1', '2', '0'), r)
        self.assertEqual(sorted(r['rdata'].split(',')),
                         sorted([rdata_hex(TLSA_TA), rdata_hex(TLSA_EE)]))
        self.assertEqual(r['why'], '')

    def test_secure_denials(self):
        lines, _ = self.run_dns(self.config(), [
            'tlsa:_25._tcp.nodata.test', 'tlsa:mx.test',
            'tlsa:_25._tcp.nowhere.test', 'tlsa:_587._tcp.mx.test'])
        self.assertEqual([(l['status'], l['secure'], l['n']) for l in lines],
                         [('NODATA', '1', '0'), ('NODATA', '1', '0'),
                          ('NXDOMAIN', '1', '0'), ('NXDOMAIN', '1', '0')],
                         lines)

    def test_insecure_delegation(self):
        lines, _ = self.run_dns(self.config(), [
            'tlsa:_25._tcp.mx.insecure.test', 'addrs:mx.insecure.test',
            'tlsa:_25._tcp.other.insecure.test', 'addrs:both.test',
            'addrs:v4.test'])
        # Records present but unproven: the caller must not use them.
        self.assertEqual((lines[0]['status'], lines[0]['secure'],
                          lines[0]['rdata']), ('OK', '0', rdata_hex(TLSA_EE)))
        self.assertEqual((lines[1]['status'], lines[1]['secure'],
                          lines[1]['secure6'], lines[1]['secure4']),
                         ('OK', '0', '0', '0'), lines[1])
        self.assertEqual((lines[2]['status'], lines[2]['secure']),
                         ('NXDOMAIN', '0'), lines[2])
        # Per family: both answers validated; a validated denial counts.
        self.assertEqual((lines[3]['secure6'], lines[3]['secure4']),
                         ('1', '1'), lines[3])
        self.assertEqual((lines[4]['addrs'], lines[4]['secure6'],
                          lines[4]['secure4']), ('127.0.0.6', '1', '1'))

    def test_bounded_records(self):
        lines, _ = self.run_dns(self.config(), ['tlsa:_25._tcp.big.test',
                                                'tlsa:_25._tcp.manytlsa.test'])
        big, many = lines
        self.assertEqual((big['status'], big['secure'], big['n'],
                          big['dropped']), ('OK', '1', '1', '1'), big)
        self.assertEqual(big['rdata'], '4099:030000' + '11' * 37 + '+')
        self.assertEqual((many['status'], many['n'], many['dropped']),
                         ('OK', '32', '2'), many)
        self.assertEqual(len(set(many['rdata'].split(','))), 32)

    def test_bogus(self):
        bad_ta = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad_ta)
        conf = self.config(dns_unbound_config=ub,
                           dns_trust_anchor_file='/nonexistent/anchor')
        lines, _ = self.run_dns(conf, ['tlsa:_25._tcp.mx.test',
                                       'tlsa:_25._tcp.nowhere.test',
                                       'addrs:mx.test'])
        # A bogus answer, records or denial, is never "no TLSA".
        for r in lines:
            self.assertEqual((r['status'], r['secure']), ('BOGUS', '0'), r)
            self.assertIn('DNSSEC validation failed: ', r['why'])
            self.assertIn('validation failure', r['why'])
        self.assertEqual((lines[0]['n'], lines[0]['rdata']), ('0', ''))
        self.assertEqual((lines[2]['secure6'], lines[2]['secure4']),
                         ('0', '0'))

    def test_refused_is_tempfail(self):
        ub = self.zone.write_unbound_conf(
            os.path.join(self.dir, 'ub.conf'),
            extra_server=['local-zone: "_tcp.refused.test." refuse'])
        r = self.one(self.config(dns_unbound_config=ub),
                     'tlsa:_25._tcp.refused.test')
        self.assertEqual((r['status'], r['secure'], r['n']),
                         ('TEMPFAIL', '0', '0'), r)
        self.assertEqual(r['why'], 'Host not found, try again')

    def test_cancel_and_bad_name(self):
        lines, _ = self.run_dns(self.config(), [
            'cancel-tlsa:_25._tcp.mx.test', 'tlsa:_25._tcp.mx.test',
            'tlsa:_25._tcp..mx.test'])
        self.assertEqual(lines[0], 'cancelled _25._tcp.mx.test')
        self.assertEqual(lines[1]['status'], 'OK')
        self.assertRegex(lines[2], r'^tlsa _25._tcp..mx.test error=-22\b')


class TxtLookups(DnsTestBase):
    """dns_txt(): the records MTA-STS and TLS-RPT read (RFC 8461 3.1,
    RFC 8460 3), as rdata in wire form."""

    def test_records_in_wire_form(self):
        lines, _ = self.run_dns(self.config(), [
            'txt:_mta-sts.x.test', 'txt:_smtp._tls.x.test',
            'txt:_mta-sts.split.test', 'txt:raw.test',
            'txt:_MTA-STS.X.test.'])
        sts, rpt, split, raw, upper = lines
        self.assertEqual((sts['status'], sts['secure'], sts['n'],
                          sts['dropped'], sts['why']),
                         ('OK', '1', '1', '0', ''), sts)
        self.assertEqual(sts['rdata'], txt_hex(b'v=STSv1; id=20240101'))
        self.assertEqual((rpt['status'], rpt['secure'], rpt['rdata']),
                         ('OK', '1',
                          txt_hex(b'v=TLSRPTv1; rua=mailto:tlsrpt@x.test')),
                         rpt)
        # Each character-string keeps its own length octet: joining them
        # is the record parser's work.
        self.assertEqual((split['status'], split['n'], split['rdata']),
                         ('OK', '1', txt_hex(b'v=STSv1; ', b'id=abc')), split)
        self.assertEqual(raw['rdata'], txt_hex(b'a\x00b', b'\xff'), raw)
        # Case and a final dot name the same owner.
        self.assertEqual((upper['status'], upper['rdata']),
                         ('OK', sts['rdata']), upper)

    def test_secure_denials(self):
        lines, _ = self.run_dns(self.config(), [
            'txt:_mta-sts.notxt.test', 'txt:_mta-sts.nowhere.test',
            'txt:_smtp._tls.nowhere.test'])
        self.assertEqual([(l['status'], l['secure'], l['n'], l['rdata'])
                          for l in lines],
                         [('NODATA', '1', '0', ''), ('NXDOMAIN', '1', '0', ''),
                          ('NXDOMAIN', '1', '0', '')], lines)
        self.assertEqual([l['why'] for l in lines],
                         ['No data', 'Host not found', 'Host not found'])

    def test_bounded_records(self):
        lines, _ = self.run_dns(self.config(), ['txt:_mta-sts.bigtxt.test',
                                                'txt:_mta-sts.manytxt.test'])
        big, many = lines
        self.assertEqual((big['status'], big['secure'], big['n'],
                          big['dropped']), ('OK', '1', '1', '1'), big)
        self.assertEqual(big['rdata'], '4096:FF' + '61' * 99 + '+')
        self.assertEqual((many['status'], many['secure'], many['n'],
                          many['dropped']), ('OK', '1', '16', '4'), many)
        got = many['rdata'].split(',')
        self.assertEqual(len(set(got)), 16, got)
        want = {txt_hex(b'v=STSv1; id=n%02d' % i) for i in range(20)}
        self.assertTrue(set(got) <= want, got)

    def test_insecure_delegation(self):
        r = self.one(self.config(), 'txt:_mta-sts.insecure.test')
        self.assertEqual((r['status'], r['secure'], r['rdata']),
                         ('OK', '0', txt_hex(b'v=STSv1; id=20240101')), r)

    def test_bogus(self):
        bad_ta = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad_ta)
        conf = self.config(dns_unbound_config=ub,
                           dns_trust_anchor_file='/nonexistent/anchor')
        lines, _ = self.run_dns(conf, ['txt:_mta-sts.x.test',
                                       'txt:_mta-sts.nowhere.test'])
        # Records or a denial that failed validation: never "no record".
        for r in lines:
            self.assertEqual((r['status'], r['secure'], r['n'], r['rdata']),
                             ('BOGUS', '0', '0', ''), r)
            self.assertIn('DNSSEC validation failed: ', r['why'])

    def test_refused_and_timeout_are_tempfail(self):
        ub = self.zone.write_unbound_conf(
            os.path.join(self.dir, 'ub.conf'),
            extra_server=['local-zone: "refused.test." refuse'])
        r = self.one(self.config(dns_unbound_config=ub),
                     'txt:_mta-sts.refused.test')
        self.assertEqual((r['status'], r['secure'], r['n'], r['why']),
                         ('TEMPFAIL', '0', '0', 'Host not found, try again'),
                         r)
        dead = self.config(name='dead.conf', dns_unbound_config=None,
                           dns_trust_anchor_file='/nonexistent/anchor')
        r = self.one(dead, 'txt:_mta-sts.example.com', timeout_ms=1000)
        self.assertEqual((r['status'], r['secure'], r['n']),
                         ('TEMPFAIL', '0', '0'), r)
        self.assertIn('timed out', r['why'])

    def test_cancel_and_bad_name(self):
        lines, _ = self.run_dns(self.config(), [
            'cancel-txt:_mta-sts.x.test', 'txt:_mta-sts.x.test',
            'txt:_mta-sts..x.test', 'txt:_mta sts.x.test'])
        self.assertEqual(lines[0], 'cancelled _mta-sts.x.test')
        self.assertEqual(lines[1]['status'], 'OK')
        self.assertRegex(lines[2], r'^txt _mta-sts..x.test error=-22\b')
        self.assertRegex(lines[3], r'^txt _mta sts.x.test error=-22\b')


class Validation(DnsTestBase):

    def test_bogus_with_wrong_trust_anchor(self):
        bad_ta = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad_ta)
        conf = self.config(dns_unbound_config=ub,
                           dns_trust_anchor_file='/nonexistent/anchor')
        lines, _ = self.run_dns(conf, ['mx:pref.test', 'addrs:both.test',
                                       'mx:nowhere.test'])
        for r in lines:
            self.assertEqual(r['status'], 'BOGUS', r)
            self.assertEqual(r['secure'], '0')
            self.assertIn('DNSSEC validation failed', r['why'])
        self.assertEqual(lines[0]['hosts'], '')
        self.assertEqual(lines[1]['addrs'], '')

    def test_insecure_without_trust_anchor(self):
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'))
        # Same stub zone, but no anchor at all: answers are insecure, not bogus.
        with open(ub) as f:
            text = f.read()
        text = re.sub(r'\n\s*trust-anchor-file:.*', '', text)
        with open(ub, 'w') as f:
            f.write(text)
        conf = self.config(dns_unbound_config=ub,
                           dns_trust_anchor_file='/nonexistent/anchor')
        lines, _ = self.run_dns(conf, ['mx:pref.test', 'addrs:both.test'])
        for r in lines:
            self.assertEqual((r['status'], r['secure']), ('OK', '0'), r)

    def test_anchor_from_dns_trust_anchor_file_only(self):
        # The anchor may come from dns_trust_anchor_file alone.
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'))
        with open(ub) as f:
            text = re.sub(r'\n\s*trust-anchor-file:.*', '', f.read())
        with open(ub, 'w') as f:
            f.write(text)
        r = self.one(self.config(dns_unbound_config=ub), 'mx:pref.test')
        self.assertEqual((r['status'], r['secure']), ('OK', '1'), r)

    def test_relay_keys_with_system_root_anchor(self):
        # dnszone's keys next to the default root anchor (if installed).
        keys = self.zone.relay_keys()
        keys['dns_trust_anchor_file'] = '/usr/share/dns/root.key'
        r = self.one(self.config(**keys), 'mx:pref.test')
        self.assertEqual((r['status'], r['secure']), ('OK', '1'), r)


class Failures(DnsTestBase):

    def test_unanswered_server_tempfails(self):
        """dns_servers at a port nobody listens on, no unbound config: both
        libunbound's own give-up (about 17 s) and our shorter deadline end in
        DNS_TEMPFAIL.  The two runs overlap to keep the test short."""
        dead = self.config(name='dead.conf', dns_unbound_config=None,
                           dns_trust_anchor_file='/nonexistent/anchor')
        # example.com: not one of libunbound's built-in local zones, so the
        # query really goes to the (dead) server.
        lookups = ['mx:example.com', 'addrs:example.com',
                   'tlsa:_25._tcp.example.com']
        procs = []
        for extra in ([], ['-t', '1500']):
            procs.append(subprocess.Popen(
                [TEST_DNS, '-c', dead] + extra + lookups,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, encoding='utf-8',
                errors='replace'))
        results = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=45)
                results.append((p.returncode, out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        took = []
        for rc, out, err in results:
            self.assertEqual(rc, 0, out + err)
            self.assertNotRegex(out, r'(?m)^FAIL')
            for m in SANITIZER_MARKERS:
                self.assertNotIn(m, err, err)
            lines = [parse_line(l) for l in out.splitlines()]
            self.assertEqual(len(lines), 3, out)
            for r in lines:
                self.assertEqual((r['status'], r['secure']), ('TEMPFAIL', '0'),
                                 r)
            took.append(max(int(r['ms']) for r in lines))
        # Our deadline: 1.5 s, give or take a loop turn.
        self.assertLess(took[1], 3000, results[1][1])
        self.assertIn('timed out', results[1][1])
        # Default: libunbound gives up first (about 17 s on a fresh context),
        # and DNS_TIMEOUT_MS (30 s) would bound it anyway.
        self.assertLess(took[0], 31000, results[0][1])

    def test_free_with_lookups_pending(self):
        """dns_free() with lookups outstanding: no callback, loop closes."""
        dead = self.config(name='dead.conf', dns_unbound_config=None,
                           dns_trust_anchor_file='/nonexistent/anchor')
        lines, took = self.run_dns(dead, ['mx:example.com', 'addrs:example.net',
                                          'cancel-mx:example.org'],
                                   free_after=200)
        self.assertEqual(lines, ['pending example.com', 'pending example.net',
                                 'cancelled example.org'])
        self.assertLess(took, 10.0)

    def test_cancel(self):
        lines, _ = self.run_dns(self.config(), ['cancel-mx:pref.test',
                                                'mx:pref.test',
                                                'cancel-addrs:both.test'])
        self.assertEqual(lines[0], 'cancelled pref.test')
        self.assertEqual(lines[1]['status'], 'OK')
        self.assertEqual(lines[2], 'cancelled both.test')

    def test_missing_unbound_config(self):
        conf = self.config(dns_unbound_config='/nonexistent/unbound.conf')
        r = subprocess.run([TEST_DNS, '-c', conf, 'mx:pref.test'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding='utf-8', errors='replace', timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('dns_unbound_config /nonexistent/unbound.conf', r.stdout)


class ZoneUpdates(DnsTestBase):
    """dnszone.set_records() (used by other tests) takes effect."""

    def test_set_records(self):
        with dnszone.DnsZone([('x.test.', 'MX', '10 old.x.test.')]) as z:
            conf = self.config(dns_unbound_config=z.unbound_conf,
                               dns_trust_anchor_file=z.ta_file)
            r = self.one(conf, 'mx:x.test')
            self.assertEqual((r['hosts'], r['secure']), ('10:old.x.test', '1'))
            z.set_records([('x.test.', 'MX', '20 new.x.test.'),
                           ('new.x.test.', 'A', '127.0.0.9')])
            lines, _ = self.run_dns(conf, ['mx:x.test', 'addrs:new.x.test'])
            self.assertEqual((lines[0]['hosts'], lines[0]['secure']),
                             ('20:new.x.test', '1'))
            self.assertEqual(lines[1]['addrs'], '127.0.0.9')
            proc = z.proc
        self.assertIsNotNone(proc.returncode)  # knotd stopped and reaped


class DaneFixtures(DnsTestBase):
    """The fixtures test_dane.py builds on, checked against Knot, kdig,
    certtool and relay/dns.c: TLSA rdata computed for real certificates,
    a bogus child zone, CNAMEs, an insecure zone pointing into the signed
    one, and a proxy that drops TLSA queries only."""

    @classmethod
    def setUpClass(cls):
        dnszone.require_knot()
        if not os.access(TEST_DNS, os.X_OK):
            raise unittest.SkipTest('test_dns not built at %s' % TEST_DNS)
        cls.certdir = tempfile.mkdtemp(prefix='tlsrelay-dnsfix-')
        cls.addClassCleanup(shutil.rmtree, cls.certdir, True)
        d = cls.certdir
        cls.ca = certs.make_ca(d, cn='fixture TA', name='fixca')
        cls.leaf = certs.make_cert(d, 'mx.test', ca=cls.ca)
        cls.rsa = certs.make_cert(d, 'rsa.test', self_signed=True,
                                  key_type='rsa')
        tlsa = dnszone.tlsa_rdata
        cls.tlsa311 = tlsa(cls.leaf, 3, 1, 1)
        cls.tlsa201 = tlsa(cls.ca, 2, 0, 1)
        cls.tlsa312 = tlsa(cls.leaf, 3, 1, 2)
        owner = dnszone.tlsa_owner
        cls.zone = dnszone.DnsZone([
            ('mx.test.', 'A', '127.0.0.5'),
            (owner('mx.test'), 'TLSA', cls.tlsa311),
            (owner('mx.test'), 'TLSA', cls.tlsa201),
            (owner('mx.test'), 'TLSA', cls.tlsa312),
            # An MX host name that is an alias; TLSA at the target.
            ('cname.test.', 'MX', '10 mx.cname.test.'),
            ('mx.cname.test.', 'CNAME', 'real-mx.test.'),
            ('real-mx.test.', 'A', '127.0.0.6'),
            (owner('real-mx.test'), 'TLSA', cls.tlsa311),
            # Secure address, TLSA owner an alias into the bogus child.
            ('mx.half.test.', 'A', '127.0.0.7'),
            (owner('mx.half.test'), 'CNAME', owner('mx.bogus.test')),
        ], unsigned_children={'insecure.test.': [
            ('pointer.insecure.test.', 'MX', '10 mx.test.'),
        ]}, bogus_children={'bogus.test.': [
            ('bogus.test.', 'MX', '10 mx.bogus.test.'),
            ('mx.bogus.test.', 'A', '127.0.0.8'),
            (owner('mx.bogus.test'), 'TLSA', cls.tlsa311),
        ]})
        cls.addClassCleanup(cls.zone.close)

    def certtool_der(self, *args):
        r = subprocess.run(['certtool'] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_tlsa_rdata_matches_certtool(self):
        import hashlib
        for c in (self.leaf, self.ca, self.rsa):
            der = self.certtool_der('--certificate-info', '--infile', c.cert,
                                    '--outder')
            spki = self.certtool_der('--pubkey-info', '--load-certificate',
                                     c.cert, '--outder')
            self.assertEqual(dnszone.cert_der(c), der)
            self.assertEqual(dnszone.cert_der(c.cert), der)
            self.assertEqual(dnszone.spki_der(der), spki)
            want = {
                (3, 1, 1): hashlib.sha256(spki).hexdigest(),
                (3, 0, 1): hashlib.sha256(der).hexdigest(),
                (2, 0, 1): hashlib.sha256(der).hexdigest(),
                (3, 1, 2): hashlib.sha512(spki).hexdigest(),
                (3, 0, 0): der.hex(),
                (3, 1, 0): spki.hex(),
            }
            for (u, s, m), data in want.items():
                self.assertEqual(dnszone.tlsa_rdata(c, u, s, m),
                                 '%d %d %d %s' % (u, s, m, data.upper()))
            # The same digests as certs.py's (certtool's) fingerprints.
            self.assertEqual(dnszone.tlsa_rdata(c, 3, 1, 1)[6:],
                             c.pubkey_sha256().replace(':', ''))
            self.assertEqual(dnszone.tlsa_rdata(c, 3, 0, 1)[6:],
                             c.cert_sha256().replace(':', ''))
        # A chain file (leaf first) gives the leaf.
        chain = os.path.join(self.dir, 'chain.pem')
        with open(chain, 'w') as f:
            f.write(self.leaf.pem() + self.ca.pem())
        self.assertEqual(dnszone.cert_der(chain), dnszone.cert_der(self.leaf))
        self.assertEqual(dnszone.tlsa_owner('mx.test.', 2525),
                         '_2525._tcp.mx.test.')

    def test_tlsa_published_and_secure(self):
        lines, _ = self.run_dns(self.config(), ['tlsa:_25._tcp.mx.test',
                                                'tlsa:_25._tcp.real-mx.test'])
        r = lines[0]
        self.assertEqual((r['status'], r['secure'], r['n']), ('OK', '1', '3'),
                         r)
        got = r['rdata'].split(',')
        self.assertIn(rdata_hex(self.tlsa311), got)
        self.assertIn(rdata_hex(self.tlsa201), got)
        # 3 1 2: 67 octets, shown cut at the driver's 40.
        self.assertIn(rdata_hex(self.tlsa312)[:3 + 80] + '+', got)
        self.assertEqual((lines[1]['status'], lines[1]['secure'],
                          lines[1]['rdata']),
                         ('OK', '1', rdata_hex(self.tlsa311)))

    def test_cname_and_insecure_pointer(self):
        lines, _ = self.run_dns(self.config(), [
            'mx:cname.test', 'addrs:mx.cname.test', 'mx:pointer.insecure.test',
            'addrs:mx.test'])
        mx, alias, pointer, target = lines
        self.assertEqual((mx['hosts'], mx['secure']),
                         ('10:mx.cname.test', '1'))
        self.assertEqual((alias['status'], alias['secure'], alias['addrs']),
                         ('OK', '1', '127.0.0.6'), alias)
        # The MX RRset is insecure, the host it names is secure.
        self.assertEqual((pointer['status'], pointer['secure'],
                          pointer['hosts']), ('OK', '0', '10:mx.test'),
                         pointer)
        self.assertEqual((target['secure'], target['addrs']),
                         ('1', '127.0.0.5'))

    def test_bogus_child(self):
        # Knot serves the child signed, the parent a DS that is not the
        # child's: same key tag and algorithm, another digest.
        z = self.zone
        real = z.real_ds['bogus.test.'].upper().split()
        bad = z.bogus_ds['bogus.test.'].upper().split()
        self.assertEqual(real[:3], bad[:3])
        self.assertNotEqual(real[3], bad[3])
        self.assertEqual([l.upper().split() for l in z.query('bogus.test.',
                                                             'DS')], [bad])
        r = subprocess.run([dnszone.KDIG, '@127.0.0.1', '-p', str(z.port),
                            '+dnssec', '+short', 'TLSA',
                            '_25._tcp.mx.bogus.test'],
                           stdout=subprocess.PIPE, encoding='utf-8',
                           timeout=10)
        self.assertRegex(r.stdout, r'(?m)^TLSA 13 \d+ \d+ \d+ \d+ \d+ '
                         r'bogus\.test\. ')
        lines, _ = self.run_dns(self.config(), [
            'tlsa:_25._tcp.mx.bogus.test', 'addrs:mx.bogus.test',
            'mx:bogus.test', 'tlsa:_25._tcp.mx.half.test',
            'addrs:mx.half.test'])
        for r in lines[:4]:
            self.assertEqual((r['status'], r['secure']), ('BOGUS', '0'), r)
            self.assertIn('DNSSEC validation failed', r['why'])
        # Only the TLSA RRset of mx.half.test is bogus, not its address.
        self.assertEqual((lines[4]['status'], lines[4]['secure'],
                          lines[4]['addrs']), ('OK', '1', '127.0.0.7'))

    def test_proxy_drops_tlsa_only(self):
        with dnsproxy.DnsProxy(self.zone.port) as proxy:
            ub = self.zone.write_unbound_conf(
                os.path.join(self.dir, 'ub.conf'), stub_port=proxy.port)
            lines, took = self.run_dns(self.config(dns_unbound_config=ub), [
                'mx:cname.test', 'addrs:mx.test', 'tlsa:_25._tcp.mx.test'])
            mx, addrs, tlsa = lines
            self.assertEqual((mx['status'], mx['secure']), ('OK', '1'), mx)
            self.assertEqual((addrs['status'], addrs['secure']), ('OK', '1'),
                             addrs)
            self.assertEqual((tlsa['status'], tlsa['secure'], tlsa['n']),
                             ('TEMPFAIL', '0', '0'), tlsa)
            self.assertLess(took, 40)
            # Every query went through the proxy; it dropped TLSA alone.
            self.assertEqual(proxy.dropped_types(), {dnsproxy.TLSA})
            self.assertIn(('_25._tcp.mx.test.', dnsproxy.TLSA, 'udp'),
                          proxy.dropped)
            types = {t for _, t, _ in proxy.forwarded}
            self.assertTrue({1, 15, 48}.issubset(types), types)  # A MX DNSKEY
            self.assertNotIn(dnsproxy.TLSA, types)
            for rtype, name, want in (('A', 'mx.test', ['127.0.0.5']),
                                      ('TLSA', '_25._tcp.mx.test', [])):
                for transport in ('+notcp', '+tcp'):
                    r = subprocess.run(
                        [dnszone.KDIG, '@127.0.0.1', '-p', str(proxy.port),
                         transport, '+short', '+timeout=1', '+retry=0',
                         rtype, name], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, encoding='utf-8', timeout=10)
                    self.assertEqual(r.stdout.splitlines(), want,
                                     (rtype, transport, r.stderr))
            self.assertIn(('_25._tcp.mx.test.', dnsproxy.TLSA, 'tcp'),
                          proxy.dropped)
class DnssecCheck(DnsTestBase):
    """dns_check_dnssec(): the DNSKEY records of the anchor's zone validate,
    or the result says why not (bogus, insecure, no answer)."""

    def test_secure_and_zone_from_anchor_file(self):
        # "check:" alone: the zone dns_check_zone() reads from the anchor file.
        lines, _ = self.run_dns(self.config(), ['check:', 'check:test.'])
        for r in lines:
            self.assertEqual((r['kind'], r['name'].rstrip('.'), r['status'],
                              r['why']), ('check', 'test', 'SECURE', ''), r)

    def test_root_when_the_anchor_file_is_missing(self):
        # A port nobody answers on: our deadline ends it, as any lookup.
        conf = self.config(dns_unbound_config=None,
                           dns_trust_anchor_file='/nonexistent/anchor')
        r = self.one(conf, 'check:', timeout_ms=1500)
        self.assertEqual((r['name'], r['status'], r['why']),
                         ('.', 'NOANSWER', 'no answer (timed out)'), r)
        self.assertLess(int(r['ms']), 3000, r)

    def test_bogus_with_wrong_trust_anchor(self):
        bad_ta = self.zone.bad_trust_anchor(os.path.join(self.dir, 'bad.ds'))
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'),
                                          trust_anchor_file=bad_ta)
        r = self.one(self.config(dns_unbound_config=ub,
                                 dns_trust_anchor_file=bad_ta), 'check:')
        self.assertEqual((r['name'], r['status']), ('test', 'BOGUS'), r)
        self.assertTrue(r['why'].startswith(
            'DNSSEC validation failed: validation failure <test. DNSKEY IN>: '
            'DS hash mismatches key from 127.0.0.1'), r)

    def test_bogus_through_a_server_that_strips_dnssec(self):
        with dnszone.DnsZone(RECORDS[:3], signed=False) as stripped:
            ub = os.path.join(self.dir, 'plain.conf')
            with open(ub, 'w') as f:
                f.write('server:\n    local-zone: "test." nodefault\n'
                        '    do-not-query-localhost: no\n')
            conf = self.config(dns_servers='127.0.0.1@%d' % stripped.port,
                               dns_unbound_config=ub)
            lines, _ = self.run_dns(conf, ['check:', 'mx:pref.test'])
        self.assertEqual((lines[0]['status'], lines[1]['status']),
                         ('BOGUS', 'BOGUS'), lines)
        self.assertIn('no DNSKEY rrset from 127.0.0.1 for trust anchor test.',
                      lines[0]['why'])

    def test_insecure_without_anchor_for_the_zone(self):
        ub = self.zone.write_unbound_conf(os.path.join(self.dir, 'ub.conf'))
        with open(ub) as f:
            text = re.sub(r'\n\s*trust-anchor-file:.*', '', f.read())
        with open(ub, 'w') as f:
            f.write(text)
        conf = self.config(dns_unbound_config=ub,
                           dns_trust_anchor_file='/nonexistent/anchor')
        r = self.one(conf, 'check:test')
        self.assertEqual(r['status'], 'INSECURE', r)
        self.assertIn('no trust anchor', r['why'])

    def test_error_answer_and_cancel(self):
        ub = self.zone.write_unbound_conf(
            os.path.join(self.dir, 'ub.conf'),
            extra_server=['local-zone: "refused.test." refuse'])
        lines, _ = self.run_dns(self.config(dns_unbound_config=ub),
                                ['check:refused.test', 'cancel-check:test',
                                 'check:bad..zone'])
        self.assertEqual((lines[0]['status'], lines[0]['why']),
                         ('NOANSWER', 'no answer (REFUSED)'), lines[0])
        self.assertEqual(lines[1], 'cancelled test')
        self.assertRegex(lines[2], r'^check bad..zone error=-22\b')


class RelayDeferralReasons(unittest.TestCase):
    """The reason `mailq` shows for mail deferred by a DNS failure reads
    once, as Postfix's does; it said "Host or domain name not found" twice."""

    def test_servfail_reason_reads_once(self):
        d = tempfile.mkdtemp(prefix='tlsrelay-dnsreason-')
        self.addCleanup(shutil.rmtree, d, True)
        ub = os.path.join(d, 'unbound.conf')
        # A zone that libunbound itself refuses: REFUSED at once, the same
        # TRY_AGAIN class as a SERVFAIL, with no server to wait for.
        with open(ub, 'w') as f:
            f.write('server:\n    local-zone: "test." nodefault\n'
                    '    local-zone: "refused.test." refuse\n'
                    '    do-not-query-localhost: no\n')
        relay = harness.Relay(self, dns_unbound_config=ub)
        msg = harness.make_message(subject='dns reason')
        code, reply, qid = harness.smtp_send(
            relay, 'alice@client.test', ['bob@refused.test'], msg)
        self.assertEqual(code, 250, reply)

        def reason():
            m = relay.find(qid)
            if m and m['recipients'] and m['recipients'][0].get('delay_reason'):
                return m['recipients'][0]['delay_reason']
            return None
        why = harness.wait_for(reason, 15)
        self.assertEqual(why, 'Host or domain name not found. Name service '
                         'error for name=refused.test type=MX: Host not '
                         'found, try again')
        text = relay.mailq_text()
        self.assertEqual(text.count('Host or domain name not found'), 1, text)
        self.assertIn('(Host or domain name not found. Name service error for '
                      'name=refused.test type=MX: Host not found, try again)',
                      text)


if __name__ == '__main__':
    unittest.main(verbosity=2)
