# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: read the one section of a proxy daemon's INI configuration (the HA check, the agent sync).

The file must be readable, parse, hold exactly that section and only known keys; the caller converts the values.
Errors are raised as the caller's exception class, with the path in the message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser


def read_section(path, section, known, error=ValueError):
    """The section ``section`` of ``path`` as a configparser section; ``known``: the allowed keys."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path) as handle:
            parser.read_file(handle)
    except (IOError, OSError) as exc:
        raise error('cannot read %s: %s' % (path, exc))
    except configparser.Error as exc:
        raise error('%s: %s' % (path, exc))
    if not parser.has_section(section):
        raise error('%s: no [%s] section' % (path, section))
    for extra in parser.sections():
        if extra != section:
            raise error('%s: unknown section [%s]' % (path, extra))
    for key in parser[section]:
        if key not in known:
            raise error('%s: unknown key %r in [%s]' % (path, key, section))
    return parser[section]
