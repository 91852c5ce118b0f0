"""Who may open a voice session, checked at the WebSocket handshake before any session exists.

Any web page the user visits can open a WebSocket to ``127.0.0.1``: browsers send its ``Origin`` but
do not enforce anything, so the server must. A connection is refused with an HTTP status, before the
upgrade, when

- its ``Origin`` is not allowed (403). Allowed: the loopback names at the server's port, the address
  the server is bound to, the origins listed in ``security.allowed_origins``, and the page's own
  origin (``Origin`` naming the ``Host`` it connected to) when that host is an IP address or a token
  is required. A host *name* equal to ``Host`` is not enough on its own: DNS rebinding makes any name
  point at 127.0.0.1 while the attacker's page keeps its own origin. A connection without ``Origin``
  (not a browser: nothing a web page can do) is let through; the token is what stops those.
- a token is configured and the connection does not present it (401), as ``?token=…`` or as a
  ``token.<value>`` WebSocket subprotocol. Tokens are compared in constant time and never logged.

It also holds the page's security headers and the start-up warning for an exposed server without a
token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from voicebot.settings import Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")
#: The subprotocol the page asks for; the server selects it whenever it was offered.
SUBPROTOCOL = "voicebot"
#: Prefix of the subprotocol that carries the token (``token.<value>``).
TOKEN_SUBPROTOCOL_PREFIX = "token."
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Refusal:
    """Why a handshake is refused: the HTTP status, the body (safe to show) and a log reason."""

    status: int
    body: str
    reason: str


Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin, lower case with the default port filled in; ``None`` for
    anything that is not an http(s) origin (``null``, garbage)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6, as it is written in an origin
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _split_host(host_header: str, scheme: str) -> tuple[str, int] | None:
    origin = parse_origin(f"{scheme}://{host_header}")
    return None if origin is None else (origin[1], origin[2])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def allowed_origins(settings: Settings) -> frozenset[Origin]:
    """The fixed allowlist: loopback names and the bound address at the server's port, plus extras."""
    port = settings.server.port
    hosts = list(LOOPBACK_HOSTS)
    bound = settings.server.host.lower()
    if bound not in WILDCARD_HOSTS:
        hosts.append(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    origins = {(scheme, host, port) for scheme in ("http", "https") for host in hosts}
    for extra in settings.security.allowed_origins:
        parsed = parse_origin(extra)
        if parsed is not None:
            origins.add(parsed)
    return frozenset(origins)


def check_origin(origin: str | None, host_header: str | None, settings: Settings) -> Refusal | None:
    """``None`` when a connection with this ``Origin`` (and ``Host``) header may go on."""
    if origin is None:
        return None  # not a browser
    parsed = parse_origin(origin)
    if parsed is not None:
        if parsed in allowed_origins(settings):
            return None
        host = _split_host(host_header or "", parsed[0])
        same_host = host is not None and host == (parsed[1], parsed[2])
        if same_host and (_is_ip(parsed[1]) or settings.security.token is not None):
            return None
    return Refusal(403, "This page's origin may not use this voicebot server.", "origin_not_allowed")


def presented_tokens(args: Mapping[str, str], subprotocols: Iterable[str]) -> list[str]:
    """Every token the client offered: the ``token`` query parameter and ``token.<value>`` subprotocols."""
    tokens = [args["token"]] if "token" in args else []
    tokens += [p[len(TOKEN_SUBPROTOCOL_PREFIX) :] for p in subprotocols if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
    return tokens


def check_token(tokens: Iterable[str], settings: Settings) -> Refusal | None:
    """``None`` when no token is configured or one of ``tokens`` is it (compared in constant time)."""
    expected = settings.security.token
    if expected is None:
        return None
    secret = expected.get_secret_value().encode()
    if any(hmac.compare_digest(token.encode(), secret) for token in tokens):
        return None
    return Refusal(401, "This voicebot server needs a token: open the page as /#token=YOUR_TOKEN.", "bad_token")


def chosen_subprotocol(requested: Iterable[str]) -> str | None:
    """The subprotocol to accept: ``voicebot`` when offered (a browser that offered subprotocols
    fails the connection unless one is selected), else none. The token one is never echoed."""
    return SUBPROTOCOL if SUBPROTOCOL in requested else None


def security_headers(connect_host: str) -> dict[str, str]:
    """Headers for every HTTP response: the page runs only its own scripts, is never framed and
    sends no referrer. ``connect_host`` is the ``Host`` the page was loaded from (its WebSocket)."""
    sockets = f"ws://{connect_host} wss://{connect_host}" if connect_host else ""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {sockets}".rstrip()
        + "; media-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the server listens beyond loopback without a token, else ``None``."""
    host = settings.server.host.strip("[]").lower()
    if settings.security.token is not None or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"listening on {settings.server.host} without a token: anyone who can reach this port can use the "
        "models. Set VOICEBOT_TOKEN (see the README's Security section)."
    )
