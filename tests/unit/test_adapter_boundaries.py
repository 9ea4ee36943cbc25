"""The Docker adapter's boundary: deployments/dockerd is the only package that imports the docker
SDK, and what the models and the build check take from it (dockerd/values.py) loads without it."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "deployments" / "dockerd"


def _imports_docker(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        if any(name == "docker" or name.startswith("docker.") for name in names):
            return True
    return False


def test_only_the_docker_adapter_imports_the_docker_sdk():
    sources = [path for folder in ("deployments", "panel") for path in (ROOT / folder).rglob("*.py")
               if "migrations" not in path.parts]
    importers = {path.relative_to(ROOT).as_posix() for path in sources if _imports_docker(path)}
    assert importers, "the scan found no import of docker at all: it no longer reads the tree"
    assert {path for path in importers if not path.startswith("deployments/dockerd/")} == set()


def test_the_adapters_values_and_the_dockerfile_check_load_without_the_docker_sdk():
    probe = ("import sys; import deployments.dockerd.values, deployments.dockerfile.check; "
             "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
