package redis_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/0ops/exed/exe"
	exeredis "github.com/0ops/exed/jobstore/redis"
	goredis "github.com/redis/go-redis/v9"
)

// A store is a go-redis client and a key prefix. While Redis cannot be
// reached, every call fails with exe.ErrUnavailable, which the HTTP API
// answers with 503 and the error's message. The client's pool size does
// not matter to follows: their reads have a pool of the store's own,
// which Close closes.
func ExampleNew() {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	store := exeredis.New(rdb, exeredis.Options{Prefix: "exe:", Retention: 7 * 24 * time.Hour})
	defer store.Close()
	_, err := store.List(context.Background())
	fmt.Println(errors.Is(err, exe.ErrUnavailable))
	// Output: true
}
