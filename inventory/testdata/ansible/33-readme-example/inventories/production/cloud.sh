#!/bin/sh
# The README's inventory script: one cloud host with its variables.
if [ "$1" = --list ]; then
	echo '{"cloud": {"hosts": ["vm-7"]}, "_meta": {"hostvars": {"vm-7": {"ansible_host": "10.1.0.7"}}}}'
else
	echo '{}'
fi
