"""The manual pages keep step with the code: every key of the
configuration parser's table (cfg_keys[] in relay/cfg/cfg_parse.c) has an
entry in doc/tlsrelay.conf.5.scd, and every command main.c dispatches has
one in doc/tlsrelay.8.scd, so a new key or command without documentation
fails here.  Reads source files only; needs no build and no tool.
"""

import os
import re
import sys
import unittest

SRC = os.environ.get('TLSRELAY_SRCDIR') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*parts):
    with open(os.path.join(SRC, *parts)) as f:
        return f.read()


def cfg_keys():
    text = read('relay', 'cfg', 'cfg_parse.c')
    table = re.search(r'cfg_keys\[\]\s*=\s*\{(.*?)\n\};', text, re.S)
    assert table, 'cfg_keys[] not found in relay/cfg/cfg_parse.c'
    return re.findall(r'^\s*\{"([a-z0-9_]+)",', table.group(1), re.M)


def page_entries(page):
    """The names an entry line of the page starts with: `*name*` or
    `*name*, *other*` at the start of a line, outside literal blocks."""
    names = set()
    literal = False
    for line in read('doc', page).splitlines():
        if line.startswith('```'):
            literal = not literal
            continue
        if literal or not line.startswith('*'):
            continue
        head = re.split(r' = | \(|\t', line, 1)[0]
        names.update(re.findall(r'\*([a-z0-9_ -]+?)\*', head))
    return names


class Docs(unittest.TestCase):

    def test_every_config_key_documented(self):
        keys = cfg_keys()
        self.assertGreater(len(keys), 40)
        documented = page_entries('tlsrelay.conf.5.scd')
        missing = [k for k in keys if k not in documented]
        self.assertEqual(missing, [], 'keys without an entry in doc/tlsrelay.conf.5.scd')

    def test_every_command_documented(self):
        main = read('relay', 'main.c')
        commands = set(re.findall(r'strcmp\(argv\[0\], "([a-z]+)"\)', main)) - {'help'}
        # The contract's commands are all there (the regex still finds them).
        self.assertGreaterEqual(commands, {'serve', 'mailq', 'status', 'queue', 'sendmail',
                                           'policy', 'certs', 'report', 'tlsrpt'})
        documented = {n.split()[0] for n in page_entries('tlsrelay.8.scd')}
        missing = sorted(commands - documented)
        self.assertEqual(missing, [], 'commands without an entry in doc/tlsrelay.8.scd')

    def test_install_section_matches_the_example(self):
        """README's Install section points Postfix at the port the installed
        example listens on, never at port 25 of the same host."""
        example = read('dist', 'tlsrelay.conf')
        listen = re.findall(r'(?m)^listen = (\S+)$', example)
        self.assertEqual(listen, ['127.0.0.1:10025'])
        readme = read('README.md')
        install = readme[readme.index('\n## Install\n'):]
        install = install[:install.index('\n## ', 1)]
        self.assertIn('relayhost = [127.0.0.1]:10025', example)
        self.assertIn('relayhost = [127.0.0.1]:10025', install)
        self.assertIn('`listen = %s`' % listen[0], install)
        self.assertNotIn('[127.0.0.1]:25', install + example)
        self.assertIn('-Dsendmail_links=false', install)

    def test_detects_a_missing_key(self):
        """The check can fail: a key the page lacks is found."""
        self.assertNotIn('no_such_key_xyz', page_entries('tlsrelay.conf.5.scd'))
        self.assertIn('queue_dir', page_entries('tlsrelay.conf.5.scd'))
        self.assertIn('smtpd_tls_key_file', page_entries('tlsrelay.conf.5.scd'))


if __name__ == '__main__':
    unittest.main(verbosity=2)
