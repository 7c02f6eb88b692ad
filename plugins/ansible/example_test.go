package ansible_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/plugins/ansible"
)

// Run a command through ansible's shell module on a local-connection host.
func ExampleNew() {
	x, err := ansible.New(ansible.Config{Workdir: "testdata", Inventory: "local.ini"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Close()
	_ = x.Execute(context.Background(), []string{"loc"}, exe.ExecuteArgs{Cmd: "echo hello"}, func(ev exe.Event) {
		fmt.Println(ev.Host, ev.Status, strings.TrimSpace(ev.Exec.Stdout))
	})
	// Output: loc CHANGED hello
}
