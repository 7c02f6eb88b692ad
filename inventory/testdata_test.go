package inventory_test

// sample is the inventory the tests (and the comparison with ansible) use.
const sample = `# a fleet
lonely.example.com
jump ansible_host=10.0.0.9 ansible_port=2200

[web]
web[01:05].example.com ansible_user=deploy
web-extra:2222 role="edge node"

[db]
db-[a:c]
web03.example.com

[prod:children]
web
db

[staging]
web05.example.com
stage[0:6:3]

[prod:vars]
env=production
ansible_user=ops

[all:vars]
env=unknown
ntp=ntp.example.com

[empty]
`
