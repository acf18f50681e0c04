"""Find nginx and wrk, installing the Debian packages when they are missing.

The benchmark must run on a fresh machine, so it never assumes the tools are
there; it installs them with apt-get (as root, or through sudo) and only runs
`apt-get update` when the first install attempt fails on stale package lists.
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
    """Paths of nginx and wrk, installed first if needed."""
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
