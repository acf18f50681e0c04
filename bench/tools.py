"""The outside tools the benchmark drives, nginx and wrk: found, installed, versioned.

The benchmark must run on a fresh machine, so it never assumes the tools are
there; it installs them with apt-get (as root, or through sudo) and only runs
`apt-get update` when the first install attempt fails on stale package lists.
Their versions go into every result, next to the figures they produced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"]
)
PACKAGES = {"nginx": "nginx", "wrk": "wrk"}
APT_TIMEOUT_S = 600


class ToolMissing(RuntimeError):
    """A tool is absent and could not be installed; the message says what to run."""


def which(tool: str) -> Path | None:
    """The tool's path, searching the sbin directories too (nginx lives there), or None."""
    found = shutil.which(tool, path=SEARCH_PATH)
    return Path(found) if found else None


def _apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() != 0:
        if which("sudo") is None:
            raise ToolMissing(f"not root and no sudo: run `apt-get {' '.join(args)}` as root")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        [*prefix, "apt-get", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
    )


def _install(packages: list[str]) -> None:
    """apt-get install; on failure refresh the lists once and try again."""
    args = ["install", "-y", "-q", "--no-install-recommends", *packages]
    result = _apt(args)
    if result.returncode != 0:
        _apt(["update", "-q"])
        result = _apt(args)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ToolMissing(f"apt-get install {' '.join(packages)} failed:\n{tail}")


def ensure_tools() -> dict[str, Path]:
    """Paths of nginx and wrk (keys "nginx", "wrk"), installed first if needed.

    Raises ToolMissing when a tool cannot be installed.
    """
    missing = [PACKAGES[tool] for tool in PACKAGES if which(tool) is None]
    if missing:
        print(f"bench: installing {' '.join(missing)} with apt-get", flush=True)
        _install(missing)
    paths: dict[str, Path] = {}
    for tool in PACKAGES:
        path = which(tool)
        if path is None:
            raise ToolMissing(f"{tool} is still missing after installing {PACKAGES[tool]}")
        paths[tool] = path
    return paths


def nginx_version(nginx: Path) -> str:
    """nginx's own version string, e.g. "nginx/1.22.1"."""
    result = subprocess.run(
        [str(nginx), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    return (result.stderr or result.stdout).strip().removeprefix("nginx version: ")


def wrk_version(wrk: Path) -> str:
    """The first line of `wrk -v` without its copyright notice ("" when it prints nothing)."""
    result = subprocess.run(
        [str(wrk), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    first = result.stdout.splitlines()[0] if result.stdout else ""
    return first.split(" Copyright")[0].strip()
