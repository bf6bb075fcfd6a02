"""Where webhooks may go: public addresses only (no SSRF into the platform's own network).

An endpoint URL is written by a merchant or an app, and the platform's worker then makes
requests to it from inside the platform's network. Without a guard, ``http://10.0.0.5/admin``
or ``http://169.254.169.254/`` (a cloud's metadata service) would be reachable by anyone who
can register an endpoint. Two checks:

- **When an endpoint is saved** (:func:`refusal_for_host`): a host written as an IP address
  must be a public one, and ``localhost`` names are refused.
- **When the worker connects** (:func:`public_address`): the host name is resolved, every address
  it resolves to must be public, and the connection is made to the address that was checked
  (so a name cannot resolve to a public address for the check and to a private one for the
  connection). TLS still verifies the certificate against the host name.

``HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1`` turns both off: for local development (a receiver
on the developer's own machine) and the test suite. Behind an egress proxy
(``HTTPS_PROXY``/``HTTP_PROXY`` in the worker's environment), the requests go through the proxy
and the proxy is the filter: the guard applies to direct connections only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

LOCAL_NAMES = ("localhost", "localhost.localdomain")
ALLOW_HINT = "set HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1 to allow it in development"


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local,
    shared, reserved, multicast or unspecified); IPv4 addresses mapped into IPv6 are judged
    as the IPv4 address they carry."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def refusal_for_host(host: str) -> str | None:
    """Why an endpoint's host is refused when it is saved, or None. Names other than
    ``localhost`` are not resolved here (they are checked at each connection)."""
    name = host.strip("[]").rstrip(".").lower()
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return f"{host} names this machine"
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None
    if not is_public(name):
        return f"{host} is not a public address"
    return None


class EgressRefused(ConnectionError):
    """A connection the guard would not make (recorded with the attempt as its error)."""


async def public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: every address it resolves to must be public
    (a name cannot resolve to a public address here and a private one at the connection,
    because the connection is made to the address returned)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectionError(f"{host} could not be resolved: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    private = [a for a in addresses if not is_public(a)]
    if private or not addresses:
        raise EgressRefused(f"{host} resolves to {', '.join(private) or 'nothing'}, "
                            "not a public address: refused")
    return addresses[0]
