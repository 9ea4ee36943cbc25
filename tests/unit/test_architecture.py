"""The shape of the code, checked from its source (docs/architecture.md draws it): no import
cycle, HAProxy an adapter that knows neither the database nor the engine, Docker out of the web
process, and modules and functions small enough to read in one go."""
import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("panel", "deployments")  # the application's code; tests and bench are read for sizes only
SIZED = ("panel", "deployments", "tests", "bench", "compose", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40


def _python_files(tops: tuple[str, ...]) -> list[Path]:
    return sorted(path for top in tops for path in (ROOT / top).rglob("*.py")
                  if "migrations" not in path.parts and ".venv" not in path.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The project modules one import statement names (a `from X import Y` names X.Y if that is a
    module, else X); lazy imports inside functions count, as they close cycles all the same."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            base = ".".join(anchor + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    else:
        return []
    found = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in _python_files(PACKAGES)}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {target for node in ast.walk(tree) for target in _imported(node, module, is_package, known)
                         if target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_haproxy_is_an_adapter_that_imports_neither_the_models_nor_the_engine():
    graph = import_graph()
    for module in (name for name in graph if name.startswith("deployments.haproxy")):
        reached = reachable(graph, module)
        assert not any(name == "deployments.models" or name.startswith("deployments.models.") for name in reached), module
        assert not any(name.startswith("deployments.engine") for name in reached), (module, sorted(reached))


def test_the_web_process_does_not_import_docker():
    """What the web process loads (Django set up, the ASGI application, every URL's view), in a
    fresh interpreter, leaves the Docker SDK out: the web side reads the database and enqueues."""
    script = ("import sys, django; django.setup()\n"
              "import panel.asgi\n"
              "from django.urls import get_resolver\n"
              "def views(patterns):\n"
              "    for pattern in patterns:\n"
              "        yield from views(pattern.url_patterns) if hasattr(pattern, 'url_patterns') else [pattern]\n"
              "list(views(get_resolver().url_patterns))\n"
              "print(sorted(name for name in sys.modules if name == 'docker' or name.startswith('docker.')))\n")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"}
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip().splitlines()[-1] == "[]"


def _modules_over() -> set[str]:
    return {str(path.relative_to(ROOT)) for path in _python_files(SIZED)
            if len(path.read_text().splitlines()) > MAX_MODULE_LINES}


def _functions_over() -> set[str]:
    over = set()
    for path in _python_files(SIZED):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                over.add(f"{path.relative_to(ROOT)}:{node.name}")
    return over


def test_no_module_over_400_lines():
    assert _modules_over() == set(), "split these modules"


def test_no_function_over_40_lines():
    assert _functions_over() == set(), "split these functions"
