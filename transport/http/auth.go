package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// bearerAuth checks "Authorization: Bearer <token>" against a fixed set of
// tokens in constant time. Tokens are never logged.
type bearerAuth struct {
	sums [][sha256.Size]byte
}

func newBearerAuth(tokens []string) *bearerAuth {
	a := &bearerAuth{}
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			a.sums = append(a.sums, sha256.Sum256([]byte(t)))
		}
	}
	return a
}

// ok compares the hashes of every token, always all of them, so neither the
// token's length nor which token matched shows in the timing.
func (a *bearerAuth) ok(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for i := range a.sums {
		match |= subtle.ConstantTimeCompare(sum[:], a.sums[i][:])
	}
	return match == 1
}

func (a *bearerAuth) wrap(next http.Handler) http.Handler {
	if len(a.sums) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ok(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="exed"`)
			writeMessage(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}
