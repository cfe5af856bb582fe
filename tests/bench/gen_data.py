#!/usr/bin/env python3
"""Deterministic data sets for the benchmarks (tests/bench/peers.sh).

    gen_data.py small DIR SEED N_FILES N_DIRS   N files of 200 B - 8 KiB spread over N_DIRS folders
    gen_data.py big   DIR SEED N_FILES SIZE      N files of SIZE bytes each
    gen_data.py touch DIR SEED PERCENT           rewrites PERCENT % of the regular files under DIR
                                                 (same size, new bytes, mtime + 1 s)

Contents are pseudo-random bytes from random.Random(SEED), so they neither
compress nor deduplicate (restic would otherwise be flattered), and the same
seed gives the same tree, byte for byte, on every machine.
"""
import os
import random
import sys


def small(root, seed, n_files, n_dirs):
    r = random.Random(seed)
    dirs = []
    for d in range(n_dirs):
        # two levels, like an app's files/ tree: 10-ish top folders with sub-folders
        p = os.path.join(root, "d%02d" % (d % 10), "s%04d" % d)
        os.makedirs(p, exist_ok=True)
        dirs.append(p)
    for i in range(n_files):
        size = r.randint(200, 8192)
        with open(os.path.join(dirs[i % n_dirs], "f%06d.dat" % i), "wb") as f:
            f.write(r.randbytes(size))


def big(root, seed, n_files, size):
    r = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    chunk = 4 << 20
    for i in range(n_files):
        with open(os.path.join(root, "big%02d.bin" % i), "wb") as f:
            left = size
            while left > 0:
                n = min(chunk, left)
                f.write(r.randbytes(n))
                left -= n


def touch(root, seed, percent):
    r = random.Random(seed)
    files = []
    for d, _, names in os.walk(root):
        for n in names:
            files.append(os.path.join(d, n))
    files.sort()
    k = max(1, len(files) * percent // 100)
    for p in r.sample(files, k):
        st = os.stat(p)
        with open(p, "r+b") as f:
            f.write(r.randbytes(min(st.st_size, 4096)))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "small" and len(a) == 4:
        small(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "big" and len(a) == 4:
        big(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "touch" and len(a) == 3:
        touch(a[0], int(a[1]), int(a[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
