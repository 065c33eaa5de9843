# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Call-center agent logins of a Wazo stack (wazo-agentd's REST API) and their reconciliation.

* :class:`Agentd`: a token from wazo-auth (``POST /api/auth/0.1/token``, basic auth of the agent sync user),
  then wazo-agentd through the stack's nginx (``/api/agentd/1.0``): ``GET /agents?recurse=true`` (every
  agent's status), ``POST /agents/by-number/<n>/login`` with ``{"extension", "context"}`` and
  ``POST /agents/by-number/<n>/logoff``, with the agent's tenant in ``Wazo-Tenant``. A token refused (401)
  is renewed once.
* :func:`plan`: what makes a destination stack's logins equal to a source stack's, agent by agent (matched by
  tenant and number): ``login`` (logged on the source only), ``logoff`` (logged on the destination only),
  ``relog`` (logged on both, on another extension or context: logoff then login). Pauses are not copied.
  Agents that exist on one stack only are listed in ``missing`` (never acted on).
* :func:`apply`: runs a plan, one result per action (a 409 that leaves the agent in the wanted state counts
  as done).

The ACLs the agent sync user needs are :data:`REQUIRED_ACLS` (wazo-agentd's API spec names them).
Standard library only: installed on the proxy beside the agent sync daemon.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils._wazo_https import WazoHTTPError, WazoHTTPS

AUTH_PREFIX = '/api/auth/0.1'
AGENTD_PREFIX = '/api/agentd/1.0'
# Only what the reconciliation calls: read every agent's status, log one in, log one off.
REQUIRED_ACLS = (
    'agentd.agents.read',
    'agentd.agents.by-number.*.login.create',
    'agentd.agents.by-number.*.logoff.create',
)
TOKEN_EXPIRATION = 3600


class AgentdError(Exception):
    """A stack's wazo-auth or wazo-agentd did not give a usable answer (``stack`` names it)."""

    def __init__(self, stack, msg, status=None):
        super(AgentdError, self).__init__('%s: %s' % (stack, msg))
        self.stack = stack
        self.status = status
        self.reason = msg


class Agentd:
    """wazo-agentd of one stack, with a wazo-auth token renewed when refused."""

    def __init__(self, name, address, username, password, port=443, ca_file=None, verify=True, timeout=10.0,
                 http=None):
        self.name = name
        self.address = address
        self.username = username
        self.password = password
        try:
            self.http = http or WazoHTTPS(address, port, ca_file=ca_file, verify=verify, timeout=timeout)
        except WazoHTTPError as exc:
            raise AgentdError(name, str(exc))
        self.token = None

    def _token(self):
        try:
            _status, body = self.http.request('POST', AUTH_PREFIX + '/token', {'expiration': TOKEN_EXPIRATION},
                                              basic=(self.username, self.password))
        except WazoHTTPError as exc:
            raise AgentdError(self.name, 'wazo-auth: %s' % exc, exc.status)
        try:
            return body['data']['token']
        except (KeyError, TypeError):
            raise AgentdError(self.name, 'wazo-auth: no token in the answer')

    def _call(self, method, path, body=None, tenant=None):
        for attempt in (1, 2):
            if self.token is None:
                self.token = self._token()
            headers = {'X-Auth-Token': self.token}
            if tenant:
                headers['Wazo-Tenant'] = tenant
            try:
                return self.http.request(method, AGENTD_PREFIX + path, body, headers=headers)[1]
            except WazoHTTPError as exc:
                if exc.status == 401 and attempt == 1:
                    self.token = None
                    continue
                raise AgentdError(self.name, 'wazo-agentd: %s' % exc, exc.status)
        raise AgentdError(self.name, 'wazo-agentd: token refused twice')  # pragma: no cover

    def agents(self):
        """Every agent's status (all tenants): ``[{id, number, tenant_uuid, logged, extension, context, ...}]``."""
        body = self._call('GET', '/agents?recurse=true')
        if not isinstance(body, list):
            raise AgentdError(self.name, 'wazo-agentd: GET /agents did not return a list')
        return body

    def login(self, agent, extension, context):
        self._call('POST', '/agents/by-number/%s/login' % agent['number'],
                   {'extension': extension, 'context': context}, tenant=agent.get('tenant_uuid'))

    def logoff(self, agent):
        self._call('POST', '/agents/by-number/%s/logoff' % agent['number'], tenant=agent.get('tenant_uuid'))


def agent_key(agent):
    """(tenant, number): what identifies one agent on both stacks."""
    return (agent.get('tenant_uuid') or '', str(agent.get('number')))


def logins(agents):
    """``{(tenant, number): 'extension@context'}`` of the logged agents (for diffs and reports)."""
    return dict((agent_key(a), '%s@%s' % (a.get('extension'), a.get('context'))) for a in agents if a.get('logged'))


def plan(source, destination):
    """Actions making ``destination``'s logins those of ``source``: ``{'actions': [...], 'missing': [...]}``."""
    dest = dict((agent_key(a), a) for a in destination)
    src = dict((agent_key(a), a) for a in source)
    actions, missing = [], []
    for key in sorted(set(src) | set(dest)):
        s, d = src.get(key), dest.get(key)
        if d is None or s is None:
            if (s or d).get('logged'):
                missing.append({'tenant_uuid': key[0], 'number': key[1],
                                'on': 'source' if s is not None else 'destination'})
            continue
        entry = {'tenant_uuid': key[0], 'number': key[1]}
        if s.get('logged'):
            if not d.get('logged'):
                entry['action'] = 'login'
            elif (d.get('extension'), d.get('context')) != (s.get('extension'), s.get('context')):
                entry['action'] = 'relog'
                entry['was'] = '%s@%s' % (d.get('extension'), d.get('context'))
            else:
                continue
            entry['extension'], entry['context'] = s.get('extension'), s.get('context')
        elif d.get('logged'):
            entry['action'] = 'logoff'
            entry['was'] = '%s@%s' % (d.get('extension'), d.get('context'))
        else:
            continue
        actions.append(entry)
    # Logoffs first: an extension freed on the destination can be the one a login needs.
    actions.sort(key=lambda a: ('logoff', 'relog', 'login').index(a['action']))
    return {'actions': actions, 'missing': missing}


def describe(action):
    """One line: ``login 1001 on 1001@default``."""
    if action['action'] == 'logoff':
        return 'logoff %s (was on %s)' % (action['number'], action.get('was'))
    text = '%s %s on %s@%s' % (action['action'], action['number'], action['extension'], action['context'])
    return text + (' (was on %s)' % action['was'] if action.get('was') else '')


def apply(client, actions, log=None):
    """Run ``actions`` on ``client``; returns them with ``ok`` and ``error`` set. Never raises for one agent."""
    results = []
    for action in actions:
        agent = {'number': action['number'], 'tenant_uuid': action['tenant_uuid'] or None}
        done = dict(action, ok=True, error='')
        try:
            if action['action'] in ('logoff', 'relog'):
                try:
                    client.logoff(agent)
                except AgentdError as exc:
                    if exc.status != 409:  # 409: not logged in any more, which is what is wanted
                        raise
            if action['action'] in ('login', 'relog'):
                client.login(agent, action['extension'], action['context'])
        except AgentdError as exc:
            done['ok'], done['error'] = False, str(exc)
        if log:
            log(done)
        results.append(done)
    return results


def reconcile(source, destination, check=False, log=None):
    """Make ``destination`` (an :class:`Agentd`) log in and off like ``source``. Raises AgentdError when a
    stack cannot be read; per-agent failures are in the results (``ok`` false)."""
    src_agents = source.agents()
    dst_agents = destination.agents()
    todo = plan(src_agents, dst_agents)
    results = todo['actions'] if check else apply(destination, todo['actions'], log)
    return {'source': source.name, 'destination': destination.name, 'actions': results,
            'missing': todo['missing'], 'before': logins(dst_agents), 'wanted': logins(src_agents),
            'failed': [r for r in results if not r.get('ok', True)]}
