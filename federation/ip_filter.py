"""Which IP addresses outbound server-to-server requests may connect to (SSRF guard).

Synapse's semantics: an address in `ip_range_blacklist` is refused unless it is also in
`ip_range_whitelist`; `0.0.0.0` and `::` are always refused. IPv4 addresses written in
IPv6 form (`::ffff:10.0.0.1`, `::10.0.0.1`) are checked as the IPv4 address too, so a
blacklisted range cannot be reached through its mapped form. Check every address that
DNS returns, right before connecting (after SRV and A/AAAA resolution), not the name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from homeserver.config import HomeServerConfig, IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALWAYS_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class IPFilter:
    """A blacklist with whitelisted exceptions, checked per address."""

    def __init__(self, blacklist: Iterable[IPNetwork], whitelist: Iterable[IPNetwork] = ()
                 ) -> None:
        self._blacklist = (*_ALWAYS_BLOCKED, *blacklist)
        self._whitelist = tuple(whitelist)

    @classmethod
    def from_config(cls, config: HomeServerConfig) -> IPFilter:
        """The filter configured by `ip_range_blacklist` / `ip_range_whitelist`."""
        return cls(config.ip_range_blacklist, config.ip_range_whitelist)

    def is_allowed(self, ip: str | IPAddress) -> bool:
        """Whether we may connect to `ip`. Anything that is not an IP address is refused."""
        if isinstance(ip, str):
            try:
                ip = ipaddress.ip_address(ip.strip("[]").split("%", 1)[0])
            except ValueError:
                return False
        forms = _forms(ip)
        if any(form in net for form in forms for net in self._whitelist
               if form.version == net.version):
            return True
        return not any(form in net for form in forms for net in self._blacklist
                       if form.version == net.version)

    def filter_allowed(self, ips: Iterable[str]) -> list[str]:
        """The addresses of `ips` we may connect to, in their order."""
        return [ip for ip in ips if self.is_allowed(ip)]


def _forms(ip: IPAddress) -> list[IPAddress]:
    """`ip` and, for an IPv4-mapped or IPv4-compatible IPv6 address, the IPv4 address."""
    forms: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        elif ip in _IPV4_COMPATIBLE and int(ip) > 1:
            forms.append(ipaddress.IPv4Address(int(ip)))
    return forms
