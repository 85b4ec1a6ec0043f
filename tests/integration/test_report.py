"""`tlsrelay report`: the TLS posture per destination domain, from the
counters the relay keeps while it delivers to real MX hosts.

One relay (default_tls_level = encrypt) delivers to four domains of a
DNSSEC-signed Knot zone, each with its own aiosmtpd MX and a known
outcome:

    secure.test   `encrypt`, CA-signed certificate -> encrypted (chain trusted), 2x
    enc.test      `encrypt`, self-signed           -> encrypted only, 3x
    clear.test    `none`                           -> cleartext, 1x
    fail.test     `secure`, self-signed            -> deferred, not trusted

Then `report --json` must give exactly those counts and the suggestions
(`secure.test secure`: every delivery over a chain the CAs verify; enc.test's
one public key as a `fingerprint` line in the form `certs fingerprint`
prints; none for clear.test, and none for fail.test, whose entry is already
`secure`),
the text table the same, `--since` its period, and `--html` a page that
headless Chromium renders without script errors to a non-blank screenshot.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import dnszone  # noqa: E402
import harness  # noqa: E402
from mxpeer import MX  # noqa: E402
from test_delivery import common_port, message, require_peers  # noqa: E402

SENDER = 'alice@client.test'
TIMEOUT = 15.0
DESTS = {
    'secure': ('secure.test', 'mx1.secure.test', '127.0.0.60'),
    'enc': ('enc.test', 'mx1.enc.test', '127.0.0.61'),
    'clear': ('clear.test', 'mx1.clear.test', '127.0.0.62'),
    'fail': ('fail.test', 'mx1.fail.test', '127.0.0.63'),
}
SENDS = {'secure': 2, 'enc': 3, 'clear': 1, 'fail': 1}


def chromium():
    for name in ('chromium', 'chromium-browser'):
        if shutil.which(name):
            return shutil.which(name)
    return None


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced
    PNG, decoded with zlib and struct only."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', chunk)
        elif kind == b'IDAT':
            idat += chunk
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], None
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        prev = prev or bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


class Report(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        recs = []
        for domain, host, ip in DESTS.values():
            recs += [(domain + '.', 'MX', '10 %s.' % host), (host + '.', 'A', ip)]
        cls.zone = dnszone.DnsZone(recs)
        cls.dir = tempfile.mkdtemp(prefix='tlsrelay-report-')
        cls.mxs, cls.relay = [], None
        try:
            cls._setup()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _setup(cls):
        d = cls.dir
        cls.port = common_port([ip for _, _, ip in DESTS.values()])
        ca = certs.default_ca(d)
        cls.cert = {
            'secure': certs.make_cert(d, 'mx1.secure.test'),
            'enc': certs.make_cert(d, 'mx1.enc.test', self_signed=True),
            'clear': certs.make_cert(d, 'mx1.clear.test', self_signed=True),
            'fail': certs.make_cert(d, 'mx1.fail.test', self_signed=True),
        }
        keys = dict(cls.zone.relay_keys())
        keys.update({'remote_port': cls.port, 'default_tls_level': 'encrypt',
                     'tls_ca_file': ca.cert, 'retry_min': '1h',
                     'retry_max': '1h'})
        relay = harness.Relay(None, start=False, **keys)
        cls.relay = relay
        with open(relay.keys['policy_file'], 'w') as f:
            f.write('secure.test encrypt\nenc.test encrypt\n'
                    'clear.test none\nfail.test secure\n')
        relay.start()
        for key, (_, host, ip) in DESTS.items():
            m = MX(None)
            cls.mxs.append(m)
            m.start(ip, cls.port, hostname=host, tls_cert=cls.cert[key].cert,
                    tls_key=cls.cert[key].key)
        qids = []
        for key, n in SENDS.items():
            for i in range(n):
                rcpt = 'bob%d@%s' % (i, DESTS[key][0])
                data, _ = message(SENDER, [rcpt], subject='report ' + key)
                code, reply, qid = harness.smtp_send(relay, SENDER, [rcpt], data)
                assert code == 250, reply
                qids.append((key, qid))
        for key, qid in qids:
            want = 'deferred' if key == 'fail' else 'sent'
            rx = r'%s: to=<[^>]+>, relay=\S+, .*status=%s' % (qid, want)
            assert relay.wait_log(rx, TIMEOUT), (
                'no status=%s for %s (%s); log:\n%s'
                % (want, qid, key, relay.log_text()[-3000:]))

    @classmethod
    def tearDownClass(cls):
        for m in cls.mxs:
            m.stop()
        if cls.relay:
            cls.relay.close()
        cls.zone.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def report(self, *args, code=0):
        r = self.relay.cli('report', *args)
        self.assertEqual(r.returncode, code, r.stderr)
        return r.stdout

    def report_json(self, *args):
        """The report once the relay's batched write has landed (within
        about 5 s of the deliveries, while the relay runs)."""
        def ready():
            doc = json.loads(self.report('--json', *args))
            total = sum(sum(d['delivered'].values()) + d['deferred']
                        for d in doc['domains'])
            return doc if total >= sum(SENDS.values()) else None
        doc = harness.wait_for(ready, TIMEOUT, 0.3)
        self.assertIsNotNone(doc, self.report('--json', *args))
        return doc

    def enc_pkey(self):
        out = harness.run([harness.BIN, 'certs', 'fingerprint',
                           self.cert['enc'].cert], env=harness.base_env())
        self.assertEqual(out.returncode, 0, out.stderr)
        m = re.search(r'# SHA-256 of public key\nmatch=(\S+)', out.stdout)
        self.assertIsNotNone(m, out.stdout)
        return m.group(1)

    def test_json_counts_and_suggestions(self):
        doc = self.report_json()
        doms = {d['domain']: d for d in doc['domains']}
        self.assertEqual(sorted(doms), sorted(v[0] for v in DESTS.values()))
        zero = {'dane': 0, 'mta-sts': 0, 'policy': 0, 'encrypted': 0,
                'cleartext': 0}
        want = {'secure.test': dict(zero, encrypted=2),
                'enc.test': dict(zero, encrypted=3),
                'clear.test': dict(zero, cleartext=1),
                'fail.test': zero}
        for name, w in want.items():
            self.assertEqual(doms[name]['delivered'], w, doms[name])
            self.assertEqual(doms[name]['bounced'], 0, doms[name])
        for name in ('secure.test', 'enc.test', 'clear.test'):
            self.assertEqual(doms[name]['deferred'], 0, doms[name])
            self.assertEqual(doms[name]['failures'], [], doms[name])
        fail = doms['fail.test']
        self.assertEqual(fail['deferred'], 1, fail)
        self.assertEqual(len(fail['failures']), 1, fail)
        self.assertEqual(fail['failures'][0]['count'], 1, fail)
        self.assertIn('not trusted', fail['failures'][0]['reason'], fail)
        self.assertLessEqual(len(fail['failures'][0]['reason']), 120)
        self.assertEqual(doms['secure.test']['suggestion'], 'secure.test secure')
        self.assertEqual(doms['enc.test']['suggestion'],
                         'enc.test fingerprint match=' + self.enc_pkey())
        self.assertEqual(doms['enc.test']['fingerprints'],
                         [{'sha256': self.enc_pkey(), 'count': 3}])
        self.assertIsNone(doms['clear.test']['suggestion'])
        self.assertIsNone(doms['fail.test']['suggestion'])
        # The suggested lines are valid policy file lines.
        pol = os.path.join(self.dir, 'suggested')
        with open(pol, 'w') as f:
            f.write(''.join(d['suggestion'] + '\n' for d in doc['domains']
                            if d['suggestion']))
        r = harness.run([harness.BIN, 'policy', 'check', pol],
                        env=harness.base_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_text(self):
        self.report_json()
        out = self.report()
        self.assertRegex(out, r'\nsecure\.test +0 +0 +0 +2 +0 +0 +0\n')
        self.assertRegex(out, r'\nenc\.test +0 +0 +0 +3 +0 +0 +0\n')
        self.assertRegex(out, r'\nclear\.test +0 +0 +0 +0 +1 +0 +0\n')
        self.assertRegex(out, r'\nfail\.test +0 +0 +0 +0 +0 +1 +0\n +1 x .*not trusted')
        self.assertIn('Suggested policy lines:\nenc.test fingerprint match=%s\n'
                      'secure.test secure\n' % self.enc_pkey(), out)

    def test_since(self):
        import datetime
        utc = datetime.timezone.utc
        now = datetime.datetime.now(utc)
        doc = self.report_json('--since', '1d')
        self.assertEqual(len(doc['domains']), 4)
        # The period starts on the UTC day of now - 1d and ends today.
        self.assertIn(doc['from'], {(now - datetime.timedelta(days=1, minutes=m))
                                    .strftime('%Y-%m-%d') for m in (0, 5)})
        self.assertEqual(doc['domains'], self.report_json('--since', '30m')['domains'])
        self.assertEqual(doc['domains'], self.report_json()['domains'])
        for bad in ('0d', '7', 'x', '-1d', '7w'):
            self.report('--since', bad, code=2)
        self.report('--json', '--html', os.path.join(self.dir, 'x.html'), code=2)

    def test_html_in_chromium(self):
        self.report_json()
        page = os.path.join(self.dir, 'report.html')
        self.assertEqual(self.report('--html', page), '')
        with open(page) as f:
            html = f.read()
        # Self-contained: nothing is loaded from anywhere.
        self.assertNotRegex(html, r'(?i)\b(src|href)\s*=|https?://|@import|url\(')
        for name in ('secure.test', 'enc.test', 'clear.test', 'fail.test'):
            self.assertIn(name, html)
        browser = chromium()
        if browser is None:
            self.fail('chromium not installed')
        flags = [browser, '--headless', '--no-sandbox', '--disable-gpu',
                 '--no-first-run', '--user-data-dir=' + os.path.join(self.dir, 'chr')]
        url = 'file://' + page
        dom = subprocess.run(flags + ['--dump-dom', url], capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        self.assertIn('data-report="rendered"', dom.stdout, dom.stdout[-2000:])
        self.assertNotIn('data-report="error"', dom.stdout)
        self.assertIn('charts rendered', dom.stdout)
        shot = os.path.join(self.dir, 'shot.png')
        r = subprocess.run(flags + ['--screenshot=' + shot, '--window-size=1200,900',
                                    url], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        w, h, bpp, rows = png_pixels(shot)
        self.assertEqual((w, h), (1200, 900))
        colours = set()
        for row in rows[::4]:
            for x in range(0, w * bpp, bpp * 4):
                colours.add(row[x:x + 3])
        # A blank page is one colour; the table, text and bars are many,
        # among them the bars' green (verified) and amber (encrypted).
        self.assertGreater(len(colours), 8, colours)
        self.assertIn(bytes((0xa6, 0xdb, 0xa0)), colours)
        self.assertIn(bytes((0xf1, 0xa3, 0x40)), colours)


if __name__ == '__main__':
    require_peers()
    if os.environ.get('CI') == 'true' and chromium() is None:
        sys.exit('chromium not installed')
    unittest.main(verbosity=2)
