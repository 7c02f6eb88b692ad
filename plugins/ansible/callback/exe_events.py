# exe_events: an Ansible stdout callback that prints one JSON object per
# line for exed: play and task starts, each host's start of a task, and
# every host result (loop items included) as it arrives. exed writes this file into a private directory
# and selects it with ANSIBLE_STDOUT_CALLBACK=exe_events.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import sys

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: exe_events
    type: stdout
    short_description: one JSON line per play, task and host result, for exed
    description: Prints play and task starts and every host result as JSON lines.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'exe_events'

    def _emit(self, obj):
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()

    def _result(self, status, result, item=False):
        res = dict(result._result)
        if status == 'ok' and res.get('changed'):
            status = 'changed'
        res.pop('invocation', None)
        self._emit({
            'event': 'result',
            'status': status,
            'host': result._host.get_name(),
            'task': result._task.get_name(),
            'item': item,
            'result': res,
        })

    def v2_playbook_on_play_start(self, play):
        self._emit({'event': 'play', 'name': play.get_name()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit({'event': 'task', 'name': task.get_name()})

    def v2_runner_on_start(self, host, task):
        # exed reports a host whose task an interruption cut short.
        self._emit({'event': 'start', 'host': host.get_name(), 'task': task.get_name()})

    def v2_runner_on_ok(self, result):
        self._result('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('ok' if ignore_errors else 'failed', result)

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result)

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_runner_item_on_ok(self, result):
        self._result('ok', result, item=True)

    def v2_runner_item_on_failed(self, result):
        self._result('failed', result, item=True)

    def v2_runner_item_on_skipped(self, result):
        self._result('skipped', result, item=True)

    def v2_playbook_on_stats(self, stats):
        self._emit({'event': 'stats'})
