package inventory_test

import (
	"fmt"
	"strings"

	"github.com/0ops/exed/inventory"
)

// Parse an Ansible INI inventory and select hosts with Ansible's pattern
// rules: a glob, an intersection with a group, an exclusion.
func ExampleInventory_Match() {
	inv, err := inventory.Parse(strings.NewReader(`
[web]
web[01:04].example.com
[prod]
web0[1:3].example.com
`), "hosts.ini")
	if err != nil {
		fmt.Println(err)
		return
	}
	hosts, _ := inv.Match("web*:&prod:!web02*")
	fmt.Println(hosts)
	// Output: [web01.example.com web03.example.com]
}

// A Go executor whose hosts come from elsewhere gets Ansible's patterns
// from a static inventory.
func ExampleStatic() {
	inv, err := inventory.Static("web[1:3]", "db1")
	if err != nil {
		fmt.Println(err)
		return
	}
	hosts, _ := inv.Match("web*:db1:!web2")
	fmt.Println(hosts)
	// Output: [db1 web1 web3]
}

// Read variables as ansible-playbook reads `-e @vars.yml`: YAML 1.1's
// types, so yes is a boolean and 0755 an octal number.
func ExampleParseVars() {
	vars, _, err := inventory.ParseVars([]byte("port: 8080\nenabled: yes\nmode: 0755\nname: !unsafe '{{ x }}'\n"), "vars.yml")
	fmt.Println(vars["port"], vars["enabled"], vars["mode"], vars["name"], err)
	// Output: 8080 true 493 {{ x }} <nil>
}
