"""Where the API's CPU goes: ``make profile``.

Runs the upload benchmark (uploads of generated scans from 8 clients) and the API benchmark (the
communes' metadata mix) with a sampling profiler (py-spy) attached to the API process, and writes into
``loadtests/reports/profile-<time>/`` a flame graph of each (``upload.svg``, ``metadata.svg``, open them
in a browser) and their collapsed stacks (``*.txt``). It then prints, for each, the functions the
samples were in (self time) and the warehouse's own functions by the time under them (total time), as
shares of the samples. ``python -m loadtests.profile --summarize DIR`` prints that again for an earlier
folder.

py-spy reads the process's memory from outside (``--nonblocking``: the API is not paused to sample),
so it needs the right to trace it: root, or ``kernel.yama.ptrace_scope`` 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OWN = ("warehouse/", "storage/", "workers/")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Frames that contain everything beneath them (the server's loop, the framework's dispatch).
_CARRIERS = ("warehouse/app.py", "warehouse/api/deps.py")


def _py_spy() -> str:
    found = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: `make install-dev` installs it")
    return found


@contextmanager
def sampling(pid: int, prefix: Path | None, rate: int = 200) -> Iterator[None]:
    """Record the process and its children for the length of the block: ``prefix.svg`` (a flame graph)
    and ``prefix.txt`` (collapsed stacks). Does nothing without a prefix."""
    if prefix is None:
        yield
        return
    prefix.parent.mkdir(parents=True, exist_ok=True)
    spy = _py_spy()
    common = ["record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", str(rate)]
    recorders = [
        subprocess.Popen(
            [spy, *common, "--format", fmt, "--output", str(prefix.with_suffix(suffix))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".txt"))
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            with contextlib.suppress(ProcessLookupError):
                recorder.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        for recorder in recorders:
            try:
                _, err = recorder.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                err = b""
            if recorder.returncode not in (0, -signal.SIGINT):
                print(f"  profiler: {err.decode(errors='replace')[-500:]}", file=sys.stderr)


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) of each frame of a collapsed stack, outermost first (the process frame dropped)."""
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame)
        if m and m["file"] and (m["line"] or m["file"].endswith(".py")):
            out.append((m["function"], _short(m["file"])))
    return out


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    for own in OWN:
        if own in path:
            return own + path.split(own, 1)[1]
    return path


def summarize(collapsed: Path, top: int = 12) -> list[str]:
    """The heaviest functions of a recording: by self time, and the warehouse's own by total time."""
    own_total: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        if not frames:
            continue
        samples += n
        function, file = frames[-1]
        self_time[f"{function} ({file})"] += n
        seen = set()
        for function, file in frames:
            name = f"{function} ({file})"
            if file.startswith(OWN) and not file.startswith(_CARRIERS) and name not in seen:
                own_total[name] += n
                seen.add(name)
    if not samples:
        return [f"{collapsed.name}: no samples"]
    lines = [f"{collapsed.stem}: {samples} samples", "  self time:"]
    lines += [f"    {100 * n / samples:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("  the warehouse's own functions, total time (with what they call):")
    lines += [f"    {100 * n / samples:5.1f}%  {name}" for name, n in own_total.most_common(top)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summarize", type=Path, help="print the summary of an earlier profile folder")
    args = parser.parse_args()
    folder = args.summarize
    if folder is None:
        _py_spy()
        folder = HERE / "reports" / f"profile-{datetime.now():%Y%m%d-%H%M%S}"
        folder.mkdir(parents=True)
        for phase in ("bench_upload", "bench_api"):
            print(f"== {phase} (profiled) ==", flush=True)
            subprocess.run([sys.executable, "-m", f"loadtests.{phase}", "--profile", str(folder)], check=True)
    for collapsed in sorted(folder.glob("*.txt")):
        print("\n".join(summarize(collapsed)))
    print(f"flame graphs: {', '.join(str(p) for p in sorted(folder.glob('*.svg')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
