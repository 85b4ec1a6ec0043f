"""The README's guides as the tests run them: the fenced block after each
`<!-- guide: NAME -->` marker, verbatim, so README text and tests cannot
drift apart (test_guide_postfix, test_guide_sendmail, test_guide_policy)."""

import os
import re
import sys

SRC = os.environ.get('TLSRELAY_SRCDIR') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(SRC, 'README.md')

_BLOCK_RE = r'^<!-- guide: %s -->\n```[a-z.]*\n(.*?)^```$'


def block(name):
    """The text of the README block named name (ends with a newline)."""
    with open(README, encoding='utf-8') as f:
        text = f.read()
    found = re.findall(_BLOCK_RE % re.escape(name), text, re.S | re.M)
    if len(found) != 1:
        raise AssertionError('README.md has %d blocks named %r (want 1)'
                             % (len(found), name))
    return found[0]


def indented_commands():
    """The README's indented command lines, in order."""
    with open(README, encoding='utf-8') as f:
        return [line.strip() for line in f
                if line.startswith('    ') and line.strip()]


def need(ok, what):
    """Missing tools are a skip (exit 77) on a desk and a failure in CI."""
    if ok:
        return
    sys.stderr.write('%s\n' % what)
    sys.exit(1 if os.environ.get('CI') == 'true' else 77)
