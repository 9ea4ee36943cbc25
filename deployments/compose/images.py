"""A Compose service's `image:` when it has no `build`: the reference as written, its
`pull_policy` and its `platform`, read with every problem named by service and key.

The reference is only read here; whether the app may use it (registry, address, whose image)
is decided at deploy by the same rules as a Dockerfile's FROM (engine/phases/pull.py), and what
runs is pinned by digest then. A service with both `build` and `image` is built: the image name
is only Compose's tag for the result, and Switchyard tags its builds itself."""
import platform as host_platform
import re

# Compose's pull policies; the periodic ones pull when the image is missing (Switchyard keeps
# no schedule of pulls: each deploy decides), and the deploy log says so.
PULL_POLICIES = ("always", "missing", "never", "build", "if_not_present", "daily", "weekly")
EVERY = re.compile(r"^every_(\d+[smhdw])+$")
PLATFORM = re.compile(r"^linux/(amd64|arm64|arm|386|ppc64le|s390x|riscv64)(/v[5-8])?$")
WASM_PLATFORMS = ("wasi/wasm", "wasip1/wasm", "wasi/wasm32")  # run by a WebAssembly runtime (compose/runtimes.py)
REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._:/@\-\[\]]*$", re.IGNORECASE)
MAX_REFERENCE = 255


def host_platform_name() -> str:
    machine = host_platform.machine().lower()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def read_image(where: str, definition: dict, problems: list[str]) -> dict:
    """The ServiceSpec fields of `image`, `pull_policy` and `platform` (image empty for a built service)."""
    built = definition.get("build") is not None
    fields = {"pull_policy": _pull_policy(where, definition, built, problems),
              "platform": _platform(where, definition.get("platform"), problems)}
    if built:
        return fields
    image = definition.get("image")
    if image is None:
        problems.append(f"{where}: needs build or image: a service is built from the repository (build:) "
                        "or runs an image from a registry (image:)")
        return fields
    image = str(image)
    if len(image) > MAX_REFERENCE or not REFERENCE.match(image) or "//" in image:
        problems.append(f"{where}.image: {image[:80]!r} is not an image reference (such as postgres:16 "
                        "or ghcr.io/owner/name:tag)")
        return fields
    return {**fields, "image": image}


def _pull_policy(where: str, definition: dict, built: bool, problems: list[str]) -> str:
    policy = str(definition.get("pull_policy", "missing"))
    if policy not in PULL_POLICIES and not EVERY.match(policy):
        problems.append(f"{where}.pull_policy: {policy!r}: one of always, missing, never, build, "
                        "if_not_present, daily, weekly, every_<duration>")
        return "missing"
    if policy == "build" and not built:
        problems.append(f"{where}.pull_policy: build needs a build: section to build the image from")
    return "missing" if policy == "if_not_present" else policy


def _platform(where: str, value, problems: list[str]) -> str:
    if value is None:
        return ""
    value = str(value)
    if value != host_platform_name() and not PLATFORM.match(value) and value not in WASM_PLATFORMS:
        problems.append(f"{where}.platform: {value[:40]!r}: a Linux platform such as {host_platform_name()}, "
                        "or wasi/wasm for a WebAssembly runtime")
        return ""
    return value
