package auth_test

import (
	"fmt"

	"github.com/0ops/exed/auth"
	"github.com/0ops/exed/exe"
)

// A credentials file names each token and scopes what it may do: the API
// refuses (403) a request its credential's scope does not allow, before
// anything runs.
func ExampleParse() {
	file, warnings, err := auth.Parse([]byte(`
# operators restart services and read jobs; the deploy bot deploys web roles
ops-0123456789abcdef name=ops ops=service,read
bot-0123456789abcdef name=deploybot ops=deploy:web-* jobs=own
`), "exed.tokens")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("warnings:", len(warnings))
	bot, _ := file.Token("bot-0123456789abcdef")
	fmt.Println(bot.Name, bot.OwnJobs)
	for _, role := range []string{"web-nginx", "db-postgres"} {
		why := bot.AllowRequest(exe.Request{Operate: exe.OpDeploy, Deploy: exe.DeployArgs{Role: role}})
		fmt.Printf("deploy %s: %q\n", role, why)
	}
	_, ok := file.Token("guess-0123456789ab")
	fmt.Println("unknown token:", ok)
	// Output:
	// warnings: 0
	// deploybot true
	// deploy web-nginx: ""
	// deploy db-postgres: "deploy of role \"db-postgres\" is not allowed"
	// unknown token: false
}
