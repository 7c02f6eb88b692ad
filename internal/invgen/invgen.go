// Package invgen writes large Ansible inventories for benchmarks and
// scaling tests: n hosts with their own variables in one big group, and in
// a group per rack of 100 hosts under a parent group, as large estates are
// laid out. The INI and YAML forms describe the same inventory.
package invgen

import (
	"fmt"
	"strings"
)

// HostsPerRack is the size of each rackNNNN group.
const HostsPerRack = 100

// Host is the name of host i: node000042.example.com.
func Host(i int) string { return fmt.Sprintf("node%06d.example.com", i) }

// Rack is the name of rack group r: rack0042.
func Rack(r int) string { return fmt.Sprintf("rack%04d", r) }

func address(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// INI writes the inventory of n hosts in Ansible's INI format.
func INI(n int) string {
	var b strings.Builder
	b.WriteString("[fleet]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_user=deploy\n", Host(i), address(i))
	}
	for r := 0; r*HostsPerRack < n; r++ {
		fmt.Fprintf(&b, "[%s]\n", Rack(r))
		for i := r * HostsPerRack; i < n && i < (r+1)*HostsPerRack; i++ {
			b.WriteString(Host(i) + "\n")
		}
	}
	b.WriteString("[racks:children]\n")
	for r := 0; r*HostsPerRack < n; r++ {
		b.WriteString(Rack(r) + "\n")
	}
	b.WriteString("[fleet:vars]\nansible_port=22\n")
	return b.String()
}

// YAML writes the same inventory in Ansible's YAML format.
func YAML(n int) string {
	var b strings.Builder
	b.WriteString("all:\n  children:\n    fleet:\n      vars:\n        ansible_port: 22\n      hosts:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "        %s:\n          ansible_host: %s\n          ansible_user: deploy\n", Host(i), address(i))
	}
	b.WriteString("    racks:\n      children:\n")
	for r := 0; r*HostsPerRack < n; r++ {
		fmt.Fprintf(&b, "        %s:\n          hosts:\n", Rack(r))
		for i := r * HostsPerRack; i < n && i < (r+1)*HostsPerRack; i++ {
			fmt.Fprintf(&b, "            %s:\n", Host(i))
		}
	}
	return b.String()
}

// GroupPerHost writes an INI inventory of n hosts, each in a group of its
// own, as dynamic inventories make a group per instance or tag.
func GroupPerHost(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "[g%06d]\n%s\n", i, Host(i))
	}
	return b.String()
}

// Nested layout: LeafGroups groups share the hosts in equal blocks, under
// parents three levels deep (zones of ten leaves, regions of five zones,
// one estate group), each level with variables of its own, as
// environments, sites and services are usually nested.
const (
	LeafGroups  = 200
	leavesPer   = 10 // leaves per zone
	zonesPer    = 5  // zones per region
	leafRegions = LeafGroups / leavesPer / zonesPer
)

// Leaf is the name of leaf group g: svc042.
func Leaf(g int) string { return fmt.Sprintf("svc%03d", g) }

// Nested writes an INI inventory of n hosts in LeafGroups leaf groups of
// n/LeafGroups hosts (the rest in the last), nested in zones, regions and
// an estate group, with variables at every level and on every host line.
func Nested(n int) string {
	var b strings.Builder
	per := max(n/LeafGroups, 1)
	for g := 0; g < LeafGroups; g++ {
		fmt.Fprintf(&b, "[%s]\n", Leaf(g))
		end := (g + 1) * per
		if g == LeafGroups-1 {
			end = n
		}
		for i := g * per; i < end && i < n; i++ {
			fmt.Fprintf(&b, "%s ansible_host=%s rack=%d\n", Host(i), address(i), i/HostsPerRack)
		}
		fmt.Fprintf(&b, "[%s:vars]\nservice=%s\nansible_port=%d\n", Leaf(g), Leaf(g), 2200+g)
	}
	for z := 0; z < LeafGroups/leavesPer; z++ {
		fmt.Fprintf(&b, "[zone%02d:children]\n", z)
		for g := z * leavesPer; g < (z+1)*leavesPer; g++ {
			b.WriteString(Leaf(g) + "\n")
		}
		fmt.Fprintf(&b, "[zone%02d:vars]\nzone=zone%02d\nansible_user=ops%02d\n", z, z, z)
	}
	for r := 0; r < leafRegions; r++ {
		fmt.Fprintf(&b, "[region%d:children]\n", r)
		for z := r * zonesPer; z < (r+1)*zonesPer; z++ {
			fmt.Fprintf(&b, "zone%02d\n", z)
		}
		fmt.Fprintf(&b, "[region%d:vars]\nregion=region%d\nntp_server=ntp%d.example.com\n", r, r, r)
	}
	b.WriteString("[estate:children]\n")
	for r := 0; r < leafRegions; r++ {
		fmt.Fprintf(&b, "region%d\n", r)
	}
	b.WriteString("[estate:vars]\nansible_become=true\ndomain=example.com\n[all:vars]\nansible_python_interpreter=/usr/bin/python3\n")
	return b.String()
}
