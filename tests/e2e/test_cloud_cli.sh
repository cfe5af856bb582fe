#!/bin/sh
# `ohbackup cloud ...` (cloudSync: GallerySync, Download, getFileSyncState) against
# a dir cloud (a folder of the workspace):
#  1. `cloud state` of a new local file: TO_BE_UPLOADED, without any cloud configured;
#  2. `--json cloud sync --url DIR`: one JSON object per progress event, DOWNLOADING,
#     UPLOADING, COMPLETED; both sides then hold every file;
#  3. the URL from $OHBACKUP_CLOUD_URL and from <root>/cloud/config.json;
#     "enabled":false in config.json, or no cloud at all: 22400001;
#  4. a file edited on both sides: both versions kept (a "(cloud conflict ...)" copy);
#     deleted on the device: gone from the cloud's media/, kept in its .trash/media/ as
#     <name>.<UTC time>; deleted in the cloud: kept in <root>/cloud/trash/gallery/;
#  5. `cloud download URI`: RUNNING events up to size, then COMPLETED, exit 0;
#  6. errors: a bad uri 14000002, an unknown uri 13900002, 101 uris 401,
#     a download of a file the cloud lacks 13900002 — each with exit 1.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

CLOUD=$WS/cloud
M=$ROOT/media
mkdir -p "$CLOUD/media/Photo" "$M/Photo"
printf 'device photo\n' >"$M/Photo/a.jpg"
printf 'cloud photo\n' >"$CLOUD/media/Photo/b.jpg"

run ohb cloud state file://media/Photo/a.jpg
assert_rc 0 "cloud state"
assert_grep "$OUT" '^TO_BE_UPLOADED +file://media/Photo/a.jpg$' "state output"

run ohb --json cloud sync --url "$CLOUD"
assert_rc 0 "cloud sync"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert all(e["event"]=="sync" for e in ev), ev
assert [e["state"] for e in ev]==["DOWNLOADING","UPLOADING","COMPLETED"], ev
assert ev[-1]["error"]=="NO_ERROR" and ev[-1]["code"]==0, ev' "$OUT" || fail "sync events"
cmp -s "$M/Photo/b.jpg" "$CLOUD/media/Photo/b.jpg" || fail "b.jpg not downloaded"
cmp -s "$M/Photo/a.jpg" "$CLOUD/media/Photo/a.jpg" || fail "a.jpg not uploaded"

run ohb --json cloud state file://media/Photo/a.jpg file:///media/Photo/b.jpg
assert_rc 0 "cloud state (batch)"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert [(e["state"],e["stateCode"]) for e in ev]==[("UPLOAD_SUCCESS",5),("COMPLETED",2)], ev' "$OUT" || fail "states"

# the URL from the environment, then from the device's config.json
printf 'from env\n' >"$M/env.jpg"
OHBACKUP_CLOUD_URL=$CLOUD run ohb cloud sync
assert_rc 0 "sync with OHBACKUP_CLOUD_URL"
assert_file "$CLOUD/media/env.jpg"
printf '{"url":"%s"}\n' "$CLOUD" >"$ROOT/cloud/config.json"
printf 'from config\n' >"$M/conf.jpg"
run ohb cloud sync
assert_rc 0 "sync with config.json"
assert_grep "$OUT" '^sync gallery: COMPLETED$' "human sync output"
assert_file "$CLOUD/media/conf.jpg"

# switched off in config.json, and not configured at all: 22400001, nothing moves
printf '{"url":"%s","enabled":false}\n' "$CLOUD" >"$ROOT/cloud/config.json"
printf 'while off\n' >"$M/off.jpg"
run ohb cloud sync
assert_rc 1 "sync while switched off"
assert_error_code 22400001
assert_grep "$ERR" 'switched off' "switched-off sentence"
[ ! -e "$CLOUD/media/off.jpg" ] || fail "a switched-off sync uploaded"
run ohb cloud state file://media/off.jpg
assert_rc 0 "state while switched off"
printf '{}\n' >"$ROOT/cloud/config.json"
run ohb cloud sync
assert_rc 1 "sync without a cloud"
assert_error_code 22400001
printf '{"url":"%s"}\n' "$CLOUD" >"$ROOT/cloud/config.json"
rm "$M/off.jpg"

# edited on both sides: both kept
sleep 0.05
printf 'device edit\n' >"$M/Photo/a.jpg"
printf 'cloud edit, longer\n' >"$CLOUD/media/Photo/a.jpg"
run ohb cloud sync
assert_rc 0 "conflict sync"
[ "$(cat "$M/Photo/a.jpg")" = "device edit" ] || fail "the device's version was lost"
c=$(ls "$M/Photo" | grep -E '^a \(cloud conflict [0-9]{8}-[0-9]{6}\)\.jpg$' || true)
[ -n "$c" ] || fail "no conflict copy: $(ls "$M/Photo")"
[ "$(cat "$M/Photo/$c")" = "cloud edit, longer" ] || fail "the conflict copy holds the wrong bytes"
cmp -s "$M/Photo/a.jpg" "$CLOUD/media/Photo/a.jpg" || fail "the device's edit was not uploaded"
cmp -s "$M/Photo/$c" "$CLOUD/media/Photo/$c" || fail "the conflict copy was not uploaded"

# deleted on one side: the other side's copy goes to a trash, <path>.<UTC yyyymmdd-hhmmss>
rm "$M/env.jpg"
printf 'from the cloud, to be deleted there\n' >"$CLOUD/media/gone.jpg"
run ohb cloud sync
assert_rc 0 "sync that brings gone.jpg down"
cmp -s "$M/gone.jpg" "$CLOUD/media/gone.jpg" || fail "gone.jpg not downloaded"
assert_no_path "$CLOUD/media/env.jpg"
t=$(ls "$CLOUD/.trash/media" 2>/dev/null | grep -E '^env\.jpg\.[0-9]{8}-[0-9]{6}$' || true)
[ -n "$t" ] || fail "env.jpg is not in the cloud's trash: $(ls -R "$CLOUD/.trash" 2>&1)"
[ "$(cat "$CLOUD/.trash/media/$t")" = "from env" ] || fail "the cloud's trash holds the wrong bytes for env.jpg"
assert_no_path "$M/env.jpg"
rm "$CLOUD/media/gone.jpg"
run ohb cloud sync
assert_rc 0 "sync after a deletion in the cloud"
assert_no_path "$M/gone.jpg"
t=$(ls "$ROOT/cloud/trash/gallery" 2>/dev/null | grep -E '^gone\.jpg\.[0-9]{8}-[0-9]{6}$' || true)
[ -n "$t" ] || fail "gone.jpg is not in the device's trash: $(ls -R "$ROOT/cloud/trash" 2>&1)"
[ "$(cat "$ROOT/cloud/trash/gallery/$t")" = "from the cloud, to be deleted there" ] ||
	fail "the device's trash holds the wrong bytes for gone.jpg"
assert_no_path "$CLOUD/media/gone.jpg"

# Download of one file
head -c 3000000 /dev/urandom >"$CLOUD/media/big.bin"
run ohb --json cloud download file://media/big.bin
assert_rc 0 "cloud download"
py 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert ev[-1]["state"]=="COMPLETED" and ev[-1]["processed"]==ev[-1]["size"]==3000000, ev
p=[e["processed"] for e in ev]
assert p==sorted(p) and all(e["state"]=="RUNNING" for e in ev[:-1]), ev' "$OUT" || fail "download events"
cmp -s "$M/big.bin" "$CLOUD/media/big.bin" || fail "big.bin differs"
ls "$M" | grep -q 'temp.download' && fail "a partial file was left"

# errors
run ohb cloud state file://elsewhere/a.jpg
assert_rc 1 "bad uri"
assert_error_code 14000002
run ohb cloud state file://media/none.jpg
assert_rc 1 "unknown uri"
assert_error_code 13900002
set -- $(for i in $(seq 101); do echo file://media/Photo/a.jpg; done)
run ohb cloud state "$@"
assert_rc 1 "101 uris"
assert_error_code 401
run ohb cloud download file://media/none.jpg
assert_rc 1 "download of a missing file"
assert_error_code 13900002
run ohb cloud
assert_rc 2 "no sub-command"
finish
