"""Test certificates made with GnuTLS certtool (package gnutls-bin).

    ca = make_ca(d)                                   # a test CA
    mx = make_cert(d, 'mx1.example.test', ['mx1.example.test'], ca=ca)
    old = make_cert(d, 'mx2.example.test', ['mx2.example.test'], ca=ca,
                    expired=True)
    own = make_cert(d, 'mx3.example.test', ['mx3.example.test'],
                    self_signed=True)
    mx.cert, mx.key, mx.ca.cert, mx.cert_sha256(), mx.pubkey_sha256()

make_cert() without ca and without self_signed signs with the directory's
default CA (d/ca.crt, made on first use), so one call is enough for the
common case.  Names that parse as IP addresses go in as IP SANs, others as
DNS names.  Expired certificates were valid only during 2020 (certtool's
expiration_days = -1 would mean "never expires", see TESTING.md).  Keys are
ECDSA P-256 (fast) unless key_type='rsa'.  Every file lives in the given
directory, which the caller owns and removes.
"""

import hashlib
import ipaddress
import os
import re
import secrets
import subprocess

CERTTOOL = 'certtool'
EXPIRED_DATES = ('activation_date = "2020-01-01 00:00:00"\n'
                 'expiration_date = "2021-01-01 00:00:00"\n')
VALID_DAYS = 30
CA_DAYS = 3650


class Cert:
    """Paths of a certificate and its key; ca is the issuing Cert (None
    for a self-signed one)."""

    def __init__(self, name, cert, key, ca=None):
        self.name = name
        self.cert = cert
        self.key = key
        self.ca = ca

    def pem(self):
        with open(self.cert) as f:
            return f.read()

    def der(self):
        return _certtool(['--certificate-info', '--infile', self.cert,
                          '--outder'], binary=True)

    def cert_sha256(self):
        """SHA-256 of the certificate (DER), as colon-separated hex."""
        return _colon_hex(hashlib.sha256(self.der()).digest())

    def pubkey_sha256(self):
        """SHA-256 of the SubjectPublicKeyInfo (DER), as colon-separated
        hex: Postfix's public-key fingerprint."""
        spki = _certtool(['--pubkey-info', '--load-certificate', self.cert,
                          '--outder'], binary=True)
        return _colon_hex(hashlib.sha256(spki).digest())

    def chain_file(self, directory=None):
        """A file with this certificate followed by its issuers (without a
        self-signed root), for servers that must send the chain."""
        parts, c = [self.pem()], self.ca
        while c is not None and c.ca is not None:
            parts.append(c.pem())
            c = c.ca
        path = os.path.join(directory or os.path.dirname(self.cert),
                            self.name + '.chain.pem')
        with open(path, 'w') as f:
            f.write(''.join(parts))
        return path

    def __repr__(self):
        return 'Cert(%r)' % self.cert


def _colon_hex(b):
    return ':'.join('%02X' % x for x in b)


def _certtool(args, binary=False):
    r = subprocess.run([CERTTOOL] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError('certtool %s failed: %s'
                           % (' '.join(args), r.stderr.decode(errors='replace')))
    return r.stdout if binary else r.stdout.decode()


def _file_name(text):
    return re.sub(r'[^A-Za-z0-9.-]', '_', text) or 'cert'


def _make_key(path, key_type):
    kind = {'ecdsa': ['--key-type=ecdsa'],
            'rsa': ['--key-type=rsa', '--bits=2048']}[key_type]
    old = os.umask(0o077)
    try:
        _certtool(['--generate-privkey'] + kind + ['--outfile', path])
    finally:
        os.umask(old)


def _template(path, cn, names, expired, is_ca, days, usage=('server', 'client')):
    lines = ['cn = "%s"' % cn.replace('"', ''),
             # Random serials: issuer + serial must never repeat.
             'serial = %d' % secrets.randbits(62)]
    for n in names:
        try:
            ipaddress.ip_address(n)
            lines.append('ip_address = "%s"' % n)
        except ValueError:
            lines.append('dns_name = "%s"' % n)
    if is_ca:
        lines += ['ca', 'cert_signing_key', 'crl_signing_key']
    else:
        # Extended key usage: serverAuth, clientAuth, both, or (usage
        # empty) no extendedKeyUsage extension at all.
        lines += [{'server': 'tls_www_server',
                   'client': 'tls_www_client'}[u] for u in usage]
        lines += ['signing_key', 'encryption_key']
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
        f.write(EXPIRED_DATES if expired else 'expiration_days = %d\n' % days)


def _issue(directory, name, cn, names, ca, expired, is_ca, key_type, days,
           usage=('server', 'client')):
    base = os.path.join(directory, _file_name(name))
    key, cert, tmpl = base + '.key', base + '.crt', base + '.tmpl'
    _make_key(key, key_type)
    _template(tmpl, cn, names, expired, is_ca, days, usage)
    if ca is None:
        _certtool(['--generate-self-signed', '--load-privkey', key,
                   '--template', tmpl, '--outfile', cert])
    else:
        _certtool(['--generate-certificate', '--load-privkey', key,
                   '--load-ca-certificate', ca.cert,
                   '--load-ca-privkey', ca.key,
                   '--template', tmpl, '--outfile', cert])
    return Cert(_file_name(name), cert, key, ca)


def make_ca(directory, cn='tlsrelay Test CA', name='ca', ca=None,
            expired=False, key_type='ecdsa'):
    """A CA certificate: self-signed (a root) unless ca is given (then an
    intermediate signed by it)."""
    return _issue(directory, name, cn, [], ca, expired, True, key_type,
                  CA_DAYS)


def default_ca(directory):
    """The directory's default CA (ca.crt/ca.key), made on first use."""
    cert = os.path.join(directory, 'ca.crt')
    key = os.path.join(directory, 'ca.key')
    if os.path.exists(cert) and os.path.exists(key):
        return Cert('ca', cert, key)
    return make_ca(directory)


def make_cert(directory, cn, names=(), ca=None, expired=False,
              self_signed=False, name=None, key_type='ecdsa',
              days=VALID_DAYS, usage=('server', 'client')):
    """A server (and client) certificate for cn with the given subject
    alternative names (cn alone when names is empty).

    ca: the issuing Cert; None means the directory's default CA, unless
    self_signed.  expired: valid only during 2020.  name: the file name
    stem (default: cn).  usage: the extended key usages, 'server'
    (serverAuth) and/or 'client' (clientAuth); empty for a certificate
    without the extension.  Returns a Cert whose .ca is the issuer."""
    names = list(names) or [cn]
    if self_signed:
        ca = None
    elif ca is None:
        ca = default_ca(directory)
    return _issue(directory, name or cn, cn, names, ca, expired, False,
                  key_type, days, usage)
