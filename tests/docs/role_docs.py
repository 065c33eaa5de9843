# Copyright: wazo.maintenance_mode contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role READMEs: the variables section is generated from each role's meta/argument_specs.yml.

Usage (from the checkout, with the venv's Python):

    .venv/bin/python tests/docs/role_docs.py           # rewrite the generated part of every roles/*/README.md
    .venv/bin/python tests/docs/role_docs.py --check   # change nothing; exit 1 on any drift (make docs-check)

Each roles/<name>/README.md is hand-written except the part between the two markers below, which holds,
for every entry point of meta/argument_specs.yml (main first), a table of its options: name, type,
required, default, choices and description (no_log options are marked as secrets).

Besides the READMEs, both modes check that the specs describe the role's defaults: every variable of
defaults/main.yml is an option of one of the role's entry points, and an option's spec default equals
the value in defaults/main.yml when both are plain values (a templated default, "{{ ... }}", is only
described in prose). They also check the collection metadata the READMEs rely on: every role's
min_ansible_version matches meta/runtime.yml's requires_ansible, and the action group lists every
module in plugins/modules/.

It also writes docs/inventory-reference.md: every variable an operator can set in the inventory, once, with the
roles that read it (from the roles' main entry points), the required ones first.

Exit status: 0 when everything matches, 1 when something drifted (each problem is printed on stderr),
2 on a usage error.
"""

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

BEGIN = '<!-- BEGIN GENERATED: variables (from meta/argument_specs.yml) -->'
END = '<!-- END GENERATED -->'
ROOT = Path(__file__).resolve().parents[2]
ACTION_GROUP = 'maintenance_mode'
# Python types a spec default must have, per option type.
TYPES = {'str': str, 'path': str, 'int': int, 'float': (int, float), 'bool': bool, 'list': list, 'dict': dict}

# Ansible documentation markup (C(), O(), I(), ...) as Markdown.
MARKUP = [
    (re.compile(r'L\(([^)]*?),\s*([^)]*?)\)'), r'[\1](\2)'),
    (re.compile(r'U\(([^)]*?)\)'), r'<\1>'),
    (re.compile(r'[COVEM]\(([^)]*?)\)'), r'`\1`'),
    (re.compile(r'I\(([^)]*?)\)'), r'*\1*'),
    (re.compile(r'B\(([^)]*?)\)'), r'**\1**'),
]


def markdown(text):
    """One description (a string or a list of paragraphs) as Markdown on one line."""
    if text is None:
        return ''
    if isinstance(text, (list, tuple)):
        text = ' '.join(str(t).strip() for t in text)
    text = ' '.join(str(text).split())
    for pattern, repl in MARKUP:
        text = pattern.sub(repl, text)
    return text


def cell(text):
    """Text made safe for a Markdown table cell."""
    return text.replace('|', '\\|')


def literal(value):
    """A default or choice as it would be written in YAML, in a code span."""
    if value == '':
        rendered = '""'
    else:
        rendered = yaml.safe_dump(value, default_flow_style=True, width=10000).strip()
        rendered = rendered.removesuffix('...').strip()
    return '`%s`' % rendered.replace('`', "'")


def option_type(spec):
    kind = spec.get('type', 'str')
    if spec.get('elements'):
        kind = '%s of %s' % (kind, spec['elements'])
    return kind


def option_row(name, spec):
    description = markdown(spec.get('description'))
    if spec.get('no_log'):
        description = '**Secret** (`no_log`): never logged. ' + description
    if spec.get('options'):
        description += ' Suboptions: %s.' % ', '.join('`%s`' % sub for sub in spec['options'])
    default = literal(spec['default']) if 'default' in spec else ''
    choices = ', '.join(literal(c) for c in spec.get('choices') or [])
    return '| `%s` | %s | %s | %s | %s | %s |' % (
        name, option_type(spec), 'yes' if spec.get('required') else 'no', cell(default), cell(choices), cell(description.strip()))


def entry_point_order(specs):
    return sorted(specs, key=lambda name: (name != 'main', name))


def render(role, specs):
    """The generated block, markers included."""
    lines = [BEGIN, '## Variables', '',
             'Generated from `meta/argument_specs.yml` by `make docs` (`tests/docs/role_docs.py`): edit the specs, not this section.',
             'Ansible validates these options when the role starts.']
    for entry in entry_point_order(specs):
        spec = specs[entry] or {}
        lines += ['']
        if entry == 'main':
            lines += ['### Entry point `main`', '']
        else:
            lines += ['### Entry point `%s`' % entry, '',
                      'Called with `ansible.builtin.include_role: {name: wazo.maintenance_mode.%s, tasks_from: %s}`.' % (role, entry), '']
        if spec.get('short_description'):
            lines += ['**%s**' % markdown(spec['short_description']).rstrip('.'), '']
        description = spec.get('description') or []
        if isinstance(description, str):
            description = [description]
        for paragraph in description:
            lines += ['- ' + markdown(paragraph)]
        if description:
            lines += ['']
        options = spec.get('options') or {}
        if not options:
            lines += ['No options.']
            continue
        lines += ['| variable | type | required | default | choices | description |',
                  '|---|---|---|---|---|---|']
        # Required options first, then alphabetical order.
        required = [name for name in sorted(options) if (options[name] or {}).get('required')]
        for name in required + [name for name in sorted(options) if name not in required]:
            lines.append(option_row(name, options[name] or {}))
    lines += ['', END]
    return '\n'.join(lines)


INVENTORY_REFERENCE = ROOT / 'docs' / 'inventory-reference.md'
# Set by the preflight role on every host, never by the operator.
NOT_INPUTS = {'wazo_mm_topology'}


def render_inventory_reference(all_specs):
    """docs/inventory-reference.md from {role: specs}: one row per variable of the main entry points."""
    seen = {}
    for role in sorted(all_specs):
        options = ((all_specs[role] or {}).get('main') or {}).get('options') or {}
        for name, spec in options.items():
            if name in NOT_INPUTS:
                continue
            entry = seen.setdefault(name, {'spec': spec or {}, 'roles': [], 'required': False})
            entry['roles'].append(role)
            entry['required'] = entry['required'] or bool((spec or {}).get('required'))
    lines = ['# Inventory reference', '',
             'Generated from the roles\' `meta/argument_specs.yml` by `make docs` (`tests/docs/role_docs.py`): edit the '
             'specs, not this file.', '',
             'The inventory has the groups `proxy` (the Kamailio host), `primary`, `secondary` (one host each) and, '
             'optionally, `nfs_server` (default: the proxy); `inventory.example` is a complete one. Each host may set '
             '`wazo_mm_address` (the address the others reach it by; default its `ansible_host`). Every other variable '
             'goes in `group_vars/all` (secrets in a vault) or on the command line. A variable read by several roles '
             'has one meaning; its row names them, and each role\'s README has its full entry (other entry points '
             'included).', '',
             '| variable | required | type | default | read by | description |',
             '|---|---|---|---|---|---|']
    order = sorted(seen, key=lambda name: (not seen[name]['required'], name))
    for name in order:
        entry = seen[name]
        spec = entry['spec']
        description = markdown(spec.get('description'))
        if spec.get('no_log'):
            description = '**Secret** (vault it; never logged). ' + description
        default = literal(spec['default']) if 'default' in spec else ''
        roles = ', '.join('[%s](../roles/%s/README.md)' % (r, r) for r in entry['roles'])
        row = (name, 'yes' if entry['required'] else 'no', option_type(spec), cell(default), roles, cell(description.strip()))
        lines.append('| `%s` | %s | %s | %s | %s | %s |' % row)
    return '\n'.join(lines) + '\n'


def split_readme(text):
    """(before, generated, after) or None when the markers are missing or out of order."""
    start = text.find(BEGIN)
    end = text.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start < 0 or end < 0 or text.count(BEGIN) != 1 or text.count(END) != 1:
        return None
    return text[:start], text[start:end + len(END)], text[end + len(END):]


class SpecError(Exception):
    """A file the check needs cannot be read as YAML."""


def load_yaml(path):
    try:
        return yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except yaml.YAMLError as exc:
        raise SpecError('%s: not valid YAML (%s)' % (path.relative_to(ROOT), ' '.join(str(exc).split()))) from exc


def is_templated(value):
    if isinstance(value, str):
        return '{{' in value or '{%' in value
    if isinstance(value, list):
        return any(is_templated(v) for v in value)
    if isinstance(value, dict):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    return False


def same_value(spec_default, default):
    if isinstance(spec_default, bool) != isinstance(default, bool):
        return False
    return spec_default == default


def check_defaults(role_dir, specs):
    """Problems between defaults/main.yml and the specs' options."""
    problems = []
    defaults_file = role_dir / 'defaults' / 'main.yml'
    if not defaults_file.is_file():
        return problems
    defaults = load_yaml(defaults_file)
    options = {}
    for entry in entry_point_order(specs):
        for name, spec in ((specs[entry] or {}).get('options') or {}).items():
            options.setdefault(name, []).append((entry, spec or {}))
    rel = defaults_file.relative_to(ROOT)
    for name, value in defaults.items():
        if name not in options:
            problems.append('%s: %s is not an option of any entry point in meta/argument_specs.yml' % (rel, name))
            continue
        if is_templated(value):
            continue
        for entry, spec in options[name]:
            if 'default' not in spec:
                problems.append('%s: %s = %r, but entry point %s of meta/argument_specs.yml gives no default' % (rel, name, value, entry))
            elif not same_value(spec['default'], value):
                problems.append('%s: %s = %r, but entry point %s of meta/argument_specs.yml says default %r'
                                % (rel, name, value, entry, spec['default']))
    # Ansible never applies a spec default: one that defaults/main.yml does not set documents nothing real.
    specs_rel = rel.parent.parent / 'meta' / 'argument_specs.yml'
    for entry in entry_point_order(specs):
        for name, spec in ((specs[entry] or {}).get('options') or {}).items():
            spec = spec or {}
            if 'default' in spec and spec['default'] is not None and name not in defaults:
                problems.append('%s: entry point %s: %s has default %r, which defaults/main.yml does not set'
                                % (specs_rel, entry, name, spec['default']))
            if spec.get('required') and name in defaults:
                problems.append('%s: entry point %s: %s is required, yet defaults/main.yml sets it' % (specs_rel, entry, name))
            expected = TYPES.get(spec.get('type', 'str'))
            value = spec.get('default')
            if expected and value is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
                problems.append('%s: entry point %s: %s is of type %s, but its default is %r'
                                % (specs_rel, entry, name, spec.get('type', 'str'), value))
    return problems


def version_tuple(text):
    parts = [int(p) for p in re.findall(r'\d+', str(text))]
    while parts and parts[-1] == 0 and len(parts) > 2:
        parts.pop()
    return tuple(parts + [0] * (2 - len(parts)))


def check_collection(roles):
    """Problems in the collection metadata: min_ansible_version of the roles, the action group."""
    problems = []
    runtime_file = ROOT / 'meta' / 'runtime.yml'
    runtime = load_yaml(runtime_file)
    requires = str(runtime.get('requires_ansible', ''))
    minimum = re.match(r'\s*>=\s*([0-9.]+)', requires)
    for role_dir in roles:
        meta_file = role_dir / 'meta' / 'main.yml'
        if not meta_file.is_file():
            problems.append('%s: missing' % meta_file.relative_to(ROOT))
            continue
        info = load_yaml(meta_file).get('galaxy_info') or {}
        found = info.get('min_ansible_version')
        if minimum and (found is None or version_tuple(found) != version_tuple(minimum.group(1))):
            problems.append('%s: min_ansible_version %r, but meta/runtime.yml requires_ansible is %r'
                            % (meta_file.relative_to(ROOT), found, requires))
    modules = sorted(p.stem for p in (ROOT / 'plugins' / 'modules').glob('*.py') if not p.name.startswith('_'))
    group = ((runtime.get('action_groups') or {}).get(ACTION_GROUP)) or []
    for module in modules:
        if module not in group:
            problems.append('meta/runtime.yml: action group %s does not list module %s' % (ACTION_GROUP, module))
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate (or --check) the variables section of every role README.')
    parser.add_argument('--check', action='store_true', help='change nothing; exit 1 when a README or spec drifted')
    parser.add_argument('roles', nargs='*', help='role names (default: every role under roles/)')
    args = parser.parse_args(argv)

    if args.roles:
        roles = [ROOT / 'roles' / name for name in args.roles]
        missing = [str(r.relative_to(ROOT)) for r in roles if not r.is_dir()]
        if missing:
            parser.error('no such role: %s' % ', '.join(missing))
    else:
        roles = sorted(p for p in (ROOT / 'roles').iterdir() if p.is_dir())

    problems, rewritten = [], []
    all_specs = {}
    for role_dir in roles:
        role = role_dir.name
        specs_file = role_dir / 'meta' / 'argument_specs.yml'
        readme = role_dir / 'README.md'
        if not specs_file.is_file():
            problems.append('%s: missing (every role documents its variables there)' % specs_file.relative_to(ROOT))
            continue
        try:
            specs = load_yaml(specs_file).get('argument_specs') or {}
            all_specs[role] = specs
            if 'main' not in specs:
                problems.append('%s: no entry point main' % specs_file.relative_to(ROOT))
            problems += check_defaults(role_dir, specs)
        except SpecError as exc:
            problems.append(str(exc))
            continue
        if not readme.is_file():
            problems.append('%s: missing (write its introduction, then run make docs)' % readme.relative_to(ROOT))
            continue
        text = readme.read_text(encoding='utf-8')
        generated = render(role, specs)
        parts = split_readme(text)
        if parts is None:
            if args.check:
                problems.append('%s: the markers %s / %s are missing (once each, in that order); run make docs'
                                % (readme.relative_to(ROOT), BEGIN, END))
                continue
            if BEGIN in text or END in text:
                problems.append('%s: the markers are not once each in order; fix them by hand' % readme.relative_to(ROOT))
                continue
            new = text.rstrip('\n') + '\n\n' + generated + '\n'
        else:
            before, current, after = parts
            if current == generated:
                continue
            if args.check:
                diff = list(difflib.unified_diff(current.splitlines(), generated.splitlines(), 'README.md', 'generated', n=0, lineterm=''))
                shown = '\n'.join('    ' + line for line in diff[2:14]) + ('\n    ...' if len(diff) > 14 else '')
                problems.append('%s: the variables section differs from meta/argument_specs.yml; run make docs\n%s'
                                % (readme.relative_to(ROOT), shown))
                continue
            new = before + generated + after
        readme.write_text(new, encoding='utf-8')
        rewritten.append(str(readme.relative_to(ROOT)))

    if not args.roles:
        reference = render_inventory_reference(all_specs)
        current = INVENTORY_REFERENCE.read_text(encoding='utf-8') if INVENTORY_REFERENCE.is_file() else None
        if current != reference:
            if args.check:
                problems.append('%s: differs from the roles\' argument_specs; run make docs'
                                % INVENTORY_REFERENCE.relative_to(ROOT))
            else:
                INVENTORY_REFERENCE.write_text(reference, encoding='utf-8')
                rewritten.append(str(INVENTORY_REFERENCE.relative_to(ROOT)))
        try:
            problems += check_collection(roles)
        except SpecError as exc:
            problems.append(str(exc))

    for path in rewritten:
        print('rewrote %s' % path)
    for problem in problems:
        print('docs-check: %s' % problem, file=sys.stderr)
    if problems:
        print('docs-check: %d problem(s)' % len(problems), file=sys.stderr)
        return 1
    if args.check:
        print('docs-check: %d role READMEs match their meta/argument_specs.yml' % len(roles))
    return 0


if __name__ == '__main__':
    sys.exit(main())
