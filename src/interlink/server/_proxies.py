"""The client's address behind reverse proxies you trust (`server.trusted_proxies`).

`X-Forwarded-For` is honoured only when the peer that connected is one of the configured
proxies; anyone else could write any address there. The client is then the right-most
address in the header that is not itself a trusted proxy: each proxy appends the address
it saw, so everything left of that was written by the client and proves nothing.

```
peer 10.0.0.7 (trusted), X-Forwarded-For: 198.51.100.77, 203.0.113.9, 10.0.0.3
                                          (forged)        (the client)  (a trusted hop)
```

`ClientAddressMiddleware` writes that address into `scope["client"]`, so the failed-auth
throttling and uvicorn's access log both see the client, not the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddressMiddleware", "TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.9:443
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """The networks whose `X-Forwarded-For` is believed."""

    def __init__(self, networks: Iterable[Network | str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address | None) -> bool:
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address: `peer`, unless `peer` is trusted and `forwarded_for`
        (every `X-Forwarded-For` value, in order) names one."""
        if not self.trusts(_address(peer)):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # garbage in a position only a client could write: stop here
            client = str(address)
            if not self.trusts(address):
                break
        return client


class ClientAddressMiddleware:
    """Put the client's address behind trusted proxies into `scope["client"]`."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client") if scope["type"] == "http" else None
        if self.proxies and peer:
            forwarded = [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
            ]
            if forwarded:
                client = self.proxies.client(peer[0], forwarded)
                if client != peer[0]:
                    scope["client"] = (client, 0)
        await self.app(scope, receive, send)
