"""``shipyard completion bash|zsh``: a completion script built from the parser itself,
so it never drifts from the commands and flags (no dependency beyond argparse)."""

from __future__ import annotations

import argparse
import shlex

from shipyard.cli.client import EXIT_OK

BASH_TEMPLATE = """\
# shipyard completion for bash (source <(shipyard completion bash))
_shipyard() {
    local cur path word
    cur="${COMP_WORDS[COMP_CWORD]}"
    path=""
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case "$word" in
            -*) ;;
            *) [[ -n "$(_shipyard_words "$path $word")" ]] && path="$path $word" ;;
        esac
    done
    COMPREPLY=( $(compgen -W "$(_shipyard_words "$path")" -- "$cur") )
}
_shipyard_words() {
    case "$1" in
%s
    esac
}
complete -F _shipyard shipyard
"""
ZSH_PREFIX = "# shipyard completion for zsh (source <(shipyard completion zsh))\n"
ZSH_PREFIX += "autoload -U +X bashcompinit && bashcompinit\n"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _cases(parser: argparse.ArgumentParser, path: str, out: list[str]) -> None:
    children = _subparsers(parser)
    flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    words = sorted(children) + sorted(flags)
    out.append(f"        {shlex.quote(path)}) echo {shlex.quote(' '.join(words))} ;;")
    for name, child in children.items():
        _cases(child, f"{path} {name}", out)


def script(root: argparse.ArgumentParser, shell: str) -> str:
    cases: list[str] = []
    _cases(root, "", cases)
    body = BASH_TEMPLATE % "\n".join(cases)
    return ZSH_PREFIX + body if shell == "zsh" else body


def print_script(root: argparse.ArgumentParser, shell: str) -> int:
    print(script(root, shell), end="")
    return EXIT_OK
