"""Which HTTPS server the client trusts, and where its bearer token may go. Standard library only.

An `https://` server is verified in one of three ways (docs/server.md, "HTTPS"):
- the system's certificate store (a certificate from a public or company CA), the default;
- a CA file: a PEM file with the CA that signed the server's certificate, or with the server's
  own certificate (what `serve --tls-self-signed` writes is its own CA);
- a pinned SHA-256 fingerprint of the server's certificate (printed by `serve` beside its ready
  line): that exact certificate and no other, whatever names it holds. A different certificate is
  refused with `CertificateChanged`.

Redirects are followed only within the configured server (same scheme, host and port): the
token must never reach another one.
"""
from __future__ import annotations

import functools
import hashlib
import http.client
import re
import ssl
import urllib.parse
import urllib.request
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CertificateChanged(ConnectionError):
    """The server's certificate is not the pinned one (an OSError, so urllib passes it on)."""


class RedirectRefused(ConnectionError):
    """The server redirected to another scheme, host or port."""

    def __init__(self, message: str, location: str):
        super().__init__(message)
        self.location = location


def normalize_fingerprint(text: str) -> str:
    """'SHA256 Fingerprint=AB:CD:...', 'sha256:abcd...' or 'ab cd ...' -> 64 lowercase hex digits;
    '' stays ''. ValueError for anything else."""
    value = (text or "").strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha-256:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    value = re.sub(r"[\s:]", "", value)
    if value and not _HEX64.match(value):
        raise ValueError(f"The certificate fingerprint {text.strip()!r} is not a SHA-256 fingerprint: it has 64 "
                         "hexadecimal digits, in pairs separated by ':' as `serve` prints it.")
    return value


def origin(url: str) -> tuple:
    """(scheme, host, port) of `url`, the port filled in from the scheme."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def build_opener(base_url: str, *, ca_file: str = "", fingerprint: str = "") -> urllib.request.OpenerDirector:
    """An opener for the server at `base_url`: no proxy from the environment (the server is usually
    on 127.0.0.1), redirects only within that server, and HTTPS verified as the module says.

    ValueError when the settings do not fit together (a fingerprint or CA file for http://, a CA
    file that cannot be read)."""
    scheme = origin(base_url)[0]
    pinned = normalize_fingerprint(fingerprint)
    if scheme != "https" and (pinned or ca_file):
        raise ValueError(f"A certificate {'fingerprint' if pinned else 'CA file'} is set, but the Server URL "
                         f"{base_url} is not https://: the token would cross the network in clear text. Use the "
                         "https:// URL that the server prints.")
    handlers = [urllib.request.ProxyHandler({}), _SameServerRedirects(base_url)]
    if scheme == "https":
        handlers.append(_https_handler(ca_file, pinned))
    return urllib.request.build_opener(*handlers)


def _https_handler(ca_file: str, pinned: str) -> urllib.request.HTTPSHandler:
    if pinned:  # the pin replaces the chain and name checks: exactly this certificate
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return _PinnedHTTPSHandler(context, pinned)
    if ca_file:
        path = Path(ca_file).expanduser()
        try:
            context = ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"The CA file {path} cannot be used ({exc}); choose the PEM certificate file of the "
                             "server's CA (for `serve --tls-self-signed`: its server-cert.pem).") from None
        return urllib.request.HTTPSHandler(context=context)
    return urllib.request.HTTPSHandler(context=ssl.create_default_context())


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(self, *args, pinned: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned = pinned

    def connect(self):
        super().connect()
        actual = hashlib.sha256(self.sock.getpeercert(binary_form=True) or b"").hexdigest()
        if actual != self.pinned:
            self.sock.close()
            raise CertificateChanged(
                f"The server at {self.host}:{self.port} presented a different certificate than the pinned one "
                f"(pinned SHA-256 {_pairs(self.pinned)}, presented {_pairs(actual)}). Nothing was sent. If the "
                "server's certificate was renewed on purpose, pin the new fingerprint that `serve` prints beside "
                "its ready line; otherwise someone may be intercepting the connection.")


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, pinned: str):
        super().__init__(context=context)
        self.pinned = pinned

    def https_open(self, req):
        return self.do_open(functools.partial(_PinnedConnection, pinned=self.pinned), req, context=self._context)


class _SameServerRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects (which carry every header, Authorization too), within one server only."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if origin(newurl) != origin(self.base_url):
            fp.close()
            raise RedirectRefused(
                f"The server at {self.base_url} redirected {req.get_method()} {urllib.parse.urlsplit(req.full_url).path} "
                f"to {newurl}, another server (scheme, host or port); the request was not repeated there, so the "
                "token stayed here. If the server moved, enter its new address as the Server URL.", newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _pairs(hex_digest: str) -> str:
    digest = hex_digest.upper()
    return ":".join(digest[index:index + 2] for index in range(0, len(digest), 2))
