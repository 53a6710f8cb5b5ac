"""Fail loudly when CI's PostgreSQL or Redis is unreachable: that run may not skip them."""

import sys

import psycopg
import redis


def main(pg_url: str, redis_url: str) -> int:
    try:
        with psycopg.connect(pg_url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        print(f"PostgreSQL at {pg_url} is unreachable: {exc}", file=sys.stderr)
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_timeout=5).ping()
    except Exception as exc:
        print(f"Redis at {redis_url} is unreachable: {exc}", file=sys.stderr)
        return 1
    print(f"PostgreSQL and Redis reachable ({pg_url}, {redis_url})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
