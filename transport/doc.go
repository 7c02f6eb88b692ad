// Package transport groups the ways exed's Engine is served; transport/http
// is the HTTP API of API.md.
package transport
