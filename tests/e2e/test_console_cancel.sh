#!/bin/sh
# The console's run view under stress (tmux, 80x24): cancel one bundle mid-run
# (it ends cancelled, the other completes, the set records it as not a
# restore point); quit during a run (asks, then cancels and leaves the set
# interrupted); SIGTERM the same without asking; SIGHUP (a dropped SSH link)
# lets the run finish and write its set.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"

console_pid() { pgrep -P "$(tmx list-panes -t c -F '#{pane_pid}' | head -1)" -x ohbackup | head -1; }

# pick gallery + music (send rate 1: gallery needs ~7 s) and start
start_backup() {
	tmux_wait_for 'Actions' 10
	tmux_wait_for '8 bundles' 10
	tmux_keys b
	tmux_wait_for 'Backup: [0-9] selected' 5
	tmux_keys n
	tmux_wait_for 'Backup: 0 selected' 5
	tmux_keys / g a l l e r y Enter Space / m u s i c Enter Space / Escape
	tmux_wait_for 'Backup: 2 selected of 8 +sort: name$' 5
	tmux_keys Enter
	tmux_wait_for 'com\.example\.gallery +running' 10
}

# ---- cancel one bundle -------------------------------------------------------
tmux_start 80x24 -- --send-rate 1
start_backup
tmux_keys Home c
tmux_wait_for 'Cancel backing up com\.example\.gallery\?' 5
tmux_keys y
tmux_wait_for 'cancel\(com\.example\.gallery\) returned 0' 5
tmux_wait_for 'Backup finished: 1 of 2 bundles done' 30
tmux_wait_for 'com\.example\.gallery +cancelled' 2
tmux_wait_for 'com\.example\.music +done' 2
set=$(tmux_cap | sed -n 's/.*set \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\) written to.*/\1/p' | head -1)
[ -n "$set" ] || fail "no set named in the results"
[ "$(set_state "$set")" = complete ] || fail "set $set is not complete"
py 'import json,sys
d=json.load(open(sys.argv[1]))
b={x["name"]:x for x in d["bundles"]}
assert b["com.example.music"]["code"]==0, b
assert b["com.example.gallery"]["code"]!=0, b' "$STORE/$set/set.json" ||
	fail "set.json does not record gallery as cancelled (not a restore point): $(cat "$STORE/$set/set.json")"

# ---- quit during a run: asks, n keeps it, then y cancels --------------------
tmux_keys q
tmux_wait_for 'Actions' 5
start_backup
tmux_keys F10
tmux_wait_for 'A backup is running \(2 bundles not finished\)' 5
tmux_keys n
tmux_wait_for 'com\.example\.gallery +running' 5
set2=$(tmux_cap | sed -n 's/.*Backup into set \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\).*/\1/p' | head -1)
[ -n "$set2" ] || fail "the run view names no set"
tmux_keys F10
tmux_wait_for 'Quit\?' 5
tmux_keys y
[ "$(tmux_wait_exit 15)" = 0 ] || fail "quitting during a run did not exit 0"
[ "$(set_state "$set2")" = interrupted ] || fail "set $set2 should be interrupted after quitting, is $(set_state "$set2")"
tmx kill-server 2>/dev/null

# ---- SIGTERM during a run: no question, clean exit, set interrupted ----------
TMUX_SOCK=ohb$$t
tmux_start 80x24 -- --send-rate 1
start_backup
set3=$(tmux_cap | sed -n 's/.*Backup into set \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\).*/\1/p' | head -1)
pid=$(console_pid)
[ -n "$pid" ] || fail "cannot find the console's pid"
kill -TERM "$pid"
tmux_wait_exit 15 >/dev/null
[ "$(set_state "$set3")" = interrupted ] || fail "set $set3 should be interrupted after SIGTERM"
tmx kill-server 2>/dev/null

# ---- SIGHUP during a run: the run goes on and its set is written -------------
TMUX_SOCK=ohb$$h
tmux_start 80x24 -- --send-rate 1
start_backup
set4=$(tmux_cap | sed -n 's/.*Backup into set \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\).*/\1/p' | head -1)
pid=$(console_pid)
kill -HUP "$pid"
tmux_wait_exit 30 >/dev/null
[ "$(set_state "$set4")" = complete ] || fail "set $set4 should be complete after SIGHUP (the run goes on), is $(set_state "$set4")"
finish
