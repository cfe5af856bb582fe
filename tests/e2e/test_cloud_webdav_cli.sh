#!/bin/sh
# `ohbackup cloud --url http://... sync` against a real WebDAV server that wants a login
# (`rclone serve webdav --user u --pass p` on a free 127.0.0.1 port; skipped without rclone):
#  1. the credentials from $OHBACKUP_CLOUD_USER / $OHBACKUP_CLOUD_PASSWORD: the sync completes,
#     the device's photo is in the cloud and the cloud's is on the device;
#  2. the credentials from "user"/"password" in <root>/cloud/config.json: the same;
#  3. a wrong password (from the environment, which beats config.json; then from
#     config.json) and no credentials at all: refused with 22400001 ("refused the
#     credentials"), exit 1, nothing uploaded.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

command -v rclone >/dev/null 2>&1 || skip "rclone is not installed"

DAV=$WS/dav
M=$ROOT/media
mkdir -p "$DAV/media/Photo" "$M/Photo"
unset OHBACKUP_CLOUD_URL OHBACKUP_CLOUD_USER OHBACKUP_CLOUD_PASSWORD

# A free port: the kernel picks one, the server takes it (retried when another process won the race).
free_port() {
	py 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# Answers (any HTTP status, a 401 included) once the server listens.
dav_answers() {
	py 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=1); s.close()' "$1"
}
URL=
for attempt in 1 2 3 4 5; do
	port=$(free_port) || fail "no free port"
	rclone serve webdav "$DAV" --addr "127.0.0.1:$port" --user u --pass p \
		--dir-cache-time 0s --config /dev/null >"$WS/rclone.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	if wait_for 10 dav_answers "$port"; then
		URL=http://127.0.0.1:$port/
		break
	fi
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
done
[ -n "$URL" ] || fail "rclone serve webdav did not start: $(cat "$WS/rclone.log")"

# ---- 1. credentials from the environment ------------------------------------------
printf 'device photo\n' >"$M/Photo/a.jpg"
printf 'cloud photo\n' >"$DAV/media/Photo/b.jpg"
OHBACKUP_CLOUD_USER=u OHBACKUP_CLOUD_PASSWORD=p run ohb cloud --url "$URL" sync
assert_rc 0 "sync with the login from the environment"
assert_grep "$OUT" '^sync gallery: COMPLETED$' "sync output"
cmp -s "$M/Photo/a.jpg" "$DAV/media/Photo/a.jpg" || fail "a.jpg not uploaded over WebDAV"
cmp -s "$M/Photo/b.jpg" "$DAV/media/Photo/b.jpg" || fail "b.jpg not downloaded over WebDAV"

# ---- 2. credentials from config.json ------------------------------------------------
mkdir -p "$ROOT/cloud"
printf '{"user":"u","password":"p"}\n' >"$ROOT/cloud/config.json"
printf 'with config login\n' >"$M/conf.jpg"
run ohb cloud --url "$URL" sync
assert_rc 0 "sync with the login from config.json"
cmp -s "$M/conf.jpg" "$DAV/media/conf.jpg" || fail "conf.jpg not uploaded with config.json's login"
# the URL from config.json too
printf '{"url":"%s","user":"u","password":"p"}\n' "$URL" >"$ROOT/cloud/config.json"
printf 'all from config\n' >"$M/conf2.jpg"
run ohb cloud sync
assert_rc 0 "sync with url and login from config.json"
cmp -s "$M/conf2.jpg" "$DAV/media/conf2.jpg" || fail "conf2.jpg not uploaded with config.json's url and login"

# ---- 3. wrong or missing credentials: 22400001, nothing moves ------------------------
printf 'must stay local\n' >"$M/refused.jpg"
OHBACKUP_CLOUD_PASSWORD=wrong run ohb cloud --url "$URL" sync
assert_rc 1 "sync with a wrong password from the environment"
assert_error_code 22400001
assert_grep "$ERR" 'refused the credentials' "refused sentence"
printf '{"user":"u","password":"wrong"}\n' >"$ROOT/cloud/config.json"
run ohb cloud --url "$URL" sync
assert_rc 1 "sync with a wrong password from config.json"
assert_error_code 22400001
assert_grep "$ERR" 'refused the credentials' "refused sentence"
OHBACKUP_CLOUD_USER=someone OHBACKUP_CLOUD_PASSWORD=p run ohb cloud --url "$URL" sync
assert_rc 1 "sync with a wrong user from the environment"
assert_error_code 22400001
printf '{}\n' >"$ROOT/cloud/config.json"
run ohb cloud --url "$URL" sync
assert_rc 1 "sync without a login"
assert_error_code 22400001
assert_no_path "$DAV/media/refused.jpg"
cmp -s "$M/Photo/a.jpg" "$DAV/media/Photo/a.jpg" || fail "a refused sync changed the cloud's a.jpg"

# the right login again: the held-back file goes up
OHBACKUP_CLOUD_USER=u OHBACKUP_CLOUD_PASSWORD=p run ohb cloud --url "$URL" sync
assert_rc 0 "sync after the refused ones"
cmp -s "$M/refused.jpg" "$DAV/media/refused.jpg" || fail "refused.jpg not uploaded once the login is right"
finish
