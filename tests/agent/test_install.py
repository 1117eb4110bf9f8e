"""install.install on real directories: copies, cleanup, file_exists_behavior, permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from shipyard.agent.appspec import parse
from shipyard.agent.install import InstallError, install
from tests.agent.archives import build_on_disk, link_chain_escape, path_max_escape

GROUP = "d-GROUP0001"
NOBODY, NOGROUP = 65534, 65534  # Debian's nobody / nogroup


class Host:
    """A bundle directory, an instructions directory and a destination root under tmp."""

    def __init__(self, root: Path) -> None:
        self.archive = root / "archive"
        self.instructions = root / "deployment-instructions"
        self.dest = root / "dest"
        self.archive.mkdir()

    def bundle(self, files: dict[str, str]) -> None:
        for name, content in files.items():
            path = self.archive / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    def install(self, body: str, behavior: str = "DISALLOW") -> None:
        text = "version: 0.0\nos: linux\n" + body.replace("DEST", str(self.dest))
        install(
            archive_dir=self.archive,
            appspec=parse(text),
            instructions_dir=self.instructions,
            deployment_group_id=GROUP,
            file_exists_behavior=behavior,
        )

    @property
    def cleanup_file(self) -> Path:
        return self.instructions / f"{GROUP}-cleanup"

    def cleanup(self) -> list[str]:
        """Cleanup entries relative to dest ("." for dest itself)."""
        lines = self.cleanup_file.read_text().splitlines()
        return [os.path.relpath(line, self.dest) for line in lines]

    def instructions_json(self) -> list[dict[str, object]]:
        text = (self.instructions / f"{GROUP}-install.json").read_text()
        instructions: list[dict[str, object]] = json.loads(text)["instructions"]
        return instructions


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def files_entry(source: str, destination: str = "DEST") -> str:
    return f"  - source: {source}\n    destination: {destination}\n"


# ---------------------------------------------------------------------------- copies


def test_file_source_goes_into_destination_with_mode_and_times(host: Host) -> None:
    host.bundle({"config/app.conf": "port=80\n"})
    source = host.archive / "config/app.conf"
    source.chmod(0o640)
    os.utime(source, ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))

    host.install("files:\n" + files_entry("config/app.conf", "DEST/etc"))

    installed = host.dest / "etc/app.conf"
    assert installed.read_text() == "port=80\n"
    assert mode_of(installed) == 0o640
    assert installed.stat().st_mtime_ns == 1_100_000_000_000_000_000
    # missing ancestors are created, outermost first, and recorded for cleanup
    assert host.cleanup() == [".", "etc", "etc/app.conf"]
    assert [step["type"] for step in host.instructions_json()] == ["mkdir", "mkdir", "copy"]
    assert host.instructions_json()[2] == {
        "type": "copy",
        "source": str(source),
        "destination": str(installed),
    }


def test_directory_source_copies_its_contents_recursively(host: Host) -> None:
    host.bundle({"app/a.txt": "a", "app/sub/b.txt": "b", "app/sub/deeper/c.txt": "c"})
    (host.archive / "app/empty").mkdir()
    host.dest.mkdir()

    host.install("files:\n" + files_entry("app", "DEST/srv"))

    assert (host.dest / "srv/a.txt").read_text() == "a"
    assert (host.dest / "srv/sub/deeper/c.txt").read_text() == "c"
    assert (host.dest / "srv/empty").is_dir()
    assert host.cleanup() == [
        "srv",
        "srv/a.txt",
        "srv/empty",
        "srv/sub",
        "srv/sub/b.txt",
        "srv/sub/deeper",
        "srv/sub/deeper/c.txt",
    ]


def test_root_source_copies_the_whole_bundle_including_the_appspec(host: Host) -> None:
    host.bundle({"appspec.yml": "version: 0.0\n", "bin/run": "#!/bin/sh\n"})
    host.install("files:\n" + files_entry("/"))
    assert (host.dest / "appspec.yml").read_text() == "version: 0.0\n"
    assert (host.dest / "bin/run").exists()


def test_several_sources_share_a_destination_directory(host: Host) -> None:
    host.bundle({"a.txt": "a", "b.txt": "b", "more/c.txt": "c"})
    host.install("files:\n" + files_entry("a.txt") + files_entry("b.txt") + files_entry("more"))
    assert sorted(os.listdir(host.dest)) == ["a.txt", "b.txt", "c.txt"]


def test_symlinks_are_recreated_as_symlinks(host: Host) -> None:
    host.bundle({"app/target.txt": "t", "app/sub/inner.txt": "i"})
    (host.archive / "app/link").symlink_to("target.txt")
    (host.archive / "app/dirlink").symlink_to("sub")
    (host.archive / "app/dangling").symlink_to("/nonexistent/file")
    (host.archive / "toplink").symlink_to("app/target.txt")

    host.install("files:\n" + files_entry("app") + files_entry("toplink", "DEST/top"))

    assert os.readlink(host.dest / "link") == "target.txt"
    assert os.readlink(host.dest / "dirlink") == "sub"  # not followed into a copy
    assert os.readlink(host.dest / "dangling") == "/nonexistent/file"
    assert os.readlink(host.dest / "top/toplink") == "app/target.txt"

    host.install("")  # the next install removes them, links included
    assert not os.path.lexists(host.dest)


def test_a_source_reached_through_a_symlink_out_of_the_bundle_is_refused(
    host: Host, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret").write_text("s")
    (host.archive / "out").symlink_to(tmp_path / "outside")
    with pytest.raises(InstallError, match="leads outside the bundle"):
        host.install("files:\n" + files_entry("out/secret"))


@pytest.mark.parametrize("through", ["PATH_MAX maze", "link chain"])
def test_a_source_reached_through_links_out_of_the_bundle_is_refused(
    host: Host, tmp_path: Path, through: str
) -> None:
    """Trees the old realpath checks let through (os.path.realpath gives up past
    PATH_MAX; a chain looked safe link by link): the secret beyond them is never copied."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("root's secret")
    if through == "PATH_MAX maze":
        build_on_disk(host.archive, path_max_escape(victim)[:-1])
        source = "/".join("abcdefghijklmnopq") + "/u/escape/secret"
    else:
        build_on_disk(host.archive, link_chain_escape())
        source = "y2/victim/secret"  # y2 -> x -> y/.. with y -> ".": tmp_path
    assert os.path.samefile(host.archive / source, victim / "secret")  # the kernel's view
    with pytest.raises(InstallError, match="leads outside the bundle through a symlink"):
        host.install("files:\n" + files_entry(source))
    assert not host.dest.exists()


def test_missing_source_fails_before_anything_is_copied(host: Host) -> None:
    host.bundle({"a.txt": "a"})
    with pytest.raises(InstallError, match=r"source nope\.txt does not exist in the bundle"):
        host.install("files:\n" + files_entry("a.txt") + files_entry("nope.txt"))
    assert not host.dest.exists()


@pytest.mark.parametrize("group_id", ["", "..", "a/b"])
def test_unsafe_deployment_group_id_is_refused(host: Host, group_id: str) -> None:
    with pytest.raises(InstallError, match="Invalid deployment group id"):
        install(
            archive_dir=host.archive,
            appspec=parse("version: 0.0\nos: linux\n"),
            instructions_dir=host.instructions,
            deployment_group_id=group_id,
            file_exists_behavior="DISALLOW",
        )


# ------------------------------------------------------------------------ collisions


def test_two_sources_for_one_destination(host: Host) -> None:
    host.bundle({"one/x.txt": "1", "two/x.txt": "2"})
    with pytest.raises(InstallError, match=r"Two sources .* same destination .*/dest/x\.txt"):
        host.install("files:\n" + files_entry("one") + files_entry("two"))
    assert not host.dest.exists()


def test_file_where_a_directory_is_being_installed(host: Host) -> None:
    host.bundle({"files/x": "file", "dirs/x/y": "in a dir"})
    with pytest.raises(InstallError, match="a directory is being installed there"):
        host.install("files:\n" + files_entry("dirs") + files_entry("files"))


def test_directory_where_a_file_is_being_installed(host: Host) -> None:
    host.bundle({"files/x": "file", "dirs/x/y": "in a dir"})
    with pytest.raises(InstallError, match=r"directory .*/dest/x: the file .* is being installed"):
        host.install("files:\n" + files_entry("files") + files_entry("dirs"))


def test_existing_file_where_a_directory_must_go(host: Host) -> None:
    host.bundle({"x/y": "y"})
    host.dest.mkdir()
    (host.dest / "x").write_text("in the way")
    with pytest.raises(InstallError, match="a file is in the way"):
        host.install("files:\n" + files_entry("/"), behavior="OVERWRITE")
    with pytest.raises(InstallError, match=r"/dest/x is not a directory"):
        host.install("files:\n" + files_entry("x/y", "DEST/x/deeper"), behavior="OVERWRITE")


def test_overwrite_never_replaces_a_directory_with_a_file(host: Host) -> None:
    host.bundle({"x": "file"})
    (host.dest / "x").mkdir(parents=True)
    with pytest.raises(InstallError, match="Cannot overwrite the directory"):
        host.install("files:\n" + files_entry("x"), behavior="OVERWRITE")


# --------------------------------------------------------------------------- cleanup


def test_previous_install_is_removed_before_the_next(host: Host) -> None:
    host.bundle({"v1/app/old.txt": "old", "v1/app/keep/x.txt": "x", "v2/new.txt": "new"})
    host.install("files:\n" + files_entry("v1"))
    (host.dest / "app/keep/user-added.txt").write_text("not ours")

    host.install("files:\n" + files_entry("v2"))

    assert not (host.dest / "app/old.txt").exists()
    assert not (host.dest / "app/keep/x.txt").exists()
    assert (host.dest / "app/keep/user-added.txt").exists()  # and so its directories stay
    assert (host.dest / "new.txt").read_text() == "new"
    assert host.cleanup() == ["new.txt"]  # dest itself now exists, so it is not ours


def test_the_same_bundle_installs_again_under_disallow(host: Host) -> None:
    host.bundle({"app/a.txt": "a"})
    host.install("files:\n" + files_entry("app"))
    host.install("files:\n" + files_entry("app"))
    assert host.cleanup() == [".", "a.txt"]


def test_cleanup_file_rules(host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = host.dest
    (dest / "empty").mkdir(parents=True)
    (dest / "busy").mkdir()
    (dest / "busy/other.txt").write_text("someone else's")
    (dest / "file.txt").write_text("f")
    (dest / "link").symlink_to("/nonexistent")
    (dest / "torn.txt").write_text("t")
    (tmp_path / "relative.txt").write_text("r")
    host.instructions.mkdir()
    lines = [dest / "empty", dest / "busy", dest / "file.txt", dest / "link", dest / "missing"]
    text = "".join(f"{line}\n" for line in lines) + "relative.txt\n" + str(dest / "torn.txt")
    host.cleanup_file.write_text(text)

    monkeypatch.chdir(tmp_path)  # a relative entry must not be resolved against the cwd
    host.install("")

    assert sorted(os.listdir(dest)) == ["busy", "torn.txt"]  # non-empty dir and torn line kept
    assert (tmp_path / "relative.txt").exists()
    assert host.cleanup_file.read_text() == ""  # replaced by this install's (empty) record


def test_failed_plan_leaves_no_cleanup_file(host: Host) -> None:
    host.bundle({"a.txt": "a"})
    host.install("files:\n" + files_entry("a.txt"))
    with pytest.raises(InstallError):
        host.install("files:\n" + files_entry("missing"))
    assert not host.cleanup_file.exists()
    assert not (host.dest / "a.txt").exists()  # the previous install was undone first


def test_a_failure_while_executing_leaves_a_usable_cleanup_file(host: Host) -> None:
    host.bundle({"app/a.txt": "a", "app/b.txt": "b"})
    # setfacl refuses an unknown user only when it runs, after the copies are done
    body = "files:\n" + files_entry("app") + "permissions:\n  - object: DEST\n"
    body += "    acls: ['u:no-such-user-here:r']\n"
    with pytest.raises(InstallError, match=r"setfacl --set .* exited with code"):
        host.install(body)
    assert host.cleanup() == [".", "a.txt", "b.txt"]

    host.install("")
    assert not host.dest.exists()


# ------------------------------------------------------------- file_exists_behavior


@pytest.fixture
def existing(host: Host) -> Host:
    """A bundle with a.txt and b.txt, and an a.txt already at the destination."""
    host.bundle({"app/a.txt": "new a", "app/b.txt": "new b"})
    host.dest.mkdir()
    (host.dest / "a.txt").write_text("old a")
    return host


DISALLOWED = "The deployment failed because a specified file already exists at this location: "


@pytest.mark.parametrize(
    ("argument", "in_appspec"), [("DISALLOW", None), ("OVERWRITE", "DISALLOW")]
)
def test_disallow(existing: Host, argument: str, in_appspec: str | None) -> None:
    body = f"file_exists_behavior: {in_appspec}\n" if in_appspec else ""
    with pytest.raises(InstallError) as caught:
        existing.install(body + "files:\n" + files_entry("app"), behavior=argument)
    assert str(caught.value) == DISALLOWED + str(existing.dest / "a.txt") + (
        " (file_exists_behavior is DISALLOW: to replace it, deploy with "
        "--file-exists-behavior OVERWRITE, or RETAIN to keep it)"
    )  # where a user is stuck, the message names the way out
    assert (existing.dest / "a.txt").read_text() == "old a"
    assert not (existing.dest / "b.txt").exists()  # nothing is copied


@pytest.mark.parametrize(
    ("argument", "in_appspec"),
    [("OVERWRITE", None), ("DISALLOW", "OVERWRITE"), ("RETAIN", "OVERWRITE")],
)
def test_overwrite(existing: Host, argument: str, in_appspec: str | None) -> None:
    body = f"file_exists_behavior: {in_appspec}\n" if in_appspec else ""
    other_name = existing.dest.parent / "hard-link-to-old-a"
    os.link(existing.dest / "a.txt", other_name)
    existing.install(body + "files:\n" + files_entry("app"), behavior=argument)
    assert (existing.dest / "a.txt").read_text() == "new a"
    assert other_name.read_text() == "old a"  # replaced, not written through
    assert existing.cleanup() == ["a.txt", "b.txt"]

    existing.install("")  # and so the next deployment removes it
    assert os.listdir(existing.dest) == []


def test_overwrite_replaces_a_symlink_instead_of_writing_through_it(
    existing: Host, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (existing.dest / "b.txt").symlink_to(victim)
    existing.install("files:\n" + files_entry("app"), behavior="OVERWRITE")
    assert victim.read_text() == "precious"
    assert not (existing.dest / "b.txt").is_symlink()


@pytest.mark.parametrize(
    ("argument", "in_appspec"),
    [("RETAIN", None), ("DISALLOW", "RETAIN"), ("OVERWRITE", "RETAIN")],
)
def test_retain(existing: Host, argument: str, in_appspec: str | None) -> None:
    body = f"file_exists_behavior: {in_appspec}\n" if in_appspec else ""
    existing.install(body + "files:\n" + files_entry("app"), behavior=argument)
    assert (existing.dest / "a.txt").read_text() == "old a"
    assert (existing.dest / "b.txt").read_text() == "new b"
    assert existing.cleanup() == ["b.txt"]  # the retained file is not ours to remove

    existing.install("")
    assert os.listdir(existing.dest) == ["a.txt"]


def test_invalid_behavior_argument(existing: Host) -> None:
    with pytest.raises(InstallError, match="Invalid file_exists_behavior 'MERGE'"):
        existing.install("files:\n" + files_entry("app"), behavior="MERGE")


# ----------------------------------------------------------------------- permissions


@pytest.fixture
def tree(host: Host) -> Host:
    """app/ with run.sh, skip.sh, notes.txt, lib/util.sh, lib/deep/x.txt, and an empty dir."""
    host.bundle(
        {
            "app/run.sh": "r",
            "app/skip.sh": "s",
            "app/notes.txt": "n",
            "app/lib/util.sh": "u",
            "app/lib/deep/x.txt": "x",
        }
    )
    (host.archive / "app/empty").mkdir()
    for path in (host.archive / "app").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return host


def install_with_permission(host: Host, permission: str, obj: str = "DEST/app") -> None:
    entry = f"permissions:\n  - object: {obj}\n" + "".join(
        f"    {line}\n" for line in permission.strip().splitlines()
    )
    host.install("files:\n" + files_entry("app", "DEST/app") + entry)


def modes(host: Host) -> dict[str, str]:
    root = host.dest / "app"
    found = {".": oct(mode_of(root))}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = oct(mode_of(path))
    return found


def test_mode_for_files_only(tree: Host) -> None:
    install_with_permission(tree, "mode: 600\ntype: [file]")
    assert modes(tree) == {
        ".": "0o755",  # the object itself is never changed
        "empty": "0o755",
        "lib": "0o755",
        "lib/deep": "0o755",
        "lib/deep/x.txt": "0o600",
        "lib/util.sh": "0o600",
        "notes.txt": "0o600",
        "run.sh": "0o600",
        "skip.sh": "0o600",
    }


def test_mode_for_directories_only(tree: Host) -> None:
    install_with_permission(tree, "mode: '0700'\ntype: [directory]")
    changed = {path for path, mode in modes(tree).items() if mode == "0o700"}
    assert changed == {"empty", "lib", "lib/deep"}


def test_pattern_and_except_look_at_immediate_children(tree: Host) -> None:
    install_with_permission(tree, "pattern: '*.sh'\nexcept: [skip*]\nmode: 700")
    changed = {path for path, mode in modes(tree).items() if mode == "0o700"}
    assert changed == {"run.sh"}


def test_except_with_everything_pattern(tree: Host) -> None:
    install_with_permission(tree, "except: [lib]\nmode: 711\ntype: [directory]")
    changed = {path for path, mode in modes(tree).items() if mode == "0o711"}
    assert changed == {"empty", "lib/deep"}  # except only excludes lib itself


def test_a_copied_file_as_object(tree: Host) -> None:
    install_with_permission(tree, "mode: 4750", obj="DEST/app/run.sh")
    assert modes(tree)["run.sh"] == "0o4750"
    assert modes(tree)["skip.sh"] == "0o644"


def test_a_file_object_with_type_directory_only_is_ignored(tree: Host) -> None:
    install_with_permission(tree, "mode: 700\ntype: [directory]", obj="DEST/app/run.sh")
    assert modes(tree)["run.sh"] == "0o644"


def test_an_existing_directory_object_covers_what_is_installed_under_it(tree: Host) -> None:
    tree.dest.mkdir()
    (tree.dest / "mine.txt").write_text("already here")
    (tree.dest / "mine.txt").chmod(0o644)
    install_with_permission(tree, "mode: 700\npattern: app", obj="DEST")
    assert oct(mode_of(tree.dest / "app")) == "0o700"
    assert oct(mode_of(tree.dest / "mine.txt")) == "0o644"  # not installed by us


def test_retained_files_get_no_permissions(tree: Host) -> None:
    (tree.dest / "app").mkdir(parents=True)
    (tree.dest / "app/run.sh").write_text("theirs")
    (tree.dest / "app/run.sh").chmod(0o644)
    body = "files:\n" + files_entry("app", "DEST/app") + "permissions:\n"
    body += "  - object: DEST/app\n    mode: 600\n"
    tree.install(body, behavior="RETAIN")
    assert oct(mode_of(tree.dest / "app/run.sh")) == "0o644"
    assert oct(mode_of(tree.dest / "app/skip.sh")) == "0o600"


def test_permissions_on_a_path_twice(tree: Host) -> None:
    body = "files:\n" + files_entry("app", "DEST/app") + "permissions:\n"
    body += "  - object: DEST/app\n    mode: 600\n  - object: DEST/app/lib\n    mode: 644\n"
    with pytest.raises(
        InstallError, match=r"permissions set .*/app/lib/deep/x\.txt more than once"
    ):
        tree.install(body)
    assert not tree.dest.exists()


@pytest.mark.parametrize(
    ("permission", "message"),
    [
        ("pattern: '*.sh'\nmode: 600", "pattern '\\*.sh' can only be used when the object"),
        ("except: [a]\nmode: 600", "except can only be used when the object is a directory"),
        ("acls: ['d:u:nobody:r']", "default ACL entries to the file"),
    ],
)
def test_file_object_restrictions(tree: Host, permission: str, message: str) -> None:
    with pytest.raises(InstallError, match=message):
        install_with_permission(tree, permission, obj="DEST/app/run.sh")


def test_default_acl_on_files_under_a_directory_object(tree: Host) -> None:
    with pytest.raises(
        InstallError, match=r"default ACL entries to the file .*/app/lib/deep/x.txt"
    ):
        install_with_permission(tree, "acls: ['d:u:nobody:r']")
    install_with_permission(tree, "acls: ['d:u:nobody:r']\ntype: [directory]")


def test_owner_and_group(tree: Host) -> None:
    install_with_permission(tree, "owner: nobody\ngroup: nogroup\ntype: [file]")
    util = (tree.dest / "app/lib/util.sh").stat()
    assert (util.st_uid, util.st_gid) == (NOBODY, NOGROUP)
    assert (tree.dest / "app/lib").stat().st_uid == 0


def test_setuid_survives_chown(tree: Host) -> None:
    install_with_permission(tree, "mode: 4755\nowner: nobody", obj="DEST/app/run.sh")
    run = (tree.dest / "app/run.sh").stat()
    assert (oct(stat.S_IMODE(run.st_mode)), run.st_uid) == ("0o4755", NOBODY)


def test_group_alone_keeps_the_owner(tree: Host) -> None:
    install_with_permission(tree, "group: nogroup\ntype: [directory]")
    lib = (tree.dest / "app/lib").stat()
    assert (lib.st_uid, lib.st_gid) == (0, NOGROUP)


@pytest.mark.parametrize(
    ("permission", "message"),
    [("owner: no-such-user-here", "unknown owner"), ("group: no-such-group-here", "unknown group")],
)
def test_unknown_owner_or_group_fails_before_copying(
    tree: Host, permission: str, message: str
) -> None:
    with pytest.raises(InstallError, match=f"{message}: no-such-"):
        install_with_permission(tree, permission)
    assert not tree.dest.exists()


def getfacl(path: Path) -> list[str]:
    output = subprocess.run(
        ["getfacl", "--omit-header", "--absolute-names", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t")[0] for line in output.splitlines() if line]


def test_acls_on_files(tree: Host) -> None:
    install_with_permission(tree, "mode: 640\nacls: ['u:nobody:rw', 'g:nogroup:4']\ntype: [file]")
    assert getfacl(tree.dest / "app/run.sh") == [
        "user::rw-",
        "user:nobody:rw-",
        "group::r--",
        "group:nogroup:r--",
        "mask::r--",  # added from the group bits, as the stock agent does
        "other::---",
    ]
    assert getfacl(tree.dest / "app/lib") == ["user::rwx", "group::r-x", "other::r-x"]


def test_default_acls_on_directories(tree: Host) -> None:
    install_with_permission(tree, "acls: ['d:u:nobody:rwx', 'm::rx']\ntype: [directory]")
    assert getfacl(tree.dest / "app/lib") == [
        "user::rwx",
        "group::r-x",
        "mask::r-x",
        "other::r-x",
        "default:user::rwx",
        "default:user:nobody:rwx",
        "default:group::r-x",
        "default:mask::r-x",
        "default:other::r-x",
    ]


def test_permission_steps_run_in_the_stock_order(tree: Host) -> None:
    install_with_permission(
        tree, "owner: nobody\nmode: 600\nacls: ['u:nobody:r']\n", obj="DEST/app/run.sh"
    )
    steps = [step for step in tree.instructions_json() if step.get("file")]
    assert [step["type"] for step in steps] == ["chmod", "setfacl", "chown"]
    assert steps[1]["acl"] == ["user:nobody:r--"]
    assert getfacl(tree.dest / "app/run.sh")[1] == "user:nobody:r--"
    assert (tree.dest / "app/run.sh").stat().st_uid == NOBODY


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH reduced to one empty directory: no setfacl, semanage or restorecon."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_acls_without_setfacl(tree: Host, bare_path: Path) -> None:
    with pytest.raises(InstallError, match=r"setfacl is not installed .*acl package"):
        install_with_permission(tree, "acls: ['u:nobody:r']")
    assert not tree.dest.exists()


def test_context_without_selinux_tools(tree: Host, bare_path: Path) -> None:
    with pytest.raises(InstallError, match=r"SELinux tools \(semanage, restorecon not found\)"):
        install_with_permission(tree, "context: {type: httpd_sys_content_t}")
    assert not tree.dest.exists()


def fake_tool(bin_dir: Path, name: str, log: Path, exit_code: int = 0) -> None:
    """A stand-in for an SELinux tool (absent here) that logs its arguments."""
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit {exit_code}\n')
    script.chmod(0o755)


def test_selinux_context_is_registered_and_later_removed(
    tree: Host, bare_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "selinux.log"
    fake_tool(bare_path, "semanage", log)
    fake_tool(bare_path, "restorecon", log)
    context = "context: {name: system_u, type: httpd_t, range: 's0:c1,c0'}"
    install_with_permission(tree, f"mode: 600\n{context}", obj="DEST/app/run.sh")

    target = tree.dest / "app/run.sh"
    assert log.read_text().splitlines() == [
        f"semanage fcontext -a -s system_u -t httpd_t -r s0:c0.c1 {target}",
        f"restorecon -v {target}",
    ]
    assert tree.cleanup_file.read_text().splitlines()[-1] == f"semanage\0{target}"
    semanage_step = tree.instructions_json()[-1]
    assert semanage_step["context"] == {
        "user": "system_u",
        "role": None,
        "type": "httpd_t",
        "range": "s0:c0.c1",
    }

    tree.install("")
    assert log.read_text().splitlines()[-1] == f"semanage fcontext -d {target}"


def test_a_failing_semanage_fails_the_install(tree: Host, bare_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "selinux.log"
    fake_tool(bare_path, "semanage", log, exit_code=1)
    fake_tool(bare_path, "restorecon", log)
    with pytest.raises(InstallError, match=r"semanage fcontext -a -t bad_t .* exited with code 1"):
        install_with_permission(tree, "context: {type: bad_t}", obj="DEST/app/run.sh")
