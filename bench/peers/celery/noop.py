"""The Celery side of bench/jobs.sh: a no-op task on a Redis broker and
result backend (BENCH_REDIS, a redis:// URL of a database number), and a
load client that submits n tasks from c threads and waits for every result.

    celery -A noop worker -c 2 -P prefork          # two prefork workers
    python3 noop.py -n 5000 -c 32                  # prints the exedload line
"""
import argparse
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from celery import Celery

BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
app = Celery("noop", broker=BASE + "/1", backend=BASE + "/2")
app.conf.update(task_ignore_result=False, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)


@app.task(name="noop")
def noop():
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-c", type=int, default=32)
    ap.add_argument("-timeout", type=float, default=600)
    a = ap.parse_args()
    shares = [a.n // a.c + (1 if i < a.n % a.c else 0) for i in range(a.c)]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.c) as pool:
        batches = list(pool.map(lambda k: [noop.delay() for _ in range(k)], shares))
    # Results are read from one thread: the Redis result consumer (a
    # pubsub connection) is not meant to be shared by threads.
    for batch in batches:
        for r in batch:
            if r.get(timeout=a.timeout) is not None or r.state != "SUCCESS":
                sys.exit("noop: task %s ended %s" % (r.id, r.state))
    elapsed = time.monotonic() - start
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("jobs=%d clients=%d seconds=%.3f jobs_per_s=%.0f cpu_s=%.3f"
          % (a.n, a.c, elapsed, a.n / elapsed, ru.ru_utime + ru.ru_stime))


if __name__ == "__main__":
    main()
