"""Command line: `python -m homeserver generate-config | run | register-user | quickstart`."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys

import jinja2
from psycopg2.extensions import parse_dsn

from homeserver.errors import ConfigError, MatrixError


def _render_config(server_name: str, data_dir: str, http_port: int, bind: str,
                   postgres: str | None, federation_port: int | None = None) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("res", ""), keep_trailing_newline=True, autoescape=False
    )
    scheme_host = f"[{bind}]" if ":" in bind else bind
    return env.get_template("homeserver.yaml.j2").render(
        server_name=server_name,
        public_baseurl=f"http://{scheme_host}:{http_port}/",
        http_port=http_port,
        federation_port=federation_port,
        bind=bind,
        data_dir=data_dir,
        postgres=parse_dsn(postgres) if postgres else None,
        signing_key_path=os.path.join(data_dir, f"{server_name}.signing.key"),
        registration_shared_secret=secrets.token_urlsafe(32),
    )


def generate_config(server_name: str, data_dir: str, http_port: int = 8008,
                    bind: str = "127.0.0.1", postgres: str | None = None,
                    federation_port: int | None = None) -> str:
    """Write DIR/homeserver.yaml and a new signing key (and, with a federation port, a
    self-signed TLS pair); returns the config path."""
    from homeserver.config import HomeServerConfig
    from homeserver.identifiers import is_valid_server_name
    from homeserver.keys import generate_signing_key_file

    if not is_valid_server_name(server_name):
        raise ConfigError(f"--server-name: {server_name!r} is not a valid server name")
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    config_path = os.path.join(data_dir, "homeserver.yaml")
    if os.path.exists(config_path):
        raise ConfigError(f"{config_path} already exists; not overwriting it")
    text = _render_config(server_name, data_dir, http_port, bind, postgres, federation_port)
    import yaml

    HomeServerConfig.parse(yaml.safe_load(text), data_dir)  # the template must parse
    key_path = os.path.join(data_dir, f"{server_name}.signing.key")
    if not os.path.exists(key_path):
        generate_signing_key_file(key_path)
    if federation_port is not None:
        from homeserver.tls import generate_self_signed

        generate_self_signed(os.path.join(data_dir, f"{server_name}.tls.crt"),
                             os.path.join(data_dir, f"{server_name}.tls.key"), server_name)
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return config_path


def register_user(config_path: str, username: str, password: str | None, admin: bool) -> str:
    """Create an account directly in the database (works with the server up or down)."""
    from twisted.internet.testing import MemoryReactorClock

    from homeserver.config import HomeServerConfig
    from homeserver.server import HomeServer
    from storage.database import DatabasePool
    from storage.engines import create_engine

    config = HomeServerConfig.load(config_path)
    if password is None:
        if not sys.stdin.isatty():
            raise ConfigError("--password is required when not run from a terminal")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise ConfigError("Passwords do not match")
    reactor = MemoryReactorClock()
    import time

    reactor.advance(time.time())
    pool = DatabasePool(create_engine(config.database.name, config.database.args), reactor,
                        synchronous=True)
    hs = HomeServer(config, reactor, db_pool=pool, run_threads_inline=True)
    try:
        localpart = username[1:].split(":", 1)[0] if username.startswith("@") else username
        coro = hs.get_registration_handler().register_user(localpart, password, admin=admin)
        try:
            coro.send(None)
        except StopIteration as done:
            return str(done.value)
        raise RuntimeError("registration did not complete synchronously")
    finally:
        hs.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homeserver", description="Axon homeserver")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate-config", help="write homeserver.yaml and a signing key")
    gen.add_argument("--server-name", required=True)
    gen.add_argument("--data-dir", required=True)
    gen.add_argument("--http-port", type=int, default=8008)
    gen.add_argument("--bind", default="127.0.0.1")
    gen.add_argument("--postgres", metavar="DSN", help="use PostgreSQL (a libpq DSN)")
    gen.add_argument("--federation-port", type=int, metavar="PORT",
                     help="add a TLS federation listener (e.g. 8448) with a self-signed "
                          "certificate for development")

    run_p = sub.add_parser("run", help="serve until SIGTERM/SIGINT")
    run_p.add_argument("-c", "--config", required=True)

    reg = sub.add_parser("register-user", help="create an account")
    reg.add_argument("-c", "--config", required=True)
    reg.add_argument("username")
    reg.add_argument("--password")
    reg.add_argument("--admin", action="store_true")

    quick = sub.add_parser("quickstart",
                           help="generate a config on first run (SQLite), then serve")
    quick.add_argument("--data-dir", default="data")
    quick.add_argument("--server-name", default="localhost")
    quick.add_argument("--http-port", type=int, default=8008)

    args = parser.parse_args(argv)
    try:
        if args.command == "generate-config":
            path = generate_config(args.server_name, args.data_dir, args.http_port, args.bind,
                                   args.postgres, args.federation_port)
            print(f"Wrote {path}")
            return 0
        if args.command == "run":
            from homeserver.app import run

            return run(args.config)
        if args.command == "register-user":
            user_id = register_user(args.config, args.username, args.password, args.admin)
            print(f"Registered {user_id}{' (admin)' if args.admin else ''}")
            return 0
        if args.command == "quickstart":
            return quickstart(args.data_dir, args.server_name, args.http_port)
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except MatrixError as e:
        print(f"Error: {e.msg} ({e.errcode})", file=sys.stderr)
        return 1
    return 2


def quickstart(data_dir: str, server_name: str, http_port: int) -> int:
    config_path = os.path.join(os.path.abspath(data_dir), "homeserver.yaml")
    if not os.path.exists(config_path):
        generate_config(server_name, data_dir, http_port)
        print(f"Generated {config_path} and a signing key (SQLite database in {data_dir}).")
    from homeserver.config import HomeServerConfig

    config = HomeServerConfig.load(config_path)
    port = config.listeners[0].port if config.listeners else http_port
    print(f"Server name: {config.server_name}")
    print(f"Client API:  http://127.0.0.1:{port}/")
    print("Create an admin (in another terminal):")
    print(f"  .venv/bin/python -m homeserver register-user -c {config_path} admin --admin")
    sys.stdout.flush()
    from homeserver.app import run

    return run(config_path)


if __name__ == "__main__":
    sys.exit(main())
