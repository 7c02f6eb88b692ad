#!/bin/sh
# An inventory script with _meta.hostvars: one --list run gives everything.
case "$1" in
--list)
	cat <<'JSON'
{
  "web": ["w1", "w2"],
  "db": {"hosts": ["d1"], "vars": {"role": "db", "ansible_user": "postgres"}, "children": ["db_replica"]},
  "db_replica": {"hosts": ["r1"]},
  "lonely": {"ansible_host": "10.6.0.9"},
  "all": {"vars": {"ntp": "ntp.example.com"}},
  "_meta": {"hostvars": {
    "w1": {"ansible_host": "10.6.0.1", "ansible_port": 2201},
    "w2": {"ansible_ssh_user": "legacy", "tags": ["a", "b"]},
    "r1": {"ansible_become": true, "ansible_become_user": "postgres"},
    "ghost": {"never": "listed in a group"}
  }}
}
JSON
	;;
--host)
	echo "--host must not be called when _meta is given" >&2
	exit 1
	;;
esac
