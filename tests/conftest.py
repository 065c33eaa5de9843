# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest: make ``ansible_collections.wazo.maintenance_mode`` importable from the checkout.

``make venv`` links the checkout as ``.collections/ansible_collections/wazo/maintenance_mode``;
putting ``.collections`` first on sys.path lets tests import the collection's plugins by FQCN.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COLLECTIONS = os.path.join(_ROOT, '.collections')
_LINK = os.path.join(_COLLECTIONS, 'ansible_collections', 'wazo', 'maintenance_mode')

if os.path.isdir(_LINK):
    _PATH = _COLLECTIONS
elif _ROOT.replace(os.sep, '/').endswith('/ansible_collections/wazo/maintenance_mode'):
    # already laid out as a collection (ansible-test's mirror, an installed collection)
    _PATH = os.path.dirname(os.path.dirname(os.path.dirname(_ROOT)))
else:
    raise RuntimeError('%s is missing: run `make venv` (it links the checkout there)' % _LINK)
if _PATH not in sys.path:
    sys.path.insert(0, _PATH)
