// Command exectl runs operations on hosts through exed's HTTP API and
// shows each host's result as it finishes, in the shape of Ansible's
// ad-hoc commands. It is built on the client package.
//
//	go build -o exectl ./examples/exectl
//	export EXED_URL=http://127.0.0.1:16808 EXED_TOKEN=...   # or --url, --token
//
//	exectl hosts 'web*:!web3'                       # the hosts a pattern selects
//	exectl ping all
//	exectl facts db1
//	exectl run 'web*' -- uptime                     # or: exectl run 'web*' -a uptime
//	exectl service 'web*' nginx --state reloaded    # started, stopped, restarted, reloaded
//	exectl deploy nginx 'web*' -t reconfig -e @prod.yml -e port=8080
//	exectl task rollingrestart 'web*' --opt service=nginx --opt batch=25%
//	exectl tasks                                    # task types and their options
//	exectl jobs                                     # newest first
//	exectl job JID [--follow]
//	exectl cancel JID
//	exectl completion bash > /etc/bash_completion.d/exectl   # zsh, fish too
//
// # Output
//
// Each host's result is printed as soon as it finishes: a command's as
// "web1 | CHANGED | rc=0 >>" followed by its output (FAILED for a
// non-zero exit code), other operations' as "web1 | SUCCESS => {...}"
// with the event's JSON, and "UNREACHABLE!" or "FAILED!" with the reason.
// Deploy and task steps carry their step's name, their announcements are
// "TASK [...]" banners, and a PLAY RECAP counts each host's results at
// the end.
//
// On a terminal, a summary line under the results shows the hosts done,
// failed and still running and the time since the job started; it is
// redrawn in place and cleared at the end. Colours are Ansible's (ok
// green, changed yellow, failed red, unreachable bright red, skipped
// cyan), on a terminal only, and never with NO_COLOR set. Off a terminal
// the output is plain lines. --json prints the API's own objects as JSON
// lines: a followed job as GET /jobs/{jid}?follow=1 streams it (the job,
// one {"host": event} per event, the final job).
//
// # Patterns and options
//
// PATTERN is an Ansible host pattern, resolved by the server (GET
// /target); a pattern that selects no host is an error, not an empty
// success. deploy takes ansible-playbook's -t/--tags and -e/--extra-vars
// (@file.yml read as Ansible reads vars files, key=value pairs, or YAML
// or JSON), repeated, later ones winning. task's --opt values are typed
// by the task's schema (batch=2 a number, batch=25% a string).
// --timeout is the API's timeout: the server stops the hosts not
// finished by then (FAILED "command timed out"). -f/--forks (ping,
// facts, run, service and deploy, as ansible and ansible-playbook have
// it) is the API's forks: the hosts worked on at once, lowered by the
// server to its [runner] concurrency, which applies without it; tasks
// pace their hosts themselves and have none. Ansible's -b/--become is
// refused: exed takes privilege escalation from the inventory
// (ansible_become), not per request.
//
// # Interrupting
//
// Ctrl-C while a job is followed asks the server to cancel it (POST
// /jobs/{jid}/cancel) and goes on showing hosts until it has ended, each
// interrupted host FAILED "cancelled". A second Ctrl-C stops following at
// once and leaves the job to the server (exectl job JID --follow finds it
// again). A dropped connection is followed again from where it broke.
//
// # Exit status
//
// 0 when the job ended Done (every host OK, CHANGED or SKIPPED); 2 when
// it ended Failure (a host FAILED or UNREACHABLE, or the job was
// cancelled); 1 for a usage error, a refusal of the API (with its
// message and status) or a server that cannot be reached; 130 after a
// second Ctrl-C.
package main
