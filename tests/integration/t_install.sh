#!/usr/bin/env bash
# `cmake --install` into a DESTDIR, twice: the first puts every program, man page, completion
# file, els-pki with its README and the default config (0640) in place; an administrator then
# edits the config; the second install leaves the edited config exactly as it was (and says
# so), while the shipped example in the doc dir stays the pristine one. Needs no namespaces.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
trap els_cleanup EXIT
ROOT=$WORK/root
CONF=$ROOT/etc/elsd/elsd.conf
inst() { DESTDIR=$ROOT cmake --install "$ELS_BUILD_DIR" --prefix /usr >"$WORK/install.log" 2>&1; }

check "cmake --install into an empty DESTDIR" inst
check "the packaged (observing) config is installed" cmp -s "$CONF" "$ELS_SOURCE_DIR/packaging/elsd.conf"
check_eq "the config is 0640" 640 "$(stat -c %a "$CONF" 2>/dev/null)"
check "the example config is in the doc dir" \
	cmp -s "$ROOT/usr/share/doc/els-agent/examples/elsd.conf" "$ELS_SOURCE_DIR/conf/elsd.conf"
for p in elsd els-rules els-console; do check "sbin/$p" test -x "$ROOT/usr/sbin/$p"; done
check "els-console's schema" test -s "$ROOT/usr/share/els-console/sql/001_core.sql"
check_eq "els-console's config is 0640" 640 "$(stat -c %a "$ROOT/etc/els-console/els-console.conf" 2>/dev/null)"
for p in elsctl els-log els-sweep els-pki; do check "bin/$p" test -x "$ROOT/usr/bin/$p"; done
check "els-pki's README" test -s "$ROOT/usr/share/doc/els-agent/pki/README.md"
for src in "$ELS_SOURCE_DIR"/man/*.scd; do
	page=$(basename "$src" .scd)
	check "man page $page" test -s "$ROOT/usr/share/man/man${page##*.}/$page"
done
for c in "$ELS_SOURCE_DIR"/completion/*; do
	check "completion ${c##*/}" cmp -s "$c" "$ROOT/usr/share/bash-completion/completions/${c##*/}"
done

# An administrator's edit, then an upgrade by reinstalling.
sed -i 's/^queues = "0";/queues = "0-3"; # edited by the admin/' "$CONF"
check "the edit is in place" grep -q 'edited by the admin' "$CONF"
cp "$CONF" "$WORK/edited"
check "cmake --install again" inst
check "the edited config is kept byte for byte" cmp -s "$CONF" "$WORK/edited"
check "the install says it kept the config" grep -q "Keeping: $CONF" "$WORK/install.log"
check "the doc dir's example is still the shipped one" \
	cmp -s "$ROOT/usr/share/doc/els-agent/examples/elsd.conf" "$ELS_SOURCE_DIR/conf/elsd.conf"
# A removed config is put back by the next install.
rm -f "$CONF"
check "cmake --install a third time" inst
check "a missing config is installed again" cmp -s "$CONF" "$ELS_SOURCE_DIR/packaging/elsd.conf"
els_finish
