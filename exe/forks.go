package exe

import "context"

type forksKey struct{}

// WithForks returns ctx carrying a request's Forks: Perform sets it, so
// that an executor's operation, which gets hosts and arguments but not
// the Request, can bound its fan-out by it. Zero or less leaves ctx as
// it is.
func WithForks(ctx context.Context, forks int) context.Context {
	if forks <= 0 {
		return ctx
	}
	return context.WithValue(ctx, forksKey{}, forks)
}

// ForksFrom returns the Forks WithForks put in ctx, or 0 when the request
// set none. An executor works on at most min(ForksFrom(ctx), its own
// bound) hosts at once, its own bound alone when this is 0.
func ForksFrom(ctx context.Context) int {
	n, _ := ctx.Value(forksKey{}).(int)
	return n
}

// BoundForks returns how many hosts at once an executor whose own bound
// is limit (its configured forks, at least 1) works on for the operation
// of ctx: the request's Forks when it is set and lower, else limit.
func BoundForks(ctx context.Context, limit int) int {
	if n := ForksFrom(ctx); n > 0 && n < limit {
		return n
	}
	return limit
}
