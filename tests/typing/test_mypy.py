"""mypy --strict on client code using generated stubs (the modules of ``cases/``).

Positive modules must pass with every ``assert_type`` holding; in negative modules, the line
after each ``# E: message`` comment must fail with exactly that message, and no other line may.
mypy runs once (through ``mypy.api``) over every case, the stubs generated for ``forms.py`` and
those generated for the awkward interface of ``tests/codegen_sample.py``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from mypy import api as mypy_api

from capnweb_codegen import generate

pytestmark = pytest.mark.timeout(300)

CASES = Path(__file__).resolve().parent / "cases"
REPO = CASES.parents[2]
POSITIVE = [
    "typed_client.py",
    "forms.py",
    "forms_client.py",
    "forms_stubs.py",
    "codegen_sample.py",
    "codegen_sample_stubs.py",
    "serving.py",
    "validated_client.py",
    "streams_client.py",
]
GENERATED = ["forms_stubs.py", "codegen_sample.py", "codegen_sample_stubs.py"]
NEGATIVE = [
    "wrong_uses.py",
    "forms_wrong.py",
    "serving_wrong.py",
    "validated_wrong.py",
    "streams_wrong.py",
]
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")

Errors = dict[str, dict[int, list[str]]]


def generate_stubs(module: str, directory: Path, out: Path) -> None:
    """Generates the stubs of ``directory/module.py`` as ``out/<module>_stubs.py``."""
    sys.path.insert(0, str(directory))
    try:
        text = generate([module])[f"{module}.py"]
    finally:
        sys.path.remove(str(directory))
    (out / f"{module}_stubs.py").write_text(text)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the stubs of ``cases/forms.py`` and of ``tests/codegen_sample.py``
    (next to a copy of it: the stubs import it)."""
    out = tmp_path_factory.mktemp("generated")
    generate_stubs("forms", CASES, out)
    sys.modules.pop("forms", None)
    generate_stubs("codegen_sample", REPO / "tests", out)
    shutil.copy(REPO / "tests" / "codegen_sample.py", out / "codegen_sample.py")
    return out


@pytest.fixture(scope="module")
def mypy_errors(generated: Path) -> Errors:
    """Error messages by file name and line, from one mypy run over every case."""
    files = [
        str((generated if name in GENERATED else CASES) / name) for name in POSITIVE + NEGATIVE
    ]
    args = [
        "--strict",
        "--no-error-summary",
        "--cache-dir",
        str(REPO / ".mypy_cache" / "typing-tests"),
        *files,
    ]
    with contextlib.chdir(REPO):  # the project's configuration; `stubs` and `examples`
        stdout, stderr, status = mypy_api.run(args)
    assert stderr == "" and status in (0, 1), stderr + stdout
    errors: Errors = defaultdict(lambda: defaultdict(list))
    for line in stdout.splitlines():
        match = ERROR.match(line)
        if match:
            name = Path(match["path"]).name
            errors[name][int(match["line"])].append(match["message"])
    assert set(errors) <= set(POSITIVE + NEGATIVE), stdout
    return errors


def expected_errors(path: Path) -> dict[int, list[str]]:
    """``# E: message`` comments, keyed by the number of the line after each."""
    expected: dict[int, list[str]] = defaultdict(list)
    pending: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("# E: "):
            pending.append(stripped.removeprefix("# E: "))
        elif pending and stripped:
            expected[number].extend(pending)
            pending = []
    return expected


@pytest.mark.parametrize("name", POSITIVE)
def test_right_uses_pass_mypy_strict(name: str, mypy_errors: Errors) -> None:
    assert dict(mypy_errors.get(name, {})) == {}


@pytest.mark.parametrize("name", NEGATIVE)
def test_wrong_uses_fail_with_the_expected_messages(name: str, mypy_errors: Errors) -> None:
    expected = expected_errors(CASES / name)
    assert expected, "a negative case without expectations"
    assert dict(mypy_errors[name]) == dict(expected)


def test_the_three_declaration_forms_give_the_same_stub(generated: Path) -> None:
    """``async def m() -> T``, ``def m() -> Awaitable[T]`` and ``def m() -> T`` describe the
    same remote method: the generated stub methods are identical."""
    text = (generated / "forms_stubs.py").read_text()
    bodies = []
    for name in ("AsyncFormStub", "AwaitableFormStub", "SyncFormStub"):
        start = text.index(f"class {name}(")
        method = text.index("    def add(", start)
        bodies.append(text[method : text.index("\n\n", method)])
    assert bodies[0] == bodies[1] == bodies[2]
    assert "-> _capnweb_typed.TypedPromise[int]:" in bodies[0]
