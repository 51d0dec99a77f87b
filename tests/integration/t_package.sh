#!/usr/bin/env bash
# The Debian package: built with cpack in a scratch build dir, installed with dpkg into this
# machine (CI runs as root on a throwaway machine, as the issue allows), its files, owners and
# modes checked, the installed config checked by elsd itself (also as the elsd user), then
# removed (config and state stay) and purged (config, state and the user go). The maintainer
# scripts run inside a scratch network namespace, so the steering-rule cleanup in prerm can
# only ever touch that namespace. A package left installed by an earlier run is purged first.
. "$(dirname "$0")/lib.sh"
PKG=els-agent
CPKG=els-console # the console's own package, from the same cpack run
NS="$ELS_TAG-pkg"
[[ $(id -u) == 0 ]] || { echo "needs root (dpkg)"; exit 1; }
if ! command -v dpkg >/dev/null || ! command -v cpack >/dev/null; then
	echo "needs dpkg and cpack"
	exit 1
fi

pkg_cleanup() {
	set +e
	for p in $PKG $CPKG; do
		if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -v 'not-installed'; then
			ip netns exec "$NS" dpkg -P "$p" >/dev/null 2>&1 || dpkg -P "$p" >/dev/null 2>&1
		fi
	done
	ip netns del "$NS" 2>/dev/null
	[[ -n ${ELS_KEEP:-} ]] || rm -rf "$WORK"
}
trap pkg_cleanup EXIT
ip netns add "$NS" || exit 1
in_ns() { ip netns exec "$NS" "$@"; }
# The installed els-rules with the installed elsd (not the build tree's $ELSD).
rules() { in_ns env -u ELSD /usr/sbin/els-rules "$@"; }
# "mode owner:group" of a path
perm() { stat -c '%a %U:%G' "$1" 2>/dev/null; }
pkg_status() { dpkg-query -W -f='${Status}' $PKG 2>/dev/null; }
# dpkg in the scratch namespace. Its output goes where lib.sh's fail() shows the daemon's log,
# so a failed check shows what dpkg said last.
ELSD_LOG=$WORK/dpkg.log
dpkg_ns() { in_ns dpkg "$@" >"$ELSD_LOG" 2>&1; }

if [[ -n $(pkg_status) && $(pkg_status) != *not-installed* ]]; then
	log "purging $PKG left by an earlier run ($(pkg_status))"
	in_ns dpkg -P $PKG >/dev/null 2>&1 || { echo "cannot purge the old $PKG"; exit 1; }
fi
if dpkg-query -W -f='${Status}' $CPKG 2>/dev/null | grep -q -v 'not-installed'; then
	log "purging $CPKG left by an earlier run"
	in_ns dpkg -P $CPKG >/dev/null 2>&1 || { echo "cannot purge the old $CPKG"; exit 1; }
fi

log "building the package"
B=$WORK/build
if ! { cmake -S "$ELS_SOURCE_DIR" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DELS_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "$B" -j"$(nproc)" &&
	(cd "$B" && cpack -G DEB); } >"$WORK/build.log" 2>&1; then
	tail -n 30 "$WORK/build.log"
	fail "cmake + cpack -G DEB"
	els_finish
	exit 1
fi
debs=("$B/${PKG}"_*.deb)
DEB=${debs[0]}
check "cpack -G DEB built ${DEB##*/}" test -f "$DEB"
info=$(dpkg-deb -I "$DEB")
check "control: Depends names the Debian 12 runtime libraries" \
	grep -q -E '^ Depends: .*libnetfilter-queue1.*libconfig9.*libsqlite3-0.*libcap2' <<<"$info"
# Every shared library a packaged program needs comes from a package that Depends names.
# missing_libs DEB: "program:library(package)" for each one Depends does not cover.
missing_libs() {
	local depends dir=$WORK/deb-${1##*/} missing=
	depends=$(dpkg-deb -I "$1" | sed -n 's/^ Depends: //p')
	mkdir -p "$dir" && dpkg-deb -x "$1" "$dir"
	for elf in "$dir"/usr/sbin/* "$dir"/usr/bin/*; do
		readelf -h "$elf" >/dev/null 2>&1 || continue # els-rules is a script
		for so in $(readelf -d "$elf" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
			path=$(ldconfig -p | awk -v so="$so" '$1 == so {print $NF; exit}')
			real=$(realpath "$path")
			# dpkg knows a file by the path its package shipped, /lib or /usr/lib (usrmerge)
			pkg=$(dpkg -S "$real" "${real#/usr}" "$path" 2>/dev/null | head -1 | cut -d: -f1)
			[[ -n $pkg && ", $depends," == *", $pkg "* || ", $depends," == *", $pkg,"* ]] ||
				missing+=" ${elf##*/}:$so(${pkg:-?})"
		done
	done
	echo "$missing"
}
check_eq "Depends covers every library the programs link" "" "$(missing_libs "$DEB")"
check_eq "conffiles: the default config" "/etc/elsd/elsd.conf" "$(dpkg-deb -I "$DEB" conffiles)"
for s in postinst prerm postrm; do
	check "control: $s is executable" grep -q -E "^ +[0-9]+ bytes, +[0-9]+ lines +\\* +$s " <<<"$info"
done

check "dpkg -i" dpkg_ns -i "$DEB"
check_eq "package installed" "install ok installed" "$(pkg_status)"
check_eq "/usr/sbin/elsd" "755 root:root" "$(perm /usr/sbin/elsd)"
check_eq "/usr/sbin/els-rules" "755 root:root" "$(perm /usr/sbin/els-rules)"
check_eq "/lib/systemd/system/elsd.service" "644 root:root" "$(perm /lib/systemd/system/elsd.service)"
check_eq "/lib/systemd/system/elsd-rules.service" "644 root:root" \
	"$(perm /lib/systemd/system/elsd-rules.service)"
for u in els-sweep.service els-sweep.timer; do
	[[ -f $ELS_SOURCE_DIR/packaging/$u ]] &&
		check_eq "/lib/systemd/system/$u" "644 root:root" "$(perm /lib/systemd/system/$u)"
done
for t in "$ELS_SOURCE_DIR"/tools/*/; do
	t=$(basename "$t")
	[[ -n $(ls "$ELS_SOURCE_DIR/tools/$t/"*.c 2>/dev/null) ]] &&
		check_eq "/usr/bin/$t" "755 root:root" "$(perm "/usr/bin/$t")"
done
check_eq "/etc/elsd (read-only to elsd)" "750 root:elsd" "$(perm /etc/elsd)"
check_eq "/etc/elsd/policy.d (where elsd persists remote policy)" "770 root:elsd" \
	"$(perm /etc/elsd/policy.d)"
check_eq "/var/lib/els-rules (els-rules' state, root's)" "755 root:root" "$(perm /var/lib/els-rules)"
check_not "the elsd user cannot write /etc/elsd" runuser -u elsd -- touch /etc/elsd/x
check "the elsd user can write /etc/elsd/policy.d" \
	runuser -u elsd -- sh -c 'touch /etc/elsd/policy.d/x && rm /etc/elsd/policy.d/x'
check_eq "/etc/elsd/elsd.conf" "640 root:elsd" "$(perm /etc/elsd/elsd.conf)"
check_eq "/var/lib/elsd" "750 elsd:elsd" "$(perm /var/lib/elsd)"
check_eq "/var/log/elsd" "750 elsd:elsd" "$(perm /var/log/elsd)"
check "docs/install.md is shipped" test -f /usr/share/doc/$PKG/install.md
for page in "$ELS_SOURCE_DIR"/man/*.scd; do
	page=$(basename "$page" .scd) # elsd.8
	[[ $page == els-console.* ]] && continue # in the els-console package
	check "man page ${page%.*}(${page##*.}) is shipped and found by man" \
		test "$(man -w "${page##*.}" "${page%.*}" 2>/dev/null)" == "/usr/share/man/man${page##*.}/$page"
done
for c in "$ELS_SOURCE_DIR"/completion/*; do
	[[ ${c##*/} == els-console ]] && continue
	check "bash completion for ${c##*/}" test -f "/usr/share/bash-completion/completions/${c##*/}"
done
check_eq "/usr/bin/els-pki" "755 root:root" "$(perm /usr/bin/els-pki)"
check "els-pki runs (--help)" /usr/bin/els-pki --help
check "pki/README.md is shipped" test -f /usr/share/doc/$PKG/pki/README.md
check "the example config is shipped beside the conffile" \
	cmp -s /usr/share/doc/$PKG/examples/elsd.conf "$ELS_SOURCE_DIR/conf/elsd.conf"
pw=$(getent passwd elsd)
check "postinst created the elsd user" test -n "$pw"
uid=$(cut -d: -f3 <<<"$pw")
check "elsd is a system user (uid < 1000) with no login shell" \
	test "${uid:-9999}" -lt 1000 -a "$(cut -d: -f7 <<<"$pw")" == /usr/sbin/nologin
check "the elsd group exists" getent group elsd
check "elsd -n -c /etc/elsd/elsd.conf" /usr/sbin/elsd -n -c /etc/elsd/elsd.conf
check "the elsd user can read its config (reload after a privilege drop)" \
	runuser -u elsd -- /usr/sbin/elsd -n -c /etc/elsd/elsd.conf
check_not "other users cannot" runuser -u nobody -- cat /etc/elsd/elsd.conf
check "els-rules runs from the package" /usr/sbin/els-rules --help
check "els-rules reads the installed config" \
	grep -q '^# backend .*queues 0-0, fail_open false' <<<"$(rules -n install)"
check "systemd-analyze verify on the installed units" \
	test -z "$(systemd-analyze verify /lib/systemd/system/elsd.service \
		/lib/systemd/system/elsd-rules.service 2>&1)"
check "dpkg --verify: files as shipped" test -z "$(dpkg --verify $PKG 2>&1)"
check "dpkg -i again (reinstall over itself)" dpkg_ns -i "$DEB"
check_eq "still one elsd user" 1 "$(getent passwd | grep -c '^elsd:')"

# Some state, as a running agent would leave it, and rules that prerm must take away.
runuser -u elsd -- sh -c 'echo x >/var/lib/elsd/monitor.db'
rules install >/dev/null 2>&1
check "rules in place before removal" rules status
check "dpkg -r" dpkg_ns -r $PKG
check_eq "removed, config files kept" "deinstall ok config-files" "$(pkg_status)"
check_not "prerm took the steering rules away (iptables)" in_ns iptables -S ELSD-IN
check_not "prerm took the steering rules away (nft)" in_ns nft list table inet elsd
check_not "elsd is gone" test -e /usr/sbin/elsd
check_not "els-rules is gone" test -e /usr/sbin/els-rules
check_not "the unit is gone" test -e /lib/systemd/system/elsd.service
check "the config stays after remove" test -f /etc/elsd/elsd.conf
check "the state stays after remove" test -f /var/lib/elsd/monitor.db
check "dpkg -P" dpkg_ns -P $PKG
check_eq "purged" "" "$(pkg_status | grep -v not-installed)"
check_not "/etc/elsd is gone" test -e /etc/elsd
check_not "/var/lib/elsd is gone" test -e /var/lib/elsd
check_not "/var/log/elsd is gone" test -e /var/log/elsd
check_not "/var/lib/els-rules is gone" test -e /var/lib/els-rules
check_not "the elsd user is gone" getent passwd elsd
check_not "the elsd group is gone" getent group elsd

log "the els-console package"
cdebs=("$B/${CPKG}"_*.deb)
CDEB=${cdebs[0]}
check "cpack -G DEB also built ${CDEB##*/}" test -f "$CDEB"
check_eq "$CPKG: Depends covers every library els-console links" "" "$(missing_libs "$CDEB")"
check_eq "$CPKG: conffiles: its config" "/etc/els-console/els-console.conf" \
	"$(dpkg-deb -I "$CDEB" conffiles)"
check_eq "$CPKG: the agent's package holds none of its files" "" \
	"$(dpkg-deb -c "$DEB" | grep -E 'els-console' | grep -v '/usr/share/doc/els-agent/console')"
check "$CPKG: dpkg -i" dpkg_ns -i "$CDEB"
check_eq "/usr/sbin/els-console" "755 root:root" "$(perm /usr/sbin/els-console)"
check_eq "/lib/systemd/system/els-console.service" "644 root:root" \
	"$(perm /lib/systemd/system/els-console.service)"
check_eq "/etc/els-console (read-only to the console)" "750 root:els-console" "$(perm /etc/els-console)"
check_eq "/etc/els-console/els-console.conf" "640 root:els-console" \
	"$(perm /etc/els-console/els-console.conf)"
check "the schema is shipped" test -f /usr/share/els-console/sql/001_core.sql
check "the browser pages are shipped" test -f /usr/share/els-console/www/fleet.html
check_eq "man page els-console(8) is shipped and found by man" \
	/usr/share/man/man8/els-console.8 "$(man -w 8 els-console 2>/dev/null)"
check "bash completion for els-console" test -f /usr/share/bash-completion/completions/els-console
pw=$(getent passwd els-console)
check "postinst created the els-console system user, no login shell" \
	test "$(cut -d: -f3 <<<"$pw")" -lt 1000 -a "$(cut -d: -f7 <<<"$pw")" == /usr/sbin/nologin
out=$(runuser -u els-console -- /usr/sbin/els-console -n -c /etc/els-console/els-console.conf 2>&1)
check "els-console -n (as its user) reads the shipped config and names the missing certificate" \
	grep -q "/etc/els-console/tls/ca.crt" <<<"$out"
check "systemd-analyze verify on its unit" \
	test -z "$(systemd-analyze verify /lib/systemd/system/els-console.service 2>&1)"
check "$CPKG: dpkg --verify" test -z "$(dpkg --verify $CPKG 2>&1)"
check "$CPKG: dpkg -P" dpkg_ns -P $CPKG
check_not "/etc/els-console is gone" test -e /etc/els-console
check_not "the els-console user is gone" getent passwd els-console
els_finish
