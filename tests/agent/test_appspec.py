"""appspec.parse: every validation rule of the stock agent, and what valid files become."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shipyard.agent.appspec import AppSpec, AppSpecError, FileMapping, HookScript, parse
from shipyard.agent.permissions import AclEntry, Mode, SelinuxRange

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "appspec.yml"
HEADER = "version: 0.0\nos: linux\n"


def spec(body: str = "") -> AppSpec:
    return parse(HEADER + textwrap.dedent(body))


def permission_yaml(lines: str, obj: str = "/opt/app") -> str:
    entry = textwrap.indent(textwrap.dedent(lines).strip(), "    ")
    return f"permissions:\n  - object: {obj}\n{entry}\n" if lines else ""


def acl_yaml(entry: str) -> str:
    return HEADER + f"permissions:\n  - object: /opt/app\n    acls:\n      - '{entry}'\n"


def range_yaml(value: str) -> str:
    return HEADER + (
        f"permissions:\n  - object: /opt/app\n    context:\n      type: t\n      range: '{value}'\n"
    )


# Each case: (id, appspec text, a fragment the error message must contain).
INVALID: list[tuple[str, str, str]] = [
    # the document itself
    ("empty", "", "appspec file is empty"),
    ("whitespace only", "  \n\n  ", "appspec file is empty"),
    ("comments only", "# nothing\n", "appspec file is empty"),
    ("not yaml", "version: [0.0\n", "not valid YAML"),
    ("a list", "- version: 0.0\n", "must be a YAML mapping"),
    ("a scalar", "hello\n", "must be a YAML mapping"),
    # version
    ("version missing", "os: linux\n", "has no version"),
    ("version 1.0", "version: 1.0\nos: linux\n", "version 1.0 is not supported"),
    ("version string 1", "version: '1'\nos: linux\n", "version '1' is not supported"),
    ("version true", "version: false\nos: linux\n", "version False is not supported"),
    # os
    ("os missing", "version: 0.0\n", "has no os"),
    ("os windows", "version: 0.0\nos: windows\n", "unsupported operating system (windows)"),
    ("os other", "version: 0.0\nos: solaris\n", "unsupported operating system (solaris)"),
    ("os capitalised", "version: 0.0\nos: Linux\n", "unsupported operating system (Linux)"),
    # file_exists_behavior
    ("behavior bad", HEADER + "file_exists_behavior: MERGE\n", "file_exists_behavior 'MERGE'"),
    ("behavior lowercase", HEADER + "file_exists_behavior: retain\n", "is invalid"),
    # files
    ("files not a list", HEADER + "files: {source: a}\n", "files section must be a list"),
    ("files entry scalar", HEADER + "files:\n  - a\n", "files entry 1 must be a mapping"),
    ("source missing", HEADER + "files:\n  - destination: /opt\n", "entry 1 has no source"),
    ("source null", HEADER + "files:\n  - {source: null, destination: /o}\n", "has no source"),
    ("source not text", HEADER + "files:\n  - {source: [a], destination: /o}\n", "path string"),
    ("destination missing", HEADER + "files:\n  - source: a\n", "(source a) has no destination"),
    ("destination relative", HEADER + "files:\n  - {source: a, destination: opt}\n", "absolute"),
    (
        "second entry bad",
        HEADER + "files:\n  - {source: a, destination: /o}\n  - {source: b}\n",
        "files entry 2",
    ),
    ("source escapes", HEADER + "files:\n  - {source: ../x, destination: /o}\n", "outside"),
    ("source escapes deep", HEADER + "files:\n  - {source: a/../../x, destination: /o}\n", "outs"),
    (
        "duplicate mapping",
        HEADER + "files:\n  - {source: a, destination: /o}\n  - {source: a, destination: /o/}\n",
        "entry 2 repeats entry 1",
    ),
    # hooks
    ("hooks not a mapping", HEADER + "hooks:\n  - BeforeInstall\n", "hooks section must map"),
    ("hook not a list", HEADER + "hooks:\n  BeforeInstall: run.sh\n", "BeforeInstall must be a"),
    ("script scalar", HEADER + "hooks:\n  BeforeInstall:\n    - run.sh\n", "must be a mapping"),
    ("location missing", HEADER + "hooks:\n  AfterInstall:\n    - timeout: 5\n", "no location"),
    ("location null", HEADER + "hooks:\n  AfterInstall:\n    - location:\n", "no location"),
    ("location blank", HEADER + "hooks:\n  AfterInstall:\n    - location: ' '\n", "no location"),
    (
        "second script",
        HEADER + "hooks:\n  AfterInstall:\n    - location: a\n    - runas: x\n",
        "AfterInstall script 2 has no location",
    ),
    (
        "timeout zero",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: 0}\n",
        "greater than 0",
    ),
    (
        "timeout negative",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: -5}\n",
        "than 0",
    ),
    (
        "timeout fraction",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: 0.5}\n",
        "than 0",
    ),
    (
        "timeout text",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: soon}\n",
        "not a num",
    ),
    (
        "timeout mixed",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: 30s}\n",
        "not a num",
    ),
    (
        "timeout bool",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: true}\n",
        "not a num",
    ),
    (
        "timeout inf",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, timeout: .inf}\n",
        "not a num",
    ),
    (
        "sudo text",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, sudo: maybe}\n",
        "true or false",
    ),
    (
        "runas list",
        HEADER + "hooks:\n  AfterInstall:\n    - {location: a, runas: [u]}\n",
        "user name",
    ),
    # permissions: the entry
    ("permissions mapping", HEADER + "permissions: {object: /a}\n", "must be a list of entries"),
    ("permission scalar", HEADER + "permissions:\n  - /opt\n", "must be a mapping"),
    ("object missing", HEADER + "permissions:\n  - mode: 644\n", "entry 1: the object is missing"),
    ("object null", HEADER + "permissions:\n  - object:\n", "the object is missing"),
    ("object relative", HEADER + "permissions:\n  - object: opt\n", "must be an absolute path"),
    ("pattern empty", HEADER + permission_yaml("pattern: ''"), "pattern '' must be"),
    ("except scalar", HEADER + permission_yaml("except: a*"), "except must be a list"),
    ("type unknown", HEADER + permission_yaml("type: [file, socket]"), "type 'socket'"),
    ("type mapping", HEADER + permission_yaml("type: {a: b}"), "type must be a list"),
    ("owner list", HEADER + permission_yaml("owner: [a]"), "must be a owner name"),
    ("group number", HEADER + permission_yaml("group: 5"), "must be a group name"),
    # permissions: mode
    ("mode too long", HEADER + permission_yaml("mode: 07777"), "mode 07777 is too long"),
    ("mode digit 8", HEADER + permission_yaml("mode: 648"), "contains '8'"),
    ("mode letters", HEADER + permission_yaml("mode: rw"), "contains 'r'"),
    ("mode unquoted 08", HEADER + permission_yaml("mode: 08"), "contains '8'"),
    ("mode bool", HEADER + permission_yaml("mode: true"), "must be octal digits"),
    ("mode list", HEADER + permission_yaml("mode: [6]"), "must be octal digits"),
    # permissions: acls
    ("acls scalar", HEADER + permission_yaml("acls: u:bob:rw"), "acls must be a list"),
    ("acl not text", HEADER + permission_yaml("acls: [5]"), "must be a string"),
    ("acl one part", acl_yaml("rwx"), "is not of the form"),
    ("acl five parts", acl_yaml("d:u:bob:rw:x"), "is not of the form"),
    ("acl bad default", acl_yaml("x:u:bob:rw"), "is not of the form"),
    ("acl bad kind", acl_yaml("z:bob:rw"), "is not of the form"),
    ("acl default twice", acl_yaml("d:d:bob:rw"), "is not of the form"),
    ("acl unnamed user", acl_yaml("u::rw"), "use mode"),
    ("acl unnamed bare", acl_yaml(":rw"), "use mode"),
    ("acl unnamed group", acl_yaml("g::r"), "use mode"),
    ("acl other", acl_yaml("o::r"), "use mode"),
    ("acl named mask", acl_yaml("m:bob:rw"), "mask entry cannot name"),
    ("acl named other", acl_yaml("o:bob:r"), "other entry cannot name"),
    ("acl other named", acl_yaml("other:o:r"), "other entry cannot name"),
    ("acl bad perm", acl_yaml("u:bob:rwz"), "invalid permission character 'z'"),
    ("acl perm 8", acl_yaml("u:bob:8"), "invalid permission character '8'"),
    ("acl perm 2 digits", acl_yaml("u:bob:77"), "invalid permission character '7'"),
    # permissions: context
    ("context scalar", HEADER + permission_yaml("context: t"), "context must be a mapping"),
    ("context no type", HEADER + permission_yaml("context: {name: u}"), "needs a type"),
    ("context role", HEADER + permission_yaml("context: {type: t, role: r}"), "role is not sup"),
    ("context range num", HEADER + permission_yaml("context: {type: t, range: 5}"), "a string"),
    ("range empty levels", range_yaml(":c1"), "invalid sensitivity ''"),
    ("range no s", range_yaml("0"), "invalid sensitivity '0'"),
    ("range s only", range_yaml("s"), "invalid sensitivity 's'"),
    ("range s letters", range_yaml("sx"), "invalid sensitivity 'sx'"),
    ("range dangling dash", range_yaml("s0-"), "invalid sensitivity ''"),
    ("range three levels", range_yaml("s0-s1-s2"), "invalid sensitivity 's1-s2'"),
    ("range backwards", range_yaml("s2-s1"), "below the low one"),
    ("range empty cats", range_yaml("s0:"), "nothing after ':'"),
    ("range bad cat", range_yaml("s0:d1"), "invalid category 'd1'"),
    ("range cat colon", range_yaml("s0:c1:c2"), "invalid category 'c1:c2'"),
    ("range cat too big", range_yaml("s0:c1024"), "above c1023"),
    ("range span too big", range_yaml("s0:c0.c1024"), "above c1023"),
    ("range span open", range_yaml("s0:c1."), "invalid category ''"),
    ("range span double", range_yaml("s0:c1.c2.c3"), "invalid category 'c2.c3'"),
    ("range span back", range_yaml("s0:c5.c2"), "runs backwards"),
    ("range duplicate", range_yaml("s0:c1,c1"), "more than once"),
    ("range overlap", range_yaml("s0:c0.c3,c2"), "more than once"),
    ("range empty item", range_yaml("s0:c1,,c2"), "invalid category ''"),
]


@pytest.mark.parametrize(
    ("text", "fragment"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_appspec_is_rejected_with_a_specific_message(text: str, fragment: str) -> None:
    with pytest.raises(AppSpecError) as caught:
        parse(text)
    assert fragment in str(caught.value)


def test_permission_errors_name_the_entry_and_object() -> None:
    text = HEADER + "permissions:\n  - object: /a\n  - object: /b\n    mode: 9\n"
    with pytest.raises(AppSpecError, match=r"permissions entry 2 \(object /b\): mode 9"):
        parse(text)


def test_minimal_appspec() -> None:
    assert spec() == AppSpec(version=0.0, os="linux")
    assert spec().scripts_for("BeforeInstall") == []


@pytest.mark.parametrize("version", ["0.0", "0", "'0.0'", '"0.0"', "0.00"])
def test_version_spellings_accepted(version: str) -> None:
    assert parse(f"version: {version}\nos: linux\n").version == 0.0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("hook:\n  AfterInstall: []\n", "line 3: unknown key 'hook' (did you mean 'hooks'?)"),
        ("Files: []\n", "line 3: unknown key 'Files' (did you mean 'files'?)"),
        (
            "hooks:\n  AfterInstal:\n    - location: a.sh\n",
            "line 4: unknown hook event 'AfterInstal' (did you mean 'AfterInstall'?)",
        ),
        ("hooks:\n  Install:\n    - location: a.sh\n", "run by the agent itself"),
        (
            "hooks:\n  AfterInstall:\n    - location: a.sh\n      timout: 5\n",
            "line 6: unknown key in a hook script 'timout' (did you mean 'timeout'?)",
        ),
        (
            "files:\n  - source: /\n    destinaton: /opt\n",
            "line 5: unknown key in a files entry 'destinaton' (did you mean 'destination'?)",
        ),
        ("Resources: []\n", "an EC2/on-premises appspec has version, os"),
    ],
)
def test_unknown_keys_and_events_are_refused_with_line_and_suggestion(
    body: str, fragment: str
) -> None:
    with pytest.raises(AppSpecError) as caught:
        spec(body)
    assert fragment in str(caught.value)


def test_null_sections_are_empty() -> None:
    parsed = spec("files:\nhooks:\npermissions:\nfile_exists_behavior:\n")
    assert parsed == AppSpec(version=0.0, os="linux")


@pytest.mark.parametrize("behavior", ["DISALLOW", "OVERWRITE", "RETAIN"])
def test_file_exists_behavior_values(behavior: str) -> None:
    assert spec(f"file_exists_behavior: {behavior}\n").file_exists_behavior == behavior


def test_files_keep_order_and_normalise_destinations() -> None:
    parsed = spec(
        """
        files:
          - source: /
            destination: /srv/app/
          - source: config/app.conf
            destination: /etc/app//conf.d/..
          - source: a
            destination: /srv/app
          - source: b
            destination: /srv/app
        """
    )
    assert parsed.files == [
        FileMapping("/", "/srv/app"),
        FileMapping("config/app.conf", "/etc/app"),
        FileMapping("a", "/srv/app"),
        FileMapping("b", "/srv/app"),
    ]


def test_hooks_defaults_and_every_key() -> None:
    parsed = spec(
        """
        hooks:
          BeforeInstall:
            - location: scripts/a.sh
            - location: " scripts/b.sh "
              timeout: 300
              runas: " deploy "
              sudo: true
            - location: c.sh
              timeout: "45"
            - location: d.sh
              timeout: 59.9
          AfterInstall: []
          ApplicationStart:
          ValidateService:
            - location: custom.sh
              sudo: false
        """
    )
    assert parsed.scripts_for("BeforeInstall") == [
        HookScript("scripts/a.sh"),
        HookScript("scripts/b.sh", timeout=300, runas="deploy", sudo=True),
        HookScript("c.sh", timeout=45),
        HookScript("d.sh", timeout=59),
    ]
    assert list(parsed.hooks) == ["BeforeInstall", "ValidateService"]
    assert parsed.scripts_for("AfterInstall") == []
    assert parsed.scripts_for("ApplicationStart") == []


def test_summed_timeouts_over_an_hour_are_left_to_the_server() -> None:
    parsed = spec(
        "hooks:\n  AfterInstall:\n    - {location: a, timeout: 3600}\n    - {location: b}\n"
    )
    assert sum(script.timeout for script in parsed.scripts_for("AfterInstall")) == 7200


def test_scripts_for_returns_a_copy() -> None:
    parsed = spec("hooks:\n  AfterInstall:\n    - location: a\n")
    parsed.scripts_for("AfterInstall").clear()
    assert parsed.scripts_for("AfterInstall") == [HookScript("a")]


def test_permission_defaults() -> None:
    (permission,) = spec("permissions:\n  - object: /opt/app/\n").permissions
    assert permission.object == "/opt/app"
    assert permission.pattern == "**"
    assert permission.except_patterns == ()
    assert permission.types == ("file", "directory")
    assert (permission.owner, permission.group, permission.mode) == (None, None, None)
    assert (permission.acls, permission.context) == (None, None)


def test_permission_with_everything() -> None:
    (permission,) = spec(
        """
        permissions:
          - object: /opt/app
            pattern: "*.sh"
            except: [debug*.sh]
            owner: nobody
            group: nogroup
            mode: 4755
            type: [file]
            acls:
              - u:bob:rwx
              - d:g:staff:5
              - default:m::r
            context:
              name: system_u
              type: httpd_sys_content_t
              range: s0-s2:c3,c0.c1,c10
        """
    ).permissions
    assert permission.pattern == "*.sh"
    assert permission.except_patterns == ("debug*.sh",)
    assert (permission.owner, permission.group) == ("nobody", "nogroup")
    assert permission.mode == Mode("4755")
    assert permission.types == ("file",)
    assert permission.acls == (
        AclEntry("user", "bob", "rwx"),
        AclEntry("group", "staff", "r-x", default=True),
        AclEntry("mask", "", "r--", default=True),
    )
    assert permission.context is not None
    assert permission.context.user == "system_u"
    assert permission.context.type == "httpd_sys_content_t"
    assert permission.context.range == SelinuxRange(0, 2, (0, 1, 3, 10))
    assert permission.context.range.text == "s0-s2:c0.c1,c3,c10"


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("644", "644"),
        ("7", "007"),
        ("'55'", "055"),
        ("'0644'", "0644"),
        ("0644", "0644"),  # unquoted: the digits as written, not YAML's octal 420
        ("1777", "1777"),
        ("''", "000"),
    ],
)
def test_mode_padding(written: str, digits: str) -> None:
    (permission,) = spec(f"permissions:\n  - object: /a\n    mode: {written}\n").permissions
    assert permission.mode == Mode(digits)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("u:bob:rwx", "user:bob:rwx"),
        ("user:bob:r-x", "user:bob:r-x"),
        ("bob:w", "user:bob:-w-"),
        ("g:staff:6", "group:staff:rw-"),
        ("group:staff:0", "group:staff:---"),
        ("m::rx", "mask::r-x"),
        ("mask:xr", "mask::r-x"),
        ("m:7", "mask::rwx"),
        ("u:mask:r", "user:mask:r--"),
        ("g:o:r", "group:other:r--"),
        ("d:u:bob:rw", "default:user:bob:rw-"),
        ("default:g:staff:x", "default:group:staff:--x"),
        ("d::rwx", "default:user::rwx"),
        ("d:u::rwx", "default:user::rwx"),
        ("d:g::r", "default:group::r--"),
        ("d:o::r", "default:other::r--"),
        ("d:o:4", "default:other::r--"),
        ("d:m:rw", "default:mask::rw-"),
        ("d:bob:1", "default:user:bob:--x"),
        ("u:bob:", "user:bob:---"),
        ("u:bob:--", "user:bob:---"),
    ],
)
def test_acl_entries(entry: str, expected: str) -> None:
    (permission,) = parse(acl_yaml(entry)).permissions
    assert permission.acls is not None
    assert [acl.text for acl in permission.acls] == [expected]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s0", "s0"),
        ("s3-s3", "s3"),
        ("s0-s15", "s0-s15"),
        ("s0:c0", "s0:c0"),
        ("s0:c1023", "s0:c1023"),
        ("s0:c0.c1023", "s0:c0.c1023"),
        ("s1:c5,c1,c2", "s1:c1.c2,c5"),
        ("s0-s1:c0.c2,c4.c4", "s0-s1:c0.c2,c4"),
    ],
)
def test_selinux_ranges(value: str, text: str) -> None:
    (permission,) = parse(range_yaml(value)).permissions
    assert permission.context is not None and permission.context.range is not None
    assert permission.context.range.text == text


@pytest.mark.parametrize(
    ("pattern", "excepts", "path", "covered"),
    [
        ("**", [], "/opt/app/a", True),
        ("**", [], "/opt/app/a/b/c", True),
        ("**", [], "/opt/app", False),  # never the object itself
        ("**", [], "/opt/application", False),
        ("**", [], "/srv/x", False),
        ("*.sh", [], "/opt/app/run.sh", True),
        ("*.sh", [], "/opt/app/run.py", False),
        ("*.sh", [], "/opt/app/sub/run.sh", False),  # only immediate children
        ("*", [], "/opt/app/sub", True),
        ("*", [], "/opt/app/sub/x", False),
        ("r*n*.sh", [], "/opt/app/run.sh", True),
        ("?.sh", [], "/opt/app/a.sh", False),  # only * is a wildcard
        ("?.sh", [], "/opt/app/?.sh", True),
        ("[ab].sh", [], "/opt/app/[ab].sh", True),
        ("**", ["*.log"], "/opt/app/a.log", False),
        ("**", ["*.log"], "/opt/app/logs/a.log", True),  # except: immediate children only
        ("**", ["logs"], "/opt/app/logs", False),
        ("**", ["logs"], "/opt/app/logs/a", True),
        ("*.sh", ["debug*"], "/opt/app/debug.sh", False),
        ("*.sh", ["debug*"], "/opt/app/start.sh", True),
    ],
)
def test_permission_coverage(pattern: str, excepts: list[str], path: str, covered: bool) -> None:
    body = f"permissions:\n  - object: /opt/app\n    pattern: '{pattern}'\n    except: {excepts}\n"
    (permission,) = spec(body).permissions
    assert permission.covers(path) is covered


def test_root_object_covers_everything() -> None:
    (permission,) = spec("permissions:\n  - object: /\n").permissions
    assert permission.covers("/etc/app.conf")
    assert not permission.covers("/")


def test_the_annotated_example_parses() -> None:
    parsed = parse(EXAMPLE.read_text())
    assert parsed.file_exists_behavior == "OVERWRITE"
    assert [mapping.destination for mapping in parsed.files] == [
        "/opt/example/app",
        "/etc/example",
        "/opt/example/scripts",
    ]
    assert [permission.object for permission in parsed.permissions] == [
        "/opt/example/app",
        "/opt/example/scripts",
        "/etc/example/example.conf",
    ]
    assert parsed.permissions[0].mode == Mode("0750")
    assert [script.location for script in parsed.scripts_for("AfterInstall")] == [
        "scripts/configure.sh"
    ]
    assert parsed.scripts_for("AfterInstall")[0].runas == "nobody"
    assert parsed.scripts_for("BeforeAllowTraffic") == []


@pytest.mark.parametrize("location", ["../outside.sh", "scripts/../../x.sh", "/bin/true"])
def test_hook_location_must_stay_inside_the_bundle(location: str) -> None:
    text = f"version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: {location}\n"
    with pytest.raises(AppSpecError, match="must stay inside the bundle"):
        parse(text)
