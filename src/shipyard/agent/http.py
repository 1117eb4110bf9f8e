"""A small HTTP/1.1 client over :mod:`socket`, just what the agent needs.

Why not ``http.client``: it imports ``ssl`` (libssl and libcrypto) and the ``email``
package for header parsing, about 5 MiB of the agent's resident memory, even when the
server is plain HTTP. This module imports ``ssl`` only when a TLS context is asked for,
and parses the few response headers itself.

What it does: one keep-alive connection per :class:`Connection` (a connect timeout, then
a read timeout for the long poll), requests with a byte body sent in one write, and
responses framed by ``Content-Length``, chunked transfer coding or the end of the
connection, read whole or in pieces. No proxies, redirects, compression or pipelining.

Every error is an :class:`OSError`, so a caller catches one type for "the exchange
failed". Two kinds are worth telling apart:

- :class:`ConnectionClosed`: the connection broke before any byte of an answer. On a
  reused keep-alive connection this is the server dropping an idle connection while the
  request went out, so it reached no handler and sending it again is safe.
- :class:`CertificateError`: the server's TLS certificate was not trusted (retrying
  will not help).
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536
MAX_HEADERS = 100
READ_ALL_CHUNK = 64 * 1024
# Characters a request target may not hold: controls and spaces would split the line.
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_HEADER = re.compile(r"[\r\n\x00]")
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY_STATUSES = frozenset({204, 304})


class BadResponse(OSError):
    """The answer is not HTTP/1.x as we read it, or its body was cut short."""


class ConnectionClosed(ConnectionError):
    """The connection broke before any byte of an answer arrived (see the module doc)."""


class CertificateError(OSError):
    """The server's TLS certificate could not be verified."""


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context trusting ``ca_file`` (or the system store when empty).

    Importing :mod:`ssl` here rather than at the top keeps libssl out of agents that talk
    plain HTTP. Raises :class:`OSError` when the CA file cannot be read.
    """
    import ssl

    return ssl.create_default_context(cafile=ca_file or None)


class Connection:
    """One HTTP/1.1 connection to ``host:port``, kept alive across requests.

    Connects on the first request (or :meth:`connect`). After a failed exchange, or an
    answer that ends the connection, the socket is closed and the next request opens a
    new one. Not for concurrent use, except :meth:`abort` from another thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None
        self._response: Response | None = None
        # Answers completed on the current socket; above zero the socket is being reused.
        self.answered = 0
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == default_port else f"{name}:{port}"

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the socket (and TLS session) within the connect timeout."""
        self.close()
        sock = socket.create_connection((self.host, self.port), self._connect_timeout)
        try:
            # Requests go out in one write; don't let Nagle hold back the next one.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = _wrap(self._tls, sock, self.host)
            # Connecting may take the connect timeout at most; reads wait out a long poll.
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        self._sock, self._reader = sock, sock.makefile("rb")
        self.answered = 0

    def request(
        self, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Response:
        """Send one request and read the answer's head; read its body with ``read``.

        ``Host`` and ``Content-Length`` are added unless ``headers`` has them. Reading
        the previous answer's body to its end first keeps the connection alive;
        otherwise it is replaced.
        """
        head = _request_head(method, target, headers or {}, body, self.host_header)
        if self._response is not None and not self._response.done:
            self.close()
        if self._sock is None:
            self.connect()
        assert self._sock is not None and self._reader is not None
        try:
            try:
                self._sock.sendall(head + body if body else head)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise ConnectionClosed(f"connection closed while sending: {exc}") from exc
            response = _read_response(self, self._reader, method)
        except BaseException:
            self.close()
            raise
        self._response = response
        if response.done:
            self._finished(response)
        return response

    def abort(self) -> None:
        """Break off an exchange blocked in another thread; it fails with an OSError."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        reader, sock = self._reader, self._sock
        self._reader = self._sock = self._response = None
        if reader is not None:
            with contextlib.suppress(OSError):
                reader.close()
        if sock is not None:
            sock.close()

    def _finished(self, response: Response, *, broken: bool = False) -> None:
        if response is not self._response:
            return  # an answer this connection had already given up on
        self._response = None
        if broken or response.will_close:
            self.close()
        else:
            self.answered += 1


class Response:
    """An answer's status and headers (names lower-cased), and its body via :meth:`read`."""

    def __init__(
        self,
        connection: Connection,
        reader: io.BufferedReader,
        status: int,
        reason: str,
        headers: dict[str, str],
        *,
        will_close: bool,
        length: int | None,
        chunked: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.will_close = will_close
        self._connection = connection
        self._reader = reader
        self._chunked = chunked
        # Bytes left: in the body (Content-Length), in the current chunk (chunked; 0 at a
        # chunk boundary), or None when the body runs to the end of the connection.
        self._left = length
        self.done = length == 0 and not chunked

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the body (all of it when negative); b"" at its end."""
        if self.done:
            return b""
        try:
            if size < 0:
                return b"".join(iter(lambda: self._read_some(READ_ALL_CHUNK), b""))
            return self._read_some(size)
        except BaseException:
            self.done = True
            self._connection._finished(self, broken=True)
            raise

    def _read_some(self, size: int) -> bytes:
        if self.done or size == 0:
            return b""
        if self._chunked and self._left == 0:
            self._left = self._chunk_size()
            if self._left == 0:
                self._skip_trailers()
                return self._finish(b"")
        if self._left is None:
            data = self._reader.read(size)
            return self._finish(data) if len(data) < size else data
        wanted = min(size, self._left)
        data = self._reader.read(wanted)
        if len(data) < wanted:
            raise BadResponse("the connection closed before the end of the response body")
        self._left -= wanted
        if self._left == 0:
            if not self._chunked:
                return self._finish(data)
            if self._reader.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise BadResponse("malformed chunked body: no line end after a chunk")
        return data

    def _chunk_size(self) -> int:
        line = self._reader.readline(MAX_LINE)
        size = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
        if not _HEX.fullmatch(size):
            raise BadResponse(f"malformed chunked body: chunk size {line[:40]!r}")
        return int(size, 16)

    def _skip_trailers(self) -> None:
        for _ in range(MAX_HEADERS):
            line = self._reader.readline(MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                return
        raise BadResponse("too many trailer lines in a chunked body")

    def _finish(self, data: bytes) -> bytes:
        self.done = True
        self._connection._finished(self)
        return data


def _wrap(context: ssl.SSLContext, sock: socket.socket, host: str) -> socket.socket:
    import ssl

    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise CertificateError(str(exc)) from None


def _request_head(
    method: str, target: str, headers: Mapping[str, str], body: bytes, host: str
) -> bytes:
    if _UNSAFE_TARGET.search(target):
        raise ValueError(f"request target has spaces or control characters: {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    names = set()
    for name, value in headers.items():
        if _UNSAFE_HEADER.search(name) or _UNSAFE_HEADER.search(value):
            raise ValueError(f"header {name!r} has a line break in it")
        lines.append(f"{name}: {value}")
        names.add(name.lower())
    if "host" not in names:
        lines.append(f"Host: {host}")
    if (body or method in _METHODS_WITH_BODY) and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _read_response(connection: Connection, reader: io.BufferedReader, method: str) -> Response:
    head = _read_head_quickly(reader)
    while head is None:
        version, status, reason = _read_status(reader)
        headers = _read_headers(reader)
        if not 100 <= status < 200:
            head = version, status, reason, headers
        # else: informational answers (100 Continue) precede the real one
    version, status, reason, headers = head
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    chunked = headers.get("transfer-encoding", "").lower().rstrip().endswith("chunked")
    length: int | None = None
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        length, chunked = 0, False
    elif chunked:
        length = 0  # at a chunk boundary
    elif "content-length" in headers:
        length = _content_length(headers["content-length"])
    else:
        will_close = True  # the body ends where the connection does
    return Response(
        connection,
        reader,
        status,
        reason,
        headers,
        will_close=will_close,
        length=length,
        chunked=chunked,
    )


def _read_head_quickly(reader: io.BufferedReader) -> tuple[str, int, str, dict[str, str]] | None:
    """The usual answer's status and headers in one piece: when the first read brought
    the whole head, ends every line with CRLF and is a final answer (not 1xx), take it
    from the buffer at once. None (nothing consumed) sends the caller line by line,
    the general way, which reads anything else as it always did."""
    try:
        buffered = reader.peek(1)
    except ConnectionResetError as exc:
        raise ConnectionClosed(f"connection reset before an answer: {exc}") from exc
    end = buffered.find(b"\r\n\r\n")
    if end < 0 or buffered.count(b"\n", 0, end) != buffered.count(b"\r\n", 0, end):
        return None
    lines = buffered[:end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        return None  # the general way says what is wrong with it
    status = int(code)
    if 100 <= status < 200 or len(lines) > MAX_HEADERS + 1:
        return None
    headers: dict[str, str] = {}
    name = ""
    for text in lines[1:]:
        if text[0] in " \t" and name:  # an obsolete folded continuation line
            headers[name] += " " + text.strip()
            continue
        raw_name, colon, value = text.partition(":")
        if not colon:
            return None
        name, value = raw_name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    reader.read(end + 4)  # consume the head: it is in the buffer, nothing waits
    return version, status, reason.strip(), headers


def _read_status(reader: io.BufferedReader) -> tuple[str, int, str]:
    try:
        line = reader.readline(MAX_LINE)
    except ConnectionResetError as exc:
        raise ConnectionClosed(f"connection reset before an answer: {exc}") from exc
    if not line:
        raise ConnectionClosed("the server closed the connection without answering")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadResponse(f"malformed status line {line[:80]!r}")
    return version, int(code), reason.strip()


def _read_headers(reader: io.BufferedReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for _ in range(MAX_HEADERS):
        line = reader.readline(MAX_LINE)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise BadResponse("response headers cut short or too long")
        text = line.decode("latin-1")
        if text[0] in " \t" and name:  # an obsolete folded continuation line
            headers[name] += " " + text.strip()
            continue
        raw_name, colon, value = text.partition(":")
        if not colon:
            raise BadResponse(f"malformed header line {line[:80]!r}")
        name, value = raw_name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise BadResponse(f"more than {MAX_HEADERS} response headers")


def _content_length(value: str) -> int:
    # Repeated identical Content-Length headers arrive joined with commas.
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not _DIGITS.fullmatch(single := values.pop()):
        raise BadResponse(f"invalid Content-Length {value!r}")
    return int(single)


__all__ = [
    "BadResponse",
    "CertificateError",
    "Connection",
    "ConnectionClosed",
    "Response",
    "tls_context",
]
