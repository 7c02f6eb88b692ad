package sshnative

import (
	"context"
	"encoding/json"

	"github.com/0ops/exed/exe"
)

var _ exe.RequestValidator = (*Executor)(nil)

// ValidateRequest implements exe.RequestValidator: a deploy whose role or
// tag scripts are missing or too large, or whose extra_vars cannot reach
// a script, is refused before the job is stored, with the message Deploy
// would fail with. Deploy checks again when it runs.
func (x *Executor) ValidateRequest(_ context.Context, req exe.Request) error {
	if req.Operate != exe.OpDeploy {
		return nil
	}
	if _, err := x.loadRole(req.Deploy); err != nil {
		return err
	}
	if _, err := json.Marshal(req.Deploy.ExtraVars); err != nil {
		return exe.Errorf(exe.ErrInvalid, "extra_vars: %v", err)
	}
	_, err := varEnv(req.Deploy.ExtraVars)
	return err
}

// Validates implements exe.ValidationScope: ValidateRequest checks deploys
// only, so exed asks about nothing else.
func (x *Executor) Validates(op exe.Operate) bool { return op == exe.OpDeploy }
