"""Make a generated homeserver.yaml fit for benchmarking; prints its shared secret.

`python -m tests.bench.prepare_config DIR/homeserver.yaml` raises every client `rc_`
limiter (messages, registration, login, joins, invites, room creation) to 100,000/s
(burst 100,000) and sets `bcrypt_rounds: 4`, so the load generator measures the server,
not its rate limiter or password hashing. The file is rewritten without its comments. Never use this on a server
that faces the internet.
"""

from __future__ import annotations

import argparse
import sys

import yaml

_UNLIMITED = {"per_second": 100000, "burst_count": 100000}


def prepare(path: str) -> str:
    """Rewrite the config at `path` for benchmarking; returns registration_shared_secret."""
    with open(path) as f:
        config = yaml.safe_load(f)
    config["rc_message"] = dict(_UNLIMITED)
    config["rc_registration"] = dict(_UNLIMITED)
    config["rc_login"] = {k: dict(_UNLIMITED) for k in ("address", "account", "failed_attempts")}
    config["rc_joins"] = {k: dict(_UNLIMITED) for k in ("local", "remote")}
    config["rc_invites"] = {k: dict(_UNLIMITED) for k in ("per_room", "per_user", "per_issuer")}
    config["rc_joins_per_room"] = dict(_UNLIMITED)
    config["rc_room_creation"] = dict(_UNLIMITED)
    config["bcrypt_rounds"] = 4
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return str(config.get("registration_shared_secret") or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.prepare_config",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("config", help="path of a homeserver.yaml to rewrite")
    args = parser.parse_args(argv)
    secret = prepare(args.config)
    if not secret:
        print("warning: no registration_shared_secret in the config", file=sys.stderr)
    print(secret)
    return 0


if __name__ == "__main__":
    sys.exit(main())
