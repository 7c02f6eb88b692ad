package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// BlockedClients is the number of connections waiting in a blocking
// command (BLPOP, XREAD ... BLOCK, XREADGROUP ... BLOCK), as INFO clients
// reports it in blocked_clients. It fails the test when Redis does not
// answer or does not report it.
func BlockedClients(t testing.TB, rdb goredis.UniversalClient) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatalf("INFO clients: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO clients: blocked_clients: %v", err)
			}
			return n
		}
	}
	t.Fatalf("INFO clients reports no blocked_clients")
	return 0
}
