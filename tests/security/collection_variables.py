"""Every variable the collection's playbooks and roles read, derived from the files (never a list by hand).

``read_variables()`` is what an operator could set with ``-e``: the roles' options (argument specs) and
defaults, every name a Jinja expression of a playbook, a task file, a default, a handler or a template
refers to, every input a migration_inputs task declares (and its aliases), and the names the collection's
Python reads from the task's variables (``*_VAR`` constants). ``assigned_variables()`` is what the
collection sets itself (registered results, facts, task, include and play variables): an extra var of
that name would replace it, since extra vars win over every other variable.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import jinja2
import yaml
from jinja2 import meta

ROOT = Path(__file__).resolve().parents[2]
BARE_EXPRESSION_KEYS = ('when', 'until', 'that', 'failed_when', 'changed_when')
# Ansible's own names (magic and special variables, connection variables) and Jinja globals.
ANSIBLE_NAMES = {'hostvars', 'groups', 'group_names', 'inventory_hostname', 'inventory_hostname_short', 'item',
                 'omit', 'play_hosts', 'playbook_dir', 'role_path', 'now', 'lookup', 'query', 'q', 'range',
                 'dict', 'ansible_managed', 'environment', 'undef'}


class _AnyName(dict):
    """Filters and tests by any name: only the variables matter here."""

    def __contains__(self, key):
        return True

    def __missing__(self, key):
        return lambda *args, **kwargs: None

    def get(self, key, default=None):
        return dict.get(self, key) or (lambda *args, **kwargs: None)


_ENV = jinja2.Environment(extensions=['jinja2.ext.do', 'jinja2.ext.loopcontrols'])
_ENV.filters = _AnyName(_ENV.filters)
_ENV.tests = _AnyName(_ENV.tests)


def _names_in(expression):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # regexes in role expressions: "\\[" is fine there
        return set(meta.find_undeclared_variables(_ENV.parse(expression)))


def yaml_files():
    patterns = ('playbooks/*.yml', 'roles/*/tasks/*.yml', 'roles/*/defaults/*.yml', 'roles/*/handlers/*.yml',
                'roles/*/vars/*.yml')
    return sorted(path for pattern in patterns for path in ROOT.glob(pattern))


def _walk(node, key=None):
    """(key, value) for every scalar string of a YAML document, with the key it sits under."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    elif isinstance(node, str):
        yield key, node


def _tasks(node):
    """Every task-like mapping (tasks, blocks, plays) of a YAML document."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ('tasks', 'pre_tasks', 'post_tasks', 'handlers', 'block', 'rescue', 'always'):
            yield from _tasks(node.get(key))


def referenced():
    """Every name a Jinja expression of the collection's YAML and templates refers to."""
    names = set()
    for path in yaml_files():
        for key, text in _walk(yaml.safe_load(path.read_text())):
            if '{{' in text or '{%' in text:
                names |= _names_in(text)
            elif key in BARE_EXPRESSION_KEYS:
                names |= _names_in('{{ %s }}' % text)
    for path in sorted(ROOT.glob('roles/*/templates/*.j2')):
        names |= _names_in(path.read_text())
    return names


def argument_spec_options():
    options = {}
    for path in sorted(ROOT.glob('roles/*/meta/argument_specs.yml')):
        for entry in (yaml.safe_load(path.read_text())['argument_specs'] or {}).values():
            options.update((entry or {}).get('options') or {})
    return options


def role_defaults():
    names = set()
    for path in sorted(ROOT.glob('roles/*/defaults/main.yml')):
        names |= set(yaml.safe_load(path.read_text()) or {})
    return names


def declared_inputs():
    """{name: (kind, playbook or task file)} of every input a migration_inputs task declares, aliases included."""
    inputs = {}
    for path in yaml_files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            args = task.get('autonomi.network_migration.migration_inputs')
            if not isinstance(args, dict):
                continue
            for name, spec in (args.get('inputs') or {}).items():
                for alias in [name] + list((spec or {}).get('aliases') or []):
                    inputs.setdefault(alias, set()).add((spec['kind'], path.relative_to(ROOT).as_posix()))
    return inputs


def python_read():
    """The variable names the collection's Python reads (``*_VAR = '...'`` constants)."""
    names = set()
    for path in sorted((ROOT / 'plugins').rglob('*.py')):
        names |= set(re.findall(r"^[A-Z_]*_VAR = '([a-z_]+)'", path.read_text(), re.M))
    return names


def assigned_variables():
    """What the collection sets itself: registered results, facts, migration_inputs facts, task/play variables."""
    names = set()
    for path in yaml_files():
        document = yaml.safe_load(path.read_text())
        for task in _tasks(document):
            if isinstance(task.get('register'), str):
                names.add(task['register'])
            facts = task.get('ansible.builtin.set_fact')
            if isinstance(facts, dict):
                names |= set(facts)
            inputs = task.get('autonomi.network_migration.migration_inputs')
            if isinstance(inputs, dict):
                names.add(inputs.get('fact', 'migration_inputs'))
            if isinstance(task.get('vars'), dict):
                names |= set(task['vars'])
            if isinstance(task.get('loop_control'), dict) and task['loop_control'].get('loop_var'):
                names.add(task['loop_control']['loop_var'])
    # A role default that is no option of the role is computed by the role (rollback_noop): the role's own.
    return names | (role_defaults() - set(argument_spec_options()))


def read_variables():
    """Every variable the collection reads that an operator could give with -e."""
    names = (referenced() | set(argument_spec_options()) | role_defaults() | set(declared_inputs())
             | python_read())
    return sorted(name for name in names if name not in ANSIBLE_NAMES and not name.startswith('ansible_'))


def playbooks():
    return sorted(path.name for path in (ROOT / 'playbooks').glob('*.yml'))
