"""Search latency over a large index: `python -m tests.bench.search_bench`.

Fills `event_search` with N synthetic messages (default 100 000, spread over 50 rooms,
8-16 words each from a 5 000-word vocabulary of random 4-9 letter words with a
Zipf-like spread: the most common word is in ~75% of messages) through the
persist path's indexing call (`SearchStore.index_event_txn`, in batches of 1 000 per
transaction), then times the queries `POST /search` makes — one page (limit 10 + 1) and
the count — for a mix of terms (a common word, a rare word, two words, a prefix), in
`rank` and `recent` order, over the 10 rooms of a user. Prints p50/p90/p99 in ms.

    python -m tests.bench.search_bench --db sqlite --path /tmp/search-bench.db
    python -m tests.bench.search_bench --db postgres --dsn "host=/tmp/pg user=axon dbname=b"

The figures leave out what the handler adds for the ~10 results (event loading,
visibility, serialisation), which is the same as /messages for 10 events.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

from homeserver.events import Event
from homeserver.room_versions import get_room_version
from storage.database import DatabasePool, Transaction
from storage.engines import create_engine
from storage.prepare import prepare_database
from storage.stores.search import SearchQuery, SearchStore

ROOMS = 50
USER_ROOMS = 10
VOCABULARY = 5000


def _words(rng: random.Random) -> list[str]:
    """Random 4-9 letter words: like a real vocabulary, few are prefixes of others (a
    syllable alphabet made most words prefixes of many, which no language does)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: set[str] = set()
    while len(out) < VOCABULARY:
        out.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    words = sorted(out)
    rng.shuffle(words)
    return words


def _event(n: int, room: str, body: str) -> Event:
    version = get_room_version("10")
    assert version is not None
    pdu = {"type": "m.room.message", "room_id": room, "sender": f"@u{n % 200}:bench",
           "content": {"msgtype": "m.text", "body": body}, "origin_server_ts": n,
           "depth": n, "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"},
           "signatures": {}}
    return Event.from_pdu(pdu, version, event_id=f"$bench{n}")


def fill(db: DatabasePool, store: SearchStore, count: int, words: list[str],
         rng: random.Random) -> float:
    weights = [1 / (i + 1) for i in range(len(words))]
    start = time.perf_counter()
    for base in range(0, count, 1000):
        batch = []
        for n in range(base, min(count, base + 1000)):
            body = " ".join(rng.choices(words, weights, k=rng.randint(8, 16)))
            batch.append(_event(n, f"!room{n % ROOMS}:bench", body))

        def write(txn: Transaction, events: list[Event] = batch) -> None:
            for event in events:
                store.index_event_txn(txn, event, int(event.event_id[6:]) + 1)

        db.run_sync("bench_fill", write)
    return time.perf_counter() - start


def measure(db: DatabasePool, store: SearchStore, words: list[str], rounds: int
            ) -> dict[str, list[float]]:
    rooms = tuple(f"!room{i}:bench" for i in range(USER_ROOMS))
    terms = {"common word": words[0], "rare word": words[-1],
             "two words": f"{words[3]} {words[10]}", "prefix": words[5][:3]}
    times: dict[str, list[float]] = {}
    for label, term in terms.items():
        for order in ("rank", "recent"):
            query = SearchQuery(text=term, room_ids=rooms)
            samples: list[float] = []
            for _ in range(rounds):
                start = time.perf_counter()
                db.run_sync("bench_search", store._search_txn, query,
                            db.engine.render_search_query(term), order, 11, 0, None)
                db.run_sync("bench_count", store._count_txn, query,
                            db.engine.render_search_query(term))
                samples.append((time.perf_counter() - start) * 1000)
            times[f"{label} ({order})"] = samples
    return times


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--path", default="/tmp/axon-search-bench.db")
    parser.add_argument("--dsn", default=os.environ.get("AXON_TEST_PG_DSN", ""))
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    if args.db == "sqlite":
        if os.path.exists(args.path):
            os.remove(args.path)
        engine = create_engine("sqlite3", {"database": args.path})
    else:
        kv: dict[str, Any] = dict(p.split("=", 1) for p in args.dsn.split())
        engine = create_engine("psycopg2", kv)
    db = DatabasePool(engine, reactor=None, synchronous=True)
    prepare_database(db)
    if args.db == "postgres":
        db.run_sync("bench_clear", lambda txn: txn.execute("DELETE FROM event_search"))
    store = SearchStore(db)
    rng = random.Random(12)
    words = _words(rng)
    took = fill(db, store, args.messages, words, rng)
    if args.db == "postgres":
        db.run_sync("bench_analyze", lambda txn: txn.execute("ANALYZE event_search"))
    print(f"{args.db}: indexed {args.messages} messages in {took:.1f} s "
          f"({args.messages / took:.0f}/s)")
    all_samples: list[float] = []
    for label, samples in measure(db, store, words, args.rounds).items():
        all_samples.extend(samples)
        print(f"  {label:24} p50 {statistics.median(samples):7.2f} ms"
              f"  p90 {_pct(samples, 0.9):7.2f} ms  p99 {_pct(samples, 0.99):7.2f} ms")
    print(f"  {'all':24} p50 {statistics.median(all_samples):7.2f} ms"
          f"  p90 {_pct(all_samples, 0.9):7.2f} ms  p99 {_pct(all_samples, 0.99):7.2f} ms")


if __name__ == "__main__":
    main()
