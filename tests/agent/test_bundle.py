"""Bundle fetching (HTTP with eTag checks, git) and safe unpacking, on real files."""

from __future__ import annotations

import hashlib
import os
import ssl
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shipyard.agent.bundle import BundleError, download, fetch_git, unpack
from tests.agent.archives import file_member, link_member, write_tar, write_zip

_file, _link = file_member, link_member


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- unpacking -----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "tar_mode"), [("tar", "w"), ("tgz", "w:gz")])
def test_tar_and_tgz_unpack_with_modes_and_inner_links(
    tmp_path: Path, kind: str, tar_mode: str
) -> None:
    bundle = write_tar(
        tmp_path / "bundle.tar",
        [
            _file("appspec.yml", b"version: 0.0\n"),
            _file("scripts/start.sh", b"#!/bin/sh\necho hi\n", 0o750),
            _file("config/secret.conf", b"s", 0o600),
            _link("current", "scripts"),
            _link("start-link.sh", "scripts/start.sh", tarfile.LNKTYPE, 0o750),
        ],
        tar_mode,
    )
    archive = tmp_path / "deployment-archive"
    unpack(bundle, kind, archive)
    assert (archive / "appspec.yml").read_text() == "version: 0.0\n"
    assert _mode(archive / "scripts/start.sh") == 0o750
    assert _mode(archive / "config/secret.conf") == 0o600
    assert os.readlink(archive / "current") == "scripts"
    assert (archive / "start-link.sh").stat().st_ino == (archive / "scripts/start.sh").stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar", "deployment-archive"]


def test_zip_unpacks_with_modes_dirs_and_inner_symlink(tmp_path: Path) -> None:
    bundle = write_zip(
        tmp_path / "bundle.tar",
        [
            ("appspec.yml", b"version: 0.0\n", stat.S_IFREG | 0o644),
            ("bin/", b"", stat.S_IFDIR | 0o755),
            ("bin/run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            ("plain.txt", b"no unix mode", 0),
            ("bin/latest", b"run.sh", stat.S_IFLNK | 0o777),
        ],
    )
    archive = tmp_path / "deployment-archive"
    unpack(bundle, "zip", archive)
    assert _mode(archive / "bin/run.sh") == 0o755
    assert (archive / "plain.txt").read_bytes() == b"no unix mode"
    assert os.readlink(archive / "bin/latest") == "run.sh"


def test_existing_archive_is_replaced(tmp_path: Path) -> None:
    archive = tmp_path / "deployment-archive"
    (archive / "old").mkdir(parents=True)
    (archive / "old/stale.txt").write_text("stale")
    unpack(write_tar(tmp_path / "b.tar", [_file("new.txt")]), "tar", archive)
    assert [p.name for p in archive.iterdir()] == ["new.txt"]


def test_single_leading_directory_with_appspec_is_stripped(tmp_path: Path) -> None:
    bundle = write_tar(
        tmp_path / "b.tar",
        [_file("org-repo-abc123/APPSPEC.yml"), _file("org-repo-abc123/app/main.py")],
    )
    archive = tmp_path / "deployment-archive"
    unpack(bundle, "tar", archive)
    assert sorted(p.name for p in archive.iterdir()) == ["APPSPEC.yml", "app"]


def test_single_leading_directory_without_appspec_is_kept(tmp_path: Path) -> None:
    bundle = write_tar(tmp_path / "b.tar", [_file("site/index.html")])
    archive = tmp_path / "deployment-archive"
    unpack(bundle, "tar", archive)
    assert (archive / "site/index.html").is_file()


def _chr_device(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, b""


UNSAFE_TARS = {
    "absolute path": ([_file("/tmp/shipyard-evil-abs")], "'/tmp/shipyard-evil-abs': absolute path"),
    "dot-dot": ([_file("ok.txt"), _file("../evil.txt")], "'../evil.txt': path escapes"),
    "inner dot-dot": ([_file("a/../../evil.txt")], "'a/../../evil.txt': path escapes"),
    "absolute symlink": ([_link("etc", "/etc")], "'etc': symlink pointing outside"),
    "escaping symlink": ([_link("up", "../..")], "'up': symlink pointing outside"),
    "write through a symlink chain": (
        # d1/d2/s -> ../.. is the archive root (allowed); t -> d1/d2/s/.. is its parent.
        [_file("d1/d2/f"), _link("d1/d2/s", "../.."), _link("t", "d1/d2/s/..")],
        "'t': symlink pointing outside",
    ),
    "file through a symlink": (
        [_link("d1/s", ".."), _file("d1/s/../../evil.txt")],
        "'d1/s/../../evil.txt': path escapes",
    ),
    "hard link out": ([_link("h", "../outside.txt", tarfile.LNKTYPE)], "'h': hard link pointing"),
    "absolute hard link": ([_link("h", "/etc/passwd", tarfile.LNKTYPE)], "'h': hard link pointing"),
    "device": ([_chr_device("null")], "'null': device or special file"),
}


@pytest.mark.parametrize("case", UNSAFE_TARS)
def test_unsafe_tar_members_are_refused_by_name(tmp_path: Path, case: str) -> None:
    members, expected = UNSAFE_TARS[case]
    work = tmp_path / "deployment"
    work.mkdir()
    (tmp_path / "outside.txt").write_text("precious")
    archive = work / "deployment-archive"
    with pytest.raises(BundleError, match="unsafe bundle member " + expected):
        unpack(write_tar(tmp_path / "b.tar", members), "tar", archive)
    assert not archive.exists()
    assert sorted(p.name for p in work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar", "deployment", "outside.txt"]
    assert not Path("/tmp/shipyard-evil-abs").exists()


def test_symlink_then_file_through_it_is_refused(tmp_path: Path) -> None:
    # Were the link allowed, the next member would land in the victim directory.
    outside = tmp_path / "victim"
    outside.mkdir()
    members = [_link("link", str(outside)), _file("link/owned.txt")]
    with pytest.raises(BundleError, match="'link': symlink pointing outside"):
        unpack(write_tar(tmp_path / "b.tar", members), "tar", tmp_path / "archive")
    assert list(outside.iterdir()) == []


UNSAFE_ZIPS = {
    "zip slip": ("../evil.txt", b"x", stat.S_IFREG | 0o644, "'../evil.txt': path escapes"),
    "absolute": ("/tmp/shipyard-evil-zip", b"x", 0, "absolute path"),
    "symlink out": ("ln", b"/etc/passwd", stat.S_IFLNK | 0o777, "'ln': symlink pointing outside"),
    "fifo": ("pipe", b"", stat.S_IFIFO | 0o644, "'pipe': device or special file"),
}


@pytest.mark.parametrize("case", UNSAFE_ZIPS)
def test_unsafe_zip_members_are_refused_by_name(tmp_path: Path, case: str) -> None:
    name, data, st_mode, expected = UNSAFE_ZIPS[case]
    work = tmp_path / "deployment"
    work.mkdir()
    bundle = write_zip(tmp_path / "b.zip", [("fine.txt", b"ok", 0), (name, data, st_mode)])
    with pytest.raises(BundleError, match="unsafe bundle member .*" + expected):
        unpack(bundle, "zip", work / "deployment-archive")
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zip", "deployment"]
    assert not Path("/tmp/shipyard-evil-zip").exists()


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        ("tar", b"this is not a tar file at all" * 40, "not a readable tar archive"),
        ("tgz", b"\x1f\x8b\x08\x00garbage-after-gzip-magic", "not a readable tar archive"),
        ("zip", b"PK\x03\x04 but nothing valid follows", "not a readable zip archive"),
    ],
)
def test_corrupt_archives_give_a_clear_error(
    tmp_path: Path, kind: str, content: bytes, expected: str
) -> None:
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(content)
    with pytest.raises(BundleError, match=expected):
        unpack(bundle, kind, tmp_path / "deployment-archive")
    assert not (tmp_path / "deployment-archive").exists()


def test_truncated_tgz_is_corrupt(tmp_path: Path) -> None:
    whole = write_tar(tmp_path / "whole.tgz", [_file("big.bin", os.urandom(50_000))], "w:gz")
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole.read_bytes()[:20_000])
    with pytest.raises(BundleError, match="not a readable tar archive"):
        unpack(cut, "tgz", tmp_path / "deployment-archive")


# --- HTTP download -------------------------------------------------------------------


@dataclass
class BundleStore:
    """A tiny HTTP server on 127.0.0.1 serving canned responses by path."""

    port: int
    routes: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    handler: type[BaseHTTPRequestHandler] = BaseHTTPRequestHandler

    def serve(self, path: str, *responses: tuple[int, dict[str, str], bytes]) -> str:
        self.routes[path] = list(responses)
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def store() -> Iterator[BundleStore]:
    state = BundleStore(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            responses = state.routes.get(self.path) or [(404, {}, b"<Message>nope</Message>")]
            status, headers, body = responses[0] if len(responses) == 1 else responses.pop(0)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers and headers.get("X-No-Length") is None:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    state.handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


BODY = b"bundle bytes " * 1000
MD5 = hashlib.md5(BODY).hexdigest()


def test_download_checks_simple_etag_against_header_and_bytes(
    store: BundleStore, tmp_path: Path
) -> None:
    url = store.serve("/b", (200, {"ETag": f'"{MD5}"'}, BODY))
    dest = tmp_path / "bundle.tar"
    download(url, dest, max_bytes=len(BODY), etag=f'"{MD5}"')
    assert dest.read_bytes() == BODY


def test_download_without_etag_just_fetches(store: BundleStore, tmp_path: Path) -> None:
    url = store.serve("/b", (200, {}, BODY))
    download(url, tmp_path / "bundle.tar", max_bytes=10**6)
    assert (tmp_path / "bundle.tar").read_bytes() == BODY


def test_etag_header_mismatch_fails(store: BundleStore, tmp_path: Path) -> None:
    other = "0" * 32
    url = store.serve("/b", (200, {"ETag": f'"{other}"'}, BODY))
    dest = tmp_path / "bundle.tar"
    with pytest.raises(BundleError, match=f"eTag mismatch: the revision names {MD5}.*{other}"):
        download(url, dest, max_bytes=10**6, etag=MD5)
    assert not dest.exists()


def test_bytes_not_matching_a_simple_etag_fail(store: BundleStore, tmp_path: Path) -> None:
    # The store claims the right eTag but serves other bytes (corruption on the way).
    url = store.serve("/b", (200, {"ETag": f'"{MD5}"'}, BODY[:-1] + b"!"))
    with pytest.raises(BundleError, match=f"content does not match eTag {MD5}"):
        download(url, tmp_path / "bundle.tar", max_bytes=10**6, etag=MD5)


def test_multipart_etag_is_checked_by_header(store: BundleStore, tmp_path: Path) -> None:
    url = store.serve("/b", (200, {"ETag": '"abc123-2"'}, BODY))
    download(url, tmp_path / "ok.tar", max_bytes=10**6, etag="abc123-2")
    with pytest.raises(BundleError, match="eTag mismatch"):
        download(url, tmp_path / "bad.tar", max_bytes=10**6, etag="abc123-3")


def test_missing_bundle_is_a_clear_error(store: BundleStore, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{store.port}/missing"
    with pytest.raises(BundleError, match=r"bundle not found in store \(HTTP 404\): nope"):
        download(url, tmp_path / "bundle.tar", max_bytes=100)


def test_forbidden_is_not_retried(store: BundleStore, tmp_path: Path) -> None:
    url = store.serve("/b", (403, {}, b"<Error><Message>Signature expired</Message></Error>"))
    with pytest.raises(BundleError, match="HTTP 403 Forbidden: Signature expired"):
        download(url, tmp_path / "bundle.tar", max_bytes=100, retry_delays=(0.0,))
    assert store.hits["/b"] == 1


def test_server_errors_are_retried(store: BundleStore, tmp_path: Path) -> None:
    url = store.serve("/b", (503, {}, b"busy"), (200, {}, BODY))
    download(url, tmp_path / "bundle.tar", max_bytes=10**6, retry_delays=(0.0,))
    assert (tmp_path / "bundle.tar").read_bytes() == BODY
    store.serve("/c", (500, {}, b"down"))
    with pytest.raises(BundleError, match="bundle download failed: HTTP 500"):
        download(url.replace("/b", "/c"), tmp_path / "c.tar", max_bytes=100, retry_delays=(0,))


def test_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"cannot reach http://127\.0\.0\.1:9/b"):
        download(
            "http://127.0.0.1:9/b?X-Amz-Signature=s", tmp_path / "b", max_bytes=1, retry_delays=()
        )


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_bundle_is_refused(store: BundleStore, tmp_path: Path, declared: bool) -> None:
    headers = {} if declared else {"X-No-Length": "1"}
    url = store.serve("/big", (200, headers, BODY))
    dest = tmp_path / "bundle.tar"
    with pytest.raises(BundleError, match=f"bundle exceeds {len(BODY) - 1} bytes"):
        download(url, dest, max_bytes=len(BODY) - 1)
    assert not dest.exists()


def test_https_store_is_verified_against_the_configured_ca(
    store: BundleStore, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    store.serve("/b", (200, {"ETag": f'"{MD5}"'}, BODY))
    tls = ThreadingHTTPServer(("127.0.0.1", 0), store.handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    thread = threading.Thread(target=tls.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{tls.server_address[1]}/b"
        download(url, tmp_path / "ok.tar", max_bytes=10**6, etag=MD5, ca_file=str(cert))
        assert (tmp_path / "ok.tar").read_bytes() == BODY
        with pytest.raises(BundleError, match=r"cannot verify the TLS certificate of 127\.0\.0\.1"):
            download(url, tmp_path / "no.tar", max_bytes=10**6, retry_delays=(0.0,))
    finally:
        tls.shutdown()
        tls.server_close()
        thread.join()


# --- git -----------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A bare repository with two commits; returns (bare path, first sha, second sha)."""
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", cwd=work)
    (work / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (work / "run.sh").write_text("#!/bin/sh\necho one\n")
    (work / "run.sh").chmod(0o755)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "one", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "run.sh").write_text("#!/bin/sh\necho two\n")
    _git("commit", "-q", "-am", "two", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "repo.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare, first, second


@pytest.mark.parametrize("as_url", [True, False])
def test_git_revision_is_fetched_by_commit(
    tmp_path: Path, git_repo: tuple[Path, str, str], as_url: bool
) -> None:
    bare, first, _second = git_repo
    deployment = tmp_path / "deployment"
    deployment.mkdir()
    url = f"file://{bare}" if as_url else str(bare)
    fetch_git(url, first, deployment / "bundle.tar", max_bytes=10**6)
    unpack(deployment / "bundle.tar", "tar", deployment / "deployment-archive")
    archive = deployment / "deployment-archive"
    assert (archive / "run.sh").read_text() == "#!/bin/sh\necho one\n"
    assert _mode(archive / "run.sh") & 0o111
    assert sorted(p.name for p in deployment.iterdir()) == ["bundle.tar", "deployment-archive"]


def test_missing_git_commit_is_a_clear_error(
    tmp_path: Path, git_repo: tuple[Path, str, str]
) -> None:
    bare, _first, _second = git_repo
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(BundleError, match=f"commit {missing} not found in file://"):
        fetch_git(f"file://{bare}", missing, tmp_path / "bundle.tar", max_bytes=10**6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo.git", "work"]


def test_unreachable_git_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"cannot fetch file:///nonexistent/repo\.git"):
        fetch_git("file:///nonexistent/repo.git", "a" * 40, tmp_path / "b.tar", max_bytes=10**6)


def test_git_bundle_size_is_limited(tmp_path: Path, git_repo: tuple[Path, str, str]) -> None:
    bare, _first, second = git_repo
    with pytest.raises(BundleError, match="bundle exceeds 100 bytes"):
        fetch_git(str(bare), second, tmp_path / "bundle.tar", max_bytes=100)
    assert not (tmp_path / "bundle.tar").exists()
