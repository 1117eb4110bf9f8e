"""Fetching a revision bundle and unpacking it safely.

Bundles come over plain HTTP(S) (the server hands out a ready-to-GET URL, so the agent
needs no S3 client: boto3 alone would triple the agent's idle memory) or from a git
repository (shallow fetch of one commit, then ``git archive``). Either way the result
is ``bundle.tar`` in the deployment directory, written with a byte limit.

Unpacking is :mod:`shipyard.agent.extract`'s (``tarfile``/``zipfile`` read, every member
written relative to directory descriptors, links checked, sizes capped). The unpacked
tree appears at ``deployment-archive`` only once it is complete, because the executor
treats the existence of that directory as "this revision is downloaded".
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, cast

from shipyard.agent import tree
from shipyard.agent.extract import BundleError, UnpackLimits, untar, unzip
from shipyard.agent.http import CertificateError, Connection, Response, tls_context

if TYPE_CHECKING:
    import ssl
    from hashlib import _Hash

CHUNK = 64 * 1024
SIMPLE_ETAG = re.compile(r"[0-9a-fA-F]{32}")  # a single-part upload: the ETag is the MD5
APPSPEC_NAME = re.compile(r"appspec", re.IGNORECASE)
GIT_TIMEOUT = 600.0
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ARCHIVE_ROOT_MODE = 0o711


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _TransientError(Exception):
    """A failure worth another attempt (connection trouble, 5xx, truncated body)."""


# --- HTTP(S) -------------------------------------------------------------------------


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    etag: str | None = None,
    ca_file: str = "",
    timeout: float = 60.0,
    retry_delays: Sequence[float] = (1.0, 3.0),
) -> None:
    """GET ``url`` into ``dest``, refusing more than ``max_bytes`` and checking ``etag``.

    Connection failures, 5xx answers and truncated bodies are retried after each of
    ``retry_delays``; anything else fails at once with a :class:`BundleError`.
    """
    last: _TransientError | None = None
    for delay in (0.0, *retry_delays):
        if last is not None:
            time.sleep(delay)
        try:
            _download_once(
                url, dest, max_bytes=max_bytes, etag=etag, ca_file=ca_file, timeout=timeout
            )
            return
        except _TransientError as exc:
            last = exc
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    dest.unlink(missing_ok=True)
    raise BundleError(f"bundle download failed: {last}")


def _download_once(
    url: str, dest: Path, *, max_bytes: int, etag: str | None, ca_file: str, timeout: float
) -> None:
    connection, response = _get(url, ca_file=ca_file, timeout=timeout)
    try:
        if response.status != 200:
            detail = _error_detail(response)
            if response.status == 404:
                raise BundleError(f"bundle not found in store (HTTP 404){detail}")
            problem = f"HTTP {response.status} {response.reason}{detail}"
            if response.status >= 500:
                raise _TransientError(problem)
            raise BundleError(f"bundle download refused: {problem}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise BundleError(f"bundle exceeds {max_bytes} bytes ({declared} bytes in store)")
        digest = _md5()
        with dest.open("wb") as out:
            written = _copy_limited(_NetworkReader(response), out, max_bytes, digest)
        if declared is not None and declared.isdigit() and written != int(declared):
            raise _TransientError(f"download truncated at {written} of {declared} bytes")
        if etag:
            _check_etag(etag, response.headers.get("etag"), digest.hexdigest())
    finally:
        connection.close()


def _get(url: str, *, ca_file: str, timeout: float) -> tuple[Connection, Response]:
    """GET ``url`` with the agent's own small HTTP client (``http.client`` or urllib would
    add megabytes, and ``ssl`` is loaded only for https), following a few redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise BundleError(f"invalid port in bundle URL {_redact(url)}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BundleError(f"unsupported bundle URL {_redact(url)}: use http or https")
        https = parts.scheme == "https"
        connection = Connection(
            parts.hostname,
            port or (443 if https else 80),
            tls=_tls(ca_file) if https else None,
            connect_timeout=timeout,
            read_timeout=timeout,
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": "shipyard-agent", "Accept-Encoding": "identity"}
        try:
            response = connection.request("GET", target, headers)
        except CertificateError as exc:
            connection.close()
            raise BundleError(
                f"cannot verify the TLS certificate of {parts.hostname}: {exc}"
            ) from None
        except OSError as exc:
            connection.close()
            raise _TransientError(f"cannot reach {_redact(url)}: {exc}") from None
        location = response.headers.get("location")
        if response.status in REDIRECTS and location:
            connection.close()
            url = urllib.parse.urljoin(url, location)
            continue
        return connection, response
    raise BundleError(f"too many redirects fetching {_redact(url)}")


def _tls(ca_file: str) -> ssl.SSLContext:
    try:
        return tls_context(ca_file)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise BundleError(f"cannot load CA file {ca_file!r}: {exc}") from None


class _NetworkReader:
    """Reads the response body; network trouble mid-body is worth a retry, disk trouble not."""

    def __init__(self, response: Response) -> None:
        self._response = response

    def read(self, size: int, /) -> bytes:
        try:
            return self._response.read(size)
        except OSError as exc:  # the HTTP client's errors are all OSErrors
            raise _TransientError(f"download interrupted: {exc!r}") from None


def _copy_limited(
    source: _Readable, out: IO[bytes], max_bytes: int, digest: _Hash | None = None
) -> int:
    written = 0
    while chunk := source.read(CHUNK):
        written += len(chunk)
        if written > max_bytes:
            raise BundleError(f"bundle exceeds {max_bytes} bytes")
        if digest is not None:
            digest.update(chunk)
        out.write(chunk)
    return written


def _md5() -> _Hash:
    """CPython's built-in MD5 where there is one: hashlib would map libcrypto (3.5 MiB)."""
    try:
        return cast("_Hash", importlib.import_module("_md5").md5())
    except (ImportError, AttributeError):
        import hashlib

        return hashlib.md5(usedforsecurity=False)


def _check_etag(expected: str, served: str | None, md5_hex: str) -> None:
    want = expected.strip().strip('"')
    if served is not None:
        got = served.strip().removeprefix("W/").strip('"')
        if got.lower() != want.lower():
            raise BundleError(
                f"bundle eTag mismatch: the revision names {want}, the store has {got}"
            )
    if SIMPLE_ETAG.fullmatch(want):
        # A single-part eTag is the MD5 of the object: check the bytes we actually got.
        if md5_hex != want.lower():
            raise BundleError(f"bundle content does not match eTag {want} (its MD5 is {md5_hex})")
    elif served is None:
        raise BundleError(f"cannot verify bundle eTag {want}: the store sent no ETag")


def _error_detail(response: Response) -> str:
    try:
        body = response.read(300).decode("utf-8", "replace")
    except OSError:
        return ""
    # S3-style XML errors carry a Message element; show just that when present.
    found = re.search(r"<Message>(.*?)</Message>", body, re.DOTALL)
    text = (found.group(1) if found else body).strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""


def _redact(url: str) -> str:
    """The URL without credentials or a query string (presigned URLs carry a signature)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- git -----------------------------------------------------------------------------


def fetch_git(
    git_url: str, commit: str, dest: Path, *, max_bytes: int, timeout: float = GIT_TIMEOUT
) -> None:
    """Fetch one commit of ``git_url`` (shallow) and write its tree to ``dest`` as a tar."""
    work = dest.with_name(".git-fetch")
    shutil.rmtree(work, ignore_errors=True)
    try:
        _git(["init", "-q", str(work)], timeout=timeout)
        fetched = _git(
            ["-C", str(work), "fetch", "-q", "--depth", "1", git_url, commit],
            timeout=timeout,
            check=False,
        )
        if fetched.returncode != 0:
            problem = _last_line(fetched.stderr)
            if re.search(r"not our ref|couldn't find remote ref|no such remote ref", problem, re.I):
                raise BundleError(f"commit {commit} not found in {_redact(git_url)}")
            raise BundleError(f"cannot fetch {_redact(git_url)}: {problem}")
        _git_archive(work, dest, max_bytes=max_bytes, timeout=timeout)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _git_archive(work: Path, dest: Path, *, max_bytes: int, timeout: float) -> None:
    command = ["git", "-C", str(work), "archive", "--format=tar", "FETCH_HEAD"]
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env()
        ) as process,
        dest.open("wb") as out,
    ):
        assert process.stdout is not None and process.stderr is not None
        try:
            _copy_limited(process.stdout, out, max_bytes)
        finally:
            process.stdout.close()
            if process.poll() is None:
                process.kill()
        stderr = process.stderr.read().decode("utf-8", "replace")
        if process.wait(timeout=timeout) != 0:
            raise BundleError(f"git archive failed: {_last_line(stderr)}")


def _git(
    args: list[str], *, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_git_env(),
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise BundleError("git is not installed on this host") from None
    except subprocess.TimeoutExpired:
        raise BundleError(f"git {args[0]} did not finish in {timeout:g} seconds") from None
    if check and result.returncode != 0:
        raise BundleError(f"git {args[0]} failed: {_last_line(result.stderr)}")
    return result


def _git_env() -> dict[str, str]:
    # Never wait for a password prompt that nobody will answer.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


# --- unpacking -----------------------------------------------------------------------


def unpack(
    bundle: Path, bundle_type: str, archive_dir: Path, limits: UnpackLimits | None = None
) -> None:
    """Unpack ``bundle`` into ``archive_dir``, replacing whatever was there.

    ``bundle_type`` is ``zip``, or ``tar``/``tgz`` (any other value is read as tar, as
    the stock agent does; compression is detected from the content). If the archive
    root holds exactly one directory and that directory holds an appspec, the leading
    directory is stripped (GitHub-style tarballs). The tree is the agent's alone:
    other users may pass through its root (a ``runas`` script starts in its own
    directory) but not list it.
    """
    staging = archive_dir.with_name(archive_dir.name + ".unpacking")
    shutil.rmtree(archive_dir, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    try:
        root_fd = os.open(staging, tree.DIRECTORY_FLAGS)
        try:
            if bundle_type.lower() == "zip":
                unzip(str(bundle), root_fd, limits or UnpackLimits())
            else:
                untar(str(bundle), root_fd, limits or UnpackLimits())
        finally:
            os.close(root_fd)
        _archive_root(staging).rename(archive_dir)
        archive_dir.chmod(ARCHIVE_ROOT_MODE)  # a stripped leading directory had its own
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _archive_root(staging: Path) -> Path:
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        nested = entries[0]
        if any(APPSPEC_NAME.search(child.name) for child in nested.iterdir()):
            return nested
    return staging


__all__ = ["BundleError", "UnpackLimits", "download", "fetch_git", "unpack"]
