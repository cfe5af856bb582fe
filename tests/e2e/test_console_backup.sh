#!/bin/sh
# The console end to end (tmux, 80x24): open on a demo device, filter and
# select two bundles, back them up, see both reach done and the set listed;
# resize to 60x20 and 200x60 during the run; switch theme; help; a size below
# the minimum; NO_COLOR + TERM=vt100.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

ohb demo >/dev/null || fail "demo"

# --send-rate 1 keeps gallery running for a few seconds: time to resize.
tmux_start 80x24 -- --send-rate 1
tmux_wait_for 'Device' 10
tmux_wait_for 'OpenHarmony-5\.0\.0 +\(default, backup version 16\.0\)' 10
tmux_wait_for '8 bundles \(7 allow backup\)' 5
tmux_wait_for 'F1 Help' 2
tmux_wait_for '0 sets in' 2

# help on the home screen
tmux_keys '?'
tmux_wait_for 'Keys of Home' 3
tmux_keys x
tmux_wait_for 'Actions' 3

# the picker: filter, select two
tmux_keys b
tmux_wait_for 'Backup: 0 selected of 8' 5
tmux_wait_for '-  com\.example\.bank .*backup not allowed' 2
tmux_keys / g a l
tmux_wait_for 'filter: gal_' 3
tmux_cap | grep -q 'com.example.music' && fail "the filter did not hide com.example.music"
tmux_keys Enter Space
tmux_wait_for '\[x\] com\.example\.gallery' 3
tmux_keys / n o t e s Enter Space
tmux_wait_for '\[x\] com\.example\.notes' 3
tmux_keys / Escape
tmux_wait_for 'Backup: 2 selected of 8 +sort: name$' 3
# the bank cannot be selected
tmux_keys Home Space
tmux_wait_for 'cannot be (selected|backed up)' 3
tmux_wait_for 'Backup: 2 selected of 8' 2
tmux_keys s
tmux_wait_for 'sort: size' 3

tmux_keys Enter
tmux_wait_for 'Backup into set [0-9]{8}-[0-9]{6}' 10
tmux_wait_for 'com\.example\.gallery +running' 10

# resize during the run
tmux_resize 60 20
tmux_wait_for 'com\.example\.gal.* +(running|done)' 5
[ "$(tmux_cap | awk '{ if (length($0) > 60) n++ } END { print n+0 }')" = 0 ] || fail "lines wider than 60 columns after resize"
tmux_resize 200 60
tmux_wait_for 'overall' 5
tmux_wait_for 'Events' 2
tmux_resize 80 24

tmux_wait_for 'Backup finished: 2 of 2 bundles done' 40
tmux_wait_for 'com\.example\.gallery +done' 2
tmux_wait_for 'com\.example\.notes +done' 2
set=$(tmux_cap | sed -n 's/.*set \([0-9]\{8\}-[0-9]\{6\}-[0-9]*\) written to.*/\1/p' | head -1)
[ -n "$set" ] || fail "the results do not name the set"
[ -f "$STORE/$set/set.json" ] || fail "set $set has no set.json"
[ "$(set_state "$set")" = complete ] || fail "set $set is not complete"

# a bundle's full log
tmux_keys Enter
tmux_wait_for 'Log of com\.example\.' 3
tmux_keys q
tmux_wait_for 'Results' 3

# the set is listed
tmux_keys q l
tmux_wait_for "$set +full +complete +2/2" 5
tmux_keys q

# theme: settings cycles; the choice shows
tmux_keys o
tmux_wait_for 'Theme +< default >' 5
tmux_keys Enter
tmux_wait_for 'Theme +< high-contrast >' 3
tmux_keys q
tmux_wait_for 'Actions' 3
tmux_keys q
[ "$(tmux_wait_exit 10)" = 0 ] || fail "the console did not exit 0"
tmx kill-server 2>/dev/null

# --theme NAME, a broken theme file, NO_COLOR with TERM=vt100, too small
mkdir -p "$WS/themes"
cp "$(dirname "$OHBACKUP_BIN")/../themes/"*.theme "$WS/themes/" 2>/dev/null || cp "$E2E_DIR/../../themes/"*.theme "$WS/themes/"
printf 'title = white nocolour bold\n' >"$WS/themes/broken.theme"
TMUX_SOCK=ohb$$b
tmux_start 80x24 OHBACKUP_THEMES="$WS/themes" -- --theme broken
tmux_wait_for 'theme broken: .*line 1: unknown colour "nocolour"; using the default theme' 10
tmux_keys o
tmux_wait_for 'Theme +< default >' 3
tmux_keys F10
tmux_wait_exit 10 >/dev/null
tmx kill-server 2>/dev/null

TMUX_SOCK=ohb$$c
tmux_start 80x24 NO_COLOR=1 TERM=vt100 -- --theme light
tmux_wait_for 'Actions' 10
tmux_keys o
tmux_wait_for 'Theme +< monochrome \(colours off\) >' 3
tmux_keys q q
tmux_wait_exit 10 >/dev/null
tmx kill-server 2>/dev/null

TMUX_SOCK=ohb$$d
tmux_start 40x10 TERM=vt100 --
tmux_wait_for 'Terminal too small: 40x10' 10
tmux_wait_for 'need at least' 2
tmux_resize 80 24
tmux_wait_for 'Actions' 5
tmux_keys q
tmux_wait_exit 10 >/dev/null
finish
