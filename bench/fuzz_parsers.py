"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser the network reaches.

    python bench/fuzz_parsers.py --smoke              # a few thousand inputs each, seconds
    nice python bench/fuzz_parsers.py --runs 1000000  # a million inputs per parser
    python bench/fuzz_parsers.py --parser sip --runs 200000

Not part of CI (too long). Each parser runs in its own child process (libFuzzer runs once per
process) on one core; the parent prints inputs, inputs/s and crashes per parser and exits 1 if
any parser crashed. A crash input is saved under --artifacts, next to each parser's corpus
(kept between runs). Without atheris it falls back to a plain random-mutation loop over the
same seeds (same targets, same verdict, no coverage).
Targets and seeds: bench/fuzz_targets.py.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARSERS = ["http_body", "data_enc", "sip", "sdp", "rtp", "rtcp", "ng_reply", "ng_command"]


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_child(name: str, runs: int, artifacts: Path) -> None:
    """In the child: fuzz one parser until ``runs`` inputs, then exit (non-zero on a crash)."""
    sys.path.insert(0, str(ROOT / "bench"))
    if _atheris_available():
        import atheris

        with atheris.instrument_imports(include=["lwork"]):
            from fuzz_targets import TARGETS
        target = TARGETS[name]
        # Kept between runs: a later run starts from what earlier ones found.
        corpus = artifacts / f"corpus-{name}"
        corpus.mkdir(exist_ok=True)
        for i, seed in enumerate(target.seeds):
            (corpus / f"seed{i}").write_bytes(seed)
        atheris.Setup(
            [sys.argv[0], f"-runs={runs}", "-max_len=4096", "-print_final_stats=1",
             f"-artifact_prefix={artifacts}/{name}-", str(corpus)],
            target.run,
        )  # fmt: skip
        atheris.Fuzz()
        return
    from fuzz_targets import TARGETS

    _mutation_loop(name, TARGETS[name].run, TARGETS[name].seeds, runs, artifacts)


def _mutation_loop(name: str, run: object, seeds: list[bytes], runs: int, artifacts: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    started = time.monotonic()
    assert callable(run)
    for _ in range(runs):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            position = rng.randint(0, len(data))
            action = rng.randrange(4)
            if action == 0 or position == len(data):
                data[position:position] = bytes([rng.randrange(256)])
            elif action == 1:
                data[position] = rng.randrange(256)
            elif action == 2:
                del data[position : position + rng.randint(1, 16)]
            else:
                other = rng.choice(seeds)
                cut = rng.randint(0, len(other))
                data[position:] = other[cut:]
        try:
            run(bytes(data))
        except BaseException:
            (artifacts / f"{name}-crash").write_bytes(bytes(data))
            raise
    elapsed = time.monotonic() - started
    print(f"stat::number_of_executed_units: {runs}", file=sys.stderr)
    print(f"stat::average_exec_per_sec: {runs / elapsed:.0f}", file=sys.stderr)


def fuzz(name: str, runs: int, artifacts: Path) -> tuple[bool, int, float, float, str]:
    """Run one parser in a child; (crashed, inputs, seconds, inputs/s, tail of its output)."""
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, __file__, "--child", name, "--runs", str(runs),
         "--artifacts", str(artifacts)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = child.stdout + child.stderr
    units = re.search(r"stat::number_of_executed_units: (\d+)", output)
    done = int(units.group(1)) if units else 0
    return child.returncode != 0, done, elapsed, done / elapsed, output[-3000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parser", choices=PARSERS, action="append")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="3,000 inputs per parser")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "var" / "fuzz")
    parser.add_argument("--child", choices=PARSERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.artifacts.mkdir(parents=True, exist_ok=True)
    if args.child:
        run_child(args.child, args.runs, args.artifacts)
        return 0
    runs = 3000 if args.smoke else args.runs
    engine = "atheris" if _atheris_available() else "random mutation (atheris not installed)"
    print(f"{engine}, {runs} inputs per parser")
    crashed = []
    for name in args.parser or PARSERS:
        failed, done, elapsed, rate, tail = fuzz(name, runs, args.artifacts)
        verdict = "CRASH" if failed else "ok"
        print(f"{name:11} {verdict:5} {done:>9} inputs {elapsed:7.1f} s {rate:8.0f}/s", flush=True)
        if failed:
            crashed.append(name)
            print(tail)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
