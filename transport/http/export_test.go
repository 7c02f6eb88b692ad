package http

import "maps"

// Patterns are the method patterns ("GET /exe/jobs/{jid}") the API
// registered on its mux, each with whether it is public (needs no
// credentials).
func (a *API) Patterns() map[string]bool { return maps.Clone(a.patterns) }
