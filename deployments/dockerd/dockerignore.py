"""A .dockerignore's patterns, applied as the docker CLI applies them before it sends a build
context (docker-py's PatternMatcher: `**`, `!` exceptions, patterns from the context's root).
dockerd applies none of them to a context sent through its API (dockerfile/build_context.py)."""
import posixpath
from typing import Callable

from docker.utils.build import PatternMatcher


def excluder(dockerignore: str | None) -> Callable[[str], bool] | None:
    """Whether a path of the context is left out; None if nothing is: a line each, `#` lines
    and blank ones skipped."""
    patterns = [_cleaned(line.strip()) for line in (dockerignore or "").splitlines()
                if line.strip() and not line.strip().startswith("#")]
    return PatternMatcher(patterns).matches if patterns else None


def _cleaned(pattern: str) -> str:
    """A path cleaned and taken from the context's root; an exception (`!`) stays one."""
    negated = pattern.startswith("!")
    path = posixpath.normpath(pattern[1:] if negated else pattern).lstrip("/")
    return f"!{path}" if negated else path
