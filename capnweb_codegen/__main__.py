"""``python -m capnweb_codegen TARGET... --out DIR [--lang py|ts] [--check]``.

TARGET is ``module:Interface`` or a module (all the interfaces it defines). One file is written
per module, named after it (``examples.typed.api`` -> ``examples_typed_api.py`` or ``.d.ts``).
With ``--check`` nothing is written: the command fails (exit 1) if a file is missing or differs,
printing the stale files, a diff and the command that regenerates them.

``python -m capnweb_codegen --from-ts FILE.ts[,FILE.d.ts...] [--interface Api[,...]] --out DIR
[--module NAME] [--check]`` reads TypeScript instead and writes two files: the Python
Protocol module ``NAME`` (``DIR/<last part of NAME>.py``) and its stubs (``..._stubs.py``).
NAME defaults to DIR as a dotted path from the current directory plus the first file's name
(``--out stubs`` and ``api.ts``: ``stubs.api``).
"""

from __future__ import annotations

import argparse
import difflib
import keyword
import os
import shlex
import sys
from pathlib import Path

from . import DEFAULT_LINE_LENGTH, CodegenError, from_typescript, generate

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m capnweb_codegen",
        description="Generate typed client stubs from capnweb interfaces (typing.Protocol), "
        "or from TypeScript with --from-ts.",
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="module:Interface or module")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--lang", choices=("py", "ts"), default="py", help="Python stubs or TypeScript .d.ts"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if the files are not up to date"
    )
    parser.add_argument(
        "--line-length", type=int, default=DEFAULT_LINE_LENGTH, help="for ruff format (Python)"
    )
    parser.add_argument(
        "--from-ts",
        action="append",
        metavar="FILE.ts[,FILE.d.ts...]",
        help="read TypeScript (with the TypeScript compiler, on Node.js) instead of Python",
    )
    parser.add_argument(
        "--interface",
        action="append",
        metavar="NAME[,NAME...]",
        help="with --from-ts: the interfaces, RpcTarget classes or type aliases to describe "
        "(default: every exported RpcTarget class and interface extending RpcTarget)",
    )
    parser.add_argument(
        "--module",
        help="with --from-ts: the dotted name of the Python module written (default: OUT as a "
        "dotted path from the current directory, plus the first file's name)",
    )
    return parser


def _split(values: list[str] | None) -> list[str]:
    return [v for value in values or [] for v in value.split(",") if v]


def default_module(out: Path, file: str) -> str:
    """``stubs`` + ``api.ts`` -> ``stubs.api``: the output directory as a dotted path from the
    current directory (when it is one), then the TypeScript file's name."""
    from ._from_ts import module_stem

    stem = module_stem(file)
    try:
        parts = out.resolve().relative_to(Path.cwd().resolve()).parts
    except ValueError:
        return stem
    if all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        return ".".join([*parts, stem])
    return stem


def _generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, str]:
    if not args.from_ts:
        if not args.targets:
            parser.error("give a TARGET (module:Interface or module), or --from-ts FILE.ts")
        if args.interface or args.module:
            parser.error("--interface and --module go with --from-ts")
        return generate(args.targets, args.lang, line_length=args.line_length)
    if args.targets:
        parser.error("--from-ts reads TypeScript files: give no Python TARGET")
    if args.lang != "py":
        parser.error("--from-ts writes Python (--lang py)")
    files = _split(args.from_ts)
    if not files:
        parser.error("--from-ts needs a file")
    module = args.module or default_module(args.out, files[0])
    return from_typescript(
        files, _split(args.interface), module=module, line_length=args.line_length
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(args_list)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # targets are named as from the current directory
    try:
        files = _generate(args, parser)
    except CodegenError as e:
        print(f"capnweb_codegen: error: {e}", file=sys.stderr)
        return 2
    out: Path = args.out
    if args.check:
        return _check(files, out, args_list)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        if _read(path) == text:
            print(f"unchanged {path}")
            continue
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {path}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _check(files: dict[str, str], out: Path, argv: list[str]) -> int:
    stale = []
    for name, text in files.items():
        path = out / name
        current = _read(path)
        if current == text:
            continue
        stale.append(path)
        if current is None:
            print(f"missing: {path}")
            continue
        print(f"stale: {path}")
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"{path} (on disk)",
            f"{path} (generated)",
        )
        sys.stdout.writelines(diff)
    if not stale:
        print(f"up to date: {', '.join(str(out / n) for n in files)}")
        return 0
    fix = ["python", "-m", "capnweb_codegen", *(a for a in argv if a != "--check")]
    print(f"{len(stale)} file(s) out of date; regenerate with:\n  {shlex.join(fix)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
