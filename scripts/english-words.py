#!/usr/bin/env python3
"""english-words.py: how English is the text a trained GPT generates?

    scripts/english-words.py [--beluga BIN] [--seeds N] [--tokens N]
                             [--temperature T]... RUN_DIR...

For each run directory (beluga train --out) and temperature it generates N
continuations of "The " (`beluga generate`, seeds 1..N) and prints the
share of their words (letters and apostrophes, three letters or more) that
are in the system dictionary (/usr/share/dict/words: Debian's wamerican),
and the same share for the last 64 KiB of the fortunes corpus, the
validation text (Debian's fortunes), as the ceiling.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

DICT = "/usr/share/dict/words"
FORTUNES = "/usr/share/games/fortunes"


def share(text, words):
    toks = [t.strip("'").lower() for t in re.findall(r"[A-Za-z']+", text)]
    toks = [t for t in toks if len(t) >= 3]
    return sum(t in words for t in toks), len(toks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--beluga", default="beluga")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--temperature", type=float, action="append", help="repeatable (default 0.6 and 1.0)")
    a = ap.parse_args()
    a.temperature = a.temperature or [0.6, 1.0]
    try:
        words = {w.strip().lower() for w in open(DICT, encoding="utf-8", errors="ignore")}
    except OSError as e:
        sys.exit("no dictionary (%s): apt-get install wamerican" % e)
    print("%-40s %5s %9s" % ("run", "T", "in dict"))
    for run in a.runs:
        for t in a.temperature:
            ok = n = 0
            for seed in range(1, a.seeds + 1):
                out = subprocess.run([a.beluga, "generate", "--run", run, "--prompt", "The ", "--tokens", str(a.tokens),
                                      "--seed", str(seed), "--temperature", str(t)], capture_output=True, check=True).stdout
                k, m = share(out.decode("utf-8", "ignore"), words)
                ok, n = ok + k, n + m
            print("%-40s %5.2f %8.1f%%  (%d of %d words)" % (run, t, 100 * ok / max(n, 1), ok, n))
    # SPEC.md §20.3: regular files whose names hold no ".", in byte order.
    files = sorted((f for f in glob.glob(FORTUNES + "/*")
                    if "." not in os.path.basename(f) and os.path.isfile(f) and not os.path.islink(f)),
                   key=lambda f: os.path.basename(f).encode())
    if files:
        tail = b"".join(open(f, "rb").read() for f in files)[-65536:]
        k, m = share(tail.decode("utf-8", "ignore"), words)
        print("%-40s %5s %8.1f%%  (%d of %d words)" % ("fortunes, last 64 KiB (the ceiling)", "-", 100 * k / m, k, m))


if __name__ == "__main__":
    main()
