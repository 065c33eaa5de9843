# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an Ansible module's main() in-process and return its JSON result."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import io
import json

from ansible.module_utils.testing import patch_module_args


def run_module(module, args, check_mode=False, diff=False):
    """Returns the result dict (``failed`` set when the module failed)."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit:
            pass
    text = out.getvalue()
    start = text.find('{')
    assert start >= 0, 'no JSON from the module: %r' % text
    return json.loads(text[start:])
