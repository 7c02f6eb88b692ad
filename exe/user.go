package exe

import "context"

type userKey struct{}

// WithUser returns ctx carrying the name of whoever makes the request: the
// transport sets it from the request's verified credentials, and Submit
// records it as the job's User.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the name WithUser put in ctx, or "".
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}
