"""The nginx stub backend and its proxy hop, in a private prefix directory.

nginx answers fixed JSON from memory, so it stays far below the cost of any
Python target; one worker by default leaves the second core to the target.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Supervisor, free_port, run_bounded

TEMPLATE = Path(__file__).parent / "nginx" / "stub.conf.template"


@dataclass(frozen=True)
class Stub:
    url: str
    proxy_url: str
    process: subprocess.Popen[bytes]


def render(prefix: Path, workers: int, stub_port: int, proxy_port: int) -> Path:
    """Fill the template and write nginx.conf into the prefix directory."""
    text = TEMPLATE.read_text()
    for key, value in {
        "@PREFIX@": str(prefix),
        "@WORKERS@": str(workers),
        "@STUB_PORT@": str(stub_port),
        "@PROXY_PORT@": str(proxy_port),
    }.items():
        text = text.replace(key, value)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def start_stub(sup: Supervisor, nginx: Path, prefix: Path, workers: int) -> Stub:
    prefix.mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)  # nginx workers drop to `nobody` when started as root
    stub_port, proxy_port = free_port(), free_port()
    conf = render(prefix, workers, stub_port, proxy_port)
    error_log = str(prefix / "error.log")
    base = [str(nginx), "-p", str(prefix), "-c", str(conf), "-e", error_log]
    run_bounded([*base, "-t", "-q"], timeout=30)
    process = sup.start("nginx", base)
    stub = Stub(f"http://127.0.0.1:{stub_port}", f"http://127.0.0.1:{proxy_port}", process)
    sup.wait_ready("nginx stub", process, f"{stub.url}/health", timeout=20)
    sup.wait_ready("nginx proxy", process, f"{stub.proxy_url}/health", timeout=20)
    return stub


def nginx_version(nginx: Path) -> str:
    result = subprocess.run(
        [str(nginx), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    return (result.stderr or result.stdout).strip().removeprefix("nginx version: ")
