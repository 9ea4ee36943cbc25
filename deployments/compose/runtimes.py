"""`runtime:` in a compose file: the container runtime dockerd runs a service's containers with.
A runtime decides how much a container is confined, so only those the administrator lists
(SWITCHYARD_ALLOWED_RUNTIMES; by default the WebAssembly shims, which sandbox more than runc)
may be named; any other is refused with the list."""


def runtime_problem(where: str, runtime, allowed: tuple[str, ...]) -> str:
    """Why `runtime` cannot be used, or "" when it can (or none is named)."""
    if runtime is None or runtime in allowed:
        return ""
    listed = ", ".join(allowed) if allowed else "none"
    return (f"{where}.runtime: {runtime} not supported: a runtime decides how far a container is confined, and "
            f"only those the administrator allows run here (SWITCHYARD_ALLOWED_RUNTIMES: {listed})")
