#!/usr/bin/env python3
"""expect_filter.py BUNDLE_JSON SNAPSHOT [--outside]

Filters a snapshot (lib.sh `snapshot` format: "path|type|mode|size|mtime"
lines and "sha256  ./path" lines, paths relative to a demo bundle's sandbox/,
which is mounted at "/") down to the entries the bundle's backup must hold,
computed independently of ohbackup from bundle.json's includes/excludes
(docs/FORMATS.md: fnmatch with FNM_LEADING_DIR on the path without its
leading '/', a trailing '/' meaning the whole tree, no FNM_PATHNAME so '*'
crosses '/'; empty includes = OpenHarmony's 13 default locations).

With --outside it prints instead the non-directory entries that are NOT
expected (used to check that a restore created nothing it should not).
"""
import fnmatch
import json
import re
import sys

HASH_LINE = re.compile(r"^[0-9a-f]{64}  \./(.*)$")

DEFAULT_INCLUDES = [
    "data/storage/el1/database/", "data/storage/el2/database/",
    "data/storage/el1/base/files/", "data/storage/el2/base/files/",
    "data/storage/el1/base/preferences/", "data/storage/el2/base/preferences/",
    "data/storage/el1/base/haps/*/database/", "data/storage/el2/base/haps/*/database/",
    "data/storage/el1/base/haps/*/files/", "data/storage/el2/base/haps/*/files/",
    "data/storage/el1/base/haps/*/preferences/", "data/storage/el2/base/haps/*/preferences/",
    "data/storage/el2/distributedfiles/",
]


def norm(glob):
    return glob.strip("/")


def matches(glob, path):
    """fnmatch(glob, path, FNM_LEADING_DIR) without FNM_PATHNAME."""
    if glob == "":
        return True
    if fnmatch.fnmatchcase(path, glob):
        return True
    parts = path.split("/")
    for i in range(1, len(parts)):
        if fnmatch.fnmatchcase("/".join(parts[:i]), glob):
            return True
    return False


def main():
    desc = json.load(open(sys.argv[1]))
    outside = "--outside" in sys.argv[3:]
    cfg = desc.get("backup") or {}
    includes = [norm(g) for g in (cfg.get("includes") or DEFAULT_INCLUDES)]
    excludes = [norm(g) for g in (cfg.get("excludes") or [])]

    def expected(path):
        return any(matches(g, path) for g in includes) and not any(matches(g, path) for g in excludes)

    for line in open(sys.argv[2]):
        line = line.rstrip("\n")
        m = HASH_LINE.match(line)
        if m:
            path, kind = m.group(1), "f"
        else:
            path, kind = line.rsplit("|", 4)[:2]
        ok = expected(path)
        if outside:
            if not ok and kind != "d":
                print(line)
        elif ok:
            print(line)


if __name__ == "__main__":
    main()
