"""Starting the server: build the `HomeServer`, open the listeners, run until signalled."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from homeserver.config import HomeServerConfig, ListenerConfig
from homeserver.server import HomeServer
from rest.resource import AxonSite, RouterResource

logger = logging.getLogger(__name__)

RESOURCE_PREFIXES = {
    "client": ("/_matrix/client/", "/.well-known/matrix/", "/_synapse/", "/_matrix/media/",
               "/health", "/_matrix/static/"),
    # /_matrix/media/ too: servers older than Matrix 1.11 fetch media there (as Synapse)
    "federation": ("/_matrix/federation/", "/_matrix/key/", "/.well-known/matrix/server",
                   "/_matrix/media/"),
}
#: the paths that get `federation_max_request_body_size` on a listener serving federation
FEDERATION_PREFIX = "/_matrix/federation/"
#: the paths that get `max_upload_size` (media uploads)
MEDIA_PREFIX = "/_matrix/media/"
RESUMABLE_UPLOAD_PREFIX = "/_matrix/client/unstable/io.axon/upload/resumable"


def build_homeserver(config: HomeServerConfig, reactor: Any) -> HomeServer:
    """Create the container and touch the parts that must fail early (DB, key, routes)."""
    hs = HomeServer(config, reactor)
    hs.get_datastores()
    hs.get_signing_key()
    hs.get_router()
    return hs


def build_site(hs: HomeServer, listener: ListenerConfig) -> AxonSite:
    """The HTTP site of one listener: its resources' paths only, and a body limit that
    lets federation paths carry a full transaction while client paths keep theirs."""
    prefixes: tuple[str, ...] = ()
    for name in listener.resources:
        prefixes += RESOURCE_PREFIXES.get(name, ())
    resource = RouterResource(hs.get_router(), x_forwarded=listener.x_forwarded,
                              allowed_prefixes=prefixes)
    # Uploads may be as large as `max_upload_size`; their bodies are spooled to disk.
    body_limits: tuple[tuple[str, int], ...] = ((MEDIA_PREFIX, hs.config.max_upload_size),
                                                (RESUMABLE_UPLOAD_PREFIX,
                                                 hs.config.max_upload_size))
    if "federation" in listener.resources:
        body_limits += ((FEDERATION_PREFIX, hs.config.federation_max_request_body_size),)
    return AxonSite(resource, hs.config.max_request_body_size, body_limits=body_limits,
                    reactor=hs.reactor)


async def start_listeners(hs: HomeServer) -> list[Any]:
    """Open every listener; returns the listening ports.

    Raises:
        CannotListenError: an address could not be bound.
    """
    from twisted.internet import endpoints, error

    ports = []
    for listener in hs.config.listeners:
        if listener.type != "http":
            logger.warning("Listener type %s is not supported yet; skipped", listener.type)
            continue
        site: Any = build_site(hs, listener)
        if listener.tls:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            from homeserver.tls import server_tls_options

            assert hs.config.tls_certificate_path and hs.config.tls_private_key_path
            options = server_tls_options(hs.config.tls_certificate_path,
                                         hs.config.tls_private_key_path)
            site = TLSMemoryBIOFactory(options, False, site)
        bound: set[str] = set()
        for address in listener.bind_addresses:
            interface = address.strip("[]")
            endpoint = endpoints.TCP6ServerEndpoint if ":" in interface else \
                endpoints.TCP4ServerEndpoint
            try:
                port = await endpoint(hs.reactor, listener.port, interface=interface).listen(site)
            except error.CannotListenError:
                # A dual-stack "::" socket already takes IPv4 too (Linux), so the default
                # ["::", "0.0.0.0"] binds once, as in Synapse.
                if interface == "0.0.0.0" and "::" in bound:
                    continue
                raise
            bound.add(interface)
            ports.append(port)
            logger.info("Listening on %s:%d (%s%s)", address, listener.port,
                        ", ".join(listener.resources), ", TLS" if listener.tls else "")
    return ports


def run(config_path: str) -> int:
    """`python -m homeserver run -c CONFIG`: serve until SIGTERM or SIGINT."""
    from twisted.internet import defer
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor

    from homeserver.logging_setup import setup_logging

    setup_logging()
    config = HomeServerConfig.load(config_path)
    hs = build_homeserver(config, reactor)
    exit_code = [0]
    listening_ports: list[Any] = []

    async def _start() -> None:
        try:
            listening = await start_listeners(hs)
        except Exception as e:  # noqa: BLE001 - report any bind failure and stop
            logger.error("Failed to start listening: %s", e)
            exit_code[0] = 1
            reactor.stop()
            return
        listening_ports.extend(listening)
        hs.get_media_retention().start()
        if config.pid_file:
            with open(config.pid_file, "w") as f:
                f.write(str(os.getpid()))
        logger.info("Axon is serving %s", config.server_name)

    def _shutdown() -> defer.Deferred[Any]:
        logger.info("Shutting down")
        d = defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in listening_ports])
        d.addBoth(lambda _: hs.shutdown())
        if config.pid_file and os.path.exists(config.pid_file):
            os.unlink(config.pid_file)
        return d

    reactor.callWhenRunning(lambda: defer.ensureDeferred(_start()))
    reactor.addSystemEventTrigger("before", "shutdown", _shutdown)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.run()
    return exit_code[0]
