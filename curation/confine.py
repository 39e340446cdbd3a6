"""Input confinement: which manifest sources may be opened at all (issue 9, README "Security").

A manifest is data from outside, and FFmpeg opens whatever it is given: any local file, and
any of its protocols (`tcp://`, `udp://`, `concat:`, internal hosts). Before anything opens a
source, `check_source` decides:

  local path   (a plain path or `file://`) must lie inside one of the input roots after
               resolving `..` and symlinks, else `path_outside_roots`; nothing is opened,
               the path is only resolved.
  URL          its scheme must be in the allow-list (http, https, s3, gs by default), else
               `unsupported_url_scheme`; an http(s) host that is, or resolves to, a loopback,
               private, link-local or otherwise non-public address is refused as
               `private_host` unless private hosts are allowed. A name that does not resolve
               is `unreachable_url`.

Residual risks (README "Security"): an allowed public server can redirect FFmpeg to a private
address, and DNS can answer differently between this check and FFmpeg's own lookup.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from curation.errors import Rejected

DEFAULT_URL_SCHEMES = ("http", "https", "s3", "gs")
HOST_CHECKED_SCHEMES = ("http", "https")  # s3:// and gs:// name buckets, not hosts
# What FFmpeg takes for a protocol: scheme characters then ':' or ',' (`subfile,,start,0,:x`),
# so `concat:`, `pipe:`, `data:` and protocol options are caught too.
_URL = re.compile(r"^([A-Za-z0-9+.\-]+)[:,]")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")

REASONS = {
    "path_outside_roots": "a local path (or file:// URL) outside the configured input roots "
                          "(default: the manifest's folder tree); it was not opened",
    "unsupported_url_scheme": "the video is a URL whose scheme is not in the allow-list "
                              "(http, https, s3, gs by default)",
    "private_host": "the URL's host is, or resolves to, a loopback, private or link-local "
                    "address (allow_private_hosts lets a trusted manifest through)",
}


@dataclass(frozen=True)
class Confinement:
    roots: tuple[str, ...] = ()  # resolved folders; empty: local paths are not confined
    url_schemes: tuple[str, ...] = DEFAULT_URL_SCHEMES
    allow_private_hosts: bool = False
    resolve: object = field(default=socket.getaddrinfo, compare=False, repr=False)

    @classmethod
    def of(cls, roots, url_schemes=DEFAULT_URL_SCHEMES, allow_private_hosts=False) -> "Confinement":
        return cls(tuple(os.path.realpath(os.path.expanduser(r)) for r in roots),
                   tuple(s.lower() for s in url_schemes), allow_private_hosts)

    def check(self, source: str) -> str:
        """The local path or URL to open; raises `Rejected` when it must not be opened."""
        protocol = _URL.match(source)
        if protocol and not _WINDOWS_DRIVE.match(source):
            scheme = protocol.group(1).lower()
            if scheme == "file":
                return self._check_path(unquote(urlparse(source).path))
            return self._check_url(source, scheme)
        return self._check_path(source)

    def _check_path(self, path: str) -> str:
        if not self.roots:
            return path
        real = os.path.realpath(path)  # resolves `..` and symlinks; opens nothing
        if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots):
            raise Rejected("path_outside_roots",
                          f"{path} resolves to {real}, outside the input roots "
                          f"{', '.join(self.roots)}; add its folder to input_roots if it is trusted")
        return path

    def _check_url(self, url: str, scheme: str) -> str:
        if scheme not in self.url_schemes:
            raise Rejected("unsupported_url_scheme",
                          f"URL scheme {scheme!r} is not allowed (allowed: "
                          f"{', '.join(self.url_schemes)}); download the video first")
        if scheme in HOST_CHECKED_SCHEMES and not self.allow_private_hosts:
            host = urlparse(url).hostname
            if not host:
                raise Rejected("unsupported_url_scheme", f"{url} names no host")
            for address in self._addresses(host, url):
                if not address.is_global:
                    raise Rejected("private_host", f"host {host} is {address}, a non-public "
                                  f"address; set allow_private_hosts for a trusted manifest")
        return url

    def _addresses(self, host: str, url: str) -> list:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = self.resolve(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as e:
            raise Rejected("unreachable_url", f"host {host} does not resolve ({e})") from None
        return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
