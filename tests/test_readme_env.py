"""The README's configuration tables name every environment variable the code reads, and only
those, so a new variable cannot ship undocumented and a removed one cannot linger there.

"Reads" means, in Python: the typed readers of `config/env.py` (`env_str("X")`, ...;
outside tests/, which call them with made-up names to test them), `os.environ.get("X")`,
`os.getenv("X")`, `os.environ["X"]` and `"X" in os.environ`, with the name written literally
or as a module-level string constant; `os.environ.setdefault` is not a read (it hands Django
or a library a default for a variable of its own). In the shell scripts of `bin/` and `.ci/`:
`${X:-default}`, or `$X` when the script did not set X itself.
"""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_SOURCES = [
    "manage.py",
    "config",
    "contacts",
    "templates",
    "campaigns",
    "marketing",
    "integrations",
    "tests",
]
SHELL_FOLDERS = ["bin", ".ci"]
# The operating system's own variables: POSIX documents them, not Herald's README.
SYSTEM_VARIABLES = {"HOME", "PATH", "PWD", "TMPDIR", "USER"}
README_SECTION = "## Configuration (environment variables)"

_NAME = r"[A-Z_][A-Z0-9_]*"
_SHELL_ASSIGNED = re.compile(rf"(?:^|[\s;])(?:export\s+|local\s+|readonly\s+)?({_NAME})=")
_SHELL_DEFAULTED = re.compile(rf"\$\{{({_NAME}):?[-=]")
_SHELL_USED = re.compile(rf"\$\{{?({_NAME})")


def _env_readers() -> set[str]:
    """The public functions of config/env.py: each reads the variable named by its first
    argument; but env_reference, which reads a variable an operator named in stored settings
    (`env:NAME`), never one of Herald's own."""
    tree = ast.parse((ROOT / "config" / "env.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and not node.name.startswith("_")
        and node.name != "env_reference"
    }


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _named_key(node: ast.AST, readers: set[str]) -> ast.expr | None:
    """The expression naming the variable when `node` reads one, else None."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("get", "pop"):
            return node.args[0] if _is_os_environ(func.value) else None
        if isinstance(func, ast.Attribute) and func.attr == "getenv":
            is_os = isinstance(func.value, ast.Name) and func.value.id == "os"
            return node.args[0] if is_os else None
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return node.args[0] if name in readers else None
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return node.slice if _is_os_environ(node.value) else None
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In | ast.NotIn)
        and _is_os_environ(node.comparators[0])
    ):
        return node.left
    return None


def _python_files() -> list[Path]:
    files: list[Path] = []
    for source in PYTHON_SOURCES:
        path = ROOT / source
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def python_reads() -> tuple[dict[str, set[str]], list[str]]:
    """{variable: {file:line, ...}} for the Python code, and the reads whose name is not a
    literal (only config/env.py's own readers may do that)."""
    settings_readers = _env_readers()
    reads: dict[str, set[str]] = defaultdict(set)
    unnamed: list[str] = []
    for path in _python_files():
        where = path.relative_to(ROOT).as_posix()
        readers = set() if where.startswith("tests/") else settings_readers
        tree = ast.parse(path.read_text(), filename=where)
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            key = _named_key(node, readers)
            if key is None:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                name = key.value
            elif isinstance(key, ast.Name) and key.id in constants:
                name = constants[key.id]
            else:
                if where != "config/env.py":
                    unnamed.append(f"{where}:{key.lineno}")
                continue
            reads[name].add(f"{where}:{key.lineno}")
    return reads, unnamed


def shell_reads() -> dict[str, set[str]]:
    reads: dict[str, set[str]] = defaultdict(set)
    for folder in SHELL_FOLDERS:
        for path in sorted((ROOT / folder).iterdir()):
            text = path.read_text()
            if not path.is_file() or not text.startswith("#!") or "sh" not in text.split("\n")[0]:
                continue
            where = path.relative_to(ROOT).as_posix()
            lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
            assigned = {name for line in lines for name in _SHELL_ASSIGNED.findall(line)}
            for number, line in enumerate(text.splitlines(), start=1):
                if line.lstrip().startswith("#"):
                    continue
                defaulted = set(_SHELL_DEFAULTED.findall(line))
                for name in set(_SHELL_USED.findall(line)):
                    if name in defaulted or name not in assigned:
                        reads[name].add(f"{where}:{number}")
    for name in SYSTEM_VARIABLES:
        reads.pop(name, None)
    return reads


def code_reads() -> dict[str, set[str]]:
    reads, _ = python_reads()
    for name, places in shell_reads().items():
        reads[name] |= places
    return reads


def readme_rows() -> dict[str, list[str]]:
    """{variable: [meaning, default]} from the tables of the README's configuration section."""
    text = (ROOT / "README.md").read_text()
    assert README_SECTION in text, f"the README has no {README_SECTION!r} section"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in ("variable", "") or set(cells[0]) <= set("-: "):
            continue  # the header row and the separator row
        names = re.findall(rf"`({_NAME})`", cells[0])
        assert names, f"a configuration row names no variable: {line}"
        for name in names:
            assert name not in rows, f"{name} has two rows in the README"
            rows[name] = cells[1:]
    return rows


def test_every_variable_the_code_reads_has_a_readme_row():
    documented = readme_rows()
    missing = {
        name: sorted(places) for name, places in code_reads().items() if name not in documented
    }
    assert not missing, (
        "environment variables read by the code but missing from the README's "
        f"configuration tables: {missing}"
    )


def test_every_readme_row_names_a_variable_the_code_reads():
    reads = code_reads()
    unread = sorted(name for name in readme_rows() if name not in reads)
    assert not unread, f"the README documents variables nothing reads: {unread}"


def test_every_readme_row_says_what_the_variable_does_and_its_default():
    for name, cells in readme_rows().items():
        assert len(cells) == 2, f"{name}: a row has three cells (variable, meaning, default)"
        assert all(cells), f"{name}: the meaning or the default is empty"


def test_variables_are_read_by_their_literal_names():
    """A name computed at run time would hide the variable from the two tests above."""
    _, unnamed = python_reads()
    assert not unnamed, f"environment reads whose variable name is not a literal: {unnamed}"


def test_the_collector_sees_each_kind_of_read():
    """Guards the tests above against a collector that silently finds nothing."""
    reads = code_reads()
    assert any(place.startswith("config/settings.py") for place in reads["DATABASE_URL"])
    assert any(place.startswith("bin/test") for place in reads["HERALD_TEST_PROCESSES"])
    assert any(place.startswith("tests/") for place in reads["HERALD_CHROMIUM"])
    assert "DJANGO_SETTINGS_MODULE" not in reads  # only ever set with setdefault
