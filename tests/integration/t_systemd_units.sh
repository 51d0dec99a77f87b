#!/usr/bin/env bash
# The systemd units as installed: `cmake --install` of the build into a scratch root (prefix
# /usr, as the package has it), then `systemd-analyze verify --root` on every unit there: no
# error and no warning. The service carries the hardening the issue asks for, and its
# `systemd-analyze security` exposure score is the one docs/install.md states. Two broken
# copies of the unit show that verify does catch mistakes. systemd need not be PID 1.
. "$(dirname "$0")/lib.sh"
[[ -n ${ELS_BUILD_DIR:-} ]] || ELS_BUILD_DIR=$(dirname "$ELSD")
command -v systemd-analyze >/dev/null || { echo "needs systemd-analyze (systemd)"; exit 1; }
trap els_cleanup EXIT
R=$WORK/root
UNITS=$R/lib/systemd/system
SRC=$ELS_SOURCE_DIR/packaging

check "cmake --install into a scratch root" \
	env DESTDIR="$R" cmake --install "$ELS_BUILD_DIR" --prefix /usr
# Units with default dependencies need the standard targets (sysinit.target, ...): this
# system's, never ours.
[[ -d $UNITS ]] && cp -an /lib/systemd/system/. "$UNITS/"
for f in "$SRC"/*.service "$SRC"/*.timer; do
	[[ -e $f ]] || continue
	check "${f##*/} is installed to /lib/systemd/system" cmp -s "$f" "$UNITS/${f##*/}"
done
check "elsd and els-rules are installed where the unit runs them" \
	test -x "$R/usr/sbin/elsd" -a -x "$R/usr/sbin/els-rules"

verify() { systemd-analyze verify --root="$R" "$1" 2>&1; }
for f in "$SRC"/*.service "$SRC"/*.timer; do
	[[ -e $f ]] || continue
	out=$(verify "${f##*/}")
	rc=$?
	check_eq "systemd-analyze verify ${f##*/}: exit 0, no warnings" "0:" "$rc:$out"
done

# The check itself can fail: an unknown key, and a program that is not there.
sed 's/^Type=notify$/Type=notify\nTyp=simple/' "$UNITS/elsd.service" >"$UNITS/els-bad1.service"
check_not "verify reports an unknown key" test -z "$(verify els-bad1.service)"
sed 's|^ExecStart=/usr/sbin/elsd|ExecStart=/usr/sbin/no-such-elsd|' "$UNITS/elsd.service" \
	>"$UNITS/els-bad2.service"
check_not "verify fails on a missing program" verify els-bad2.service
rm -f "$UNITS"/els-bad*.service

# What the issue asks of the service, line by line.
U=$UNITS/elsd.service
for line in "Type=notify" "NotifyAccess=main" "WatchdogSec=30s" \
	"Requires=elsd-rules.service" \
	"ExecStart=/usr/sbin/elsd -c /etc/elsd/elsd.conf" "ExecReload=+/usr/sbin/elsd --reload" \
	"RuntimeDirectory=elsd" \
	"ExecStopPost=-+/usr/sbin/els-rules verify -c /etc/elsd/elsd.conf" \
	"Restart=on-failure" "User=elsd" "AmbientCapabilities=CAP_NET_ADMIN" \
	"CapabilityBoundingSet=CAP_NET_ADMIN" "NoNewPrivileges=yes" "ProtectSystem=strict" \
	"StateDirectory=elsd" "ConfigurationDirectory=elsd" "ConfigurationDirectoryMode=0750" \
	"ReadWritePaths=-/etc/elsd/policy.d" "LogsDirectory=elsd" "PrivateTmp=yes" \
	"ProtectHome=yes" "RestrictAddressFamilies=AF_NETLINK AF_INET AF_INET6 AF_UNIX" \
	"SystemCallFilter=@system-service" "MemoryDenyWriteExecute=yes"; do
	check "elsd.service: $line" grep -q -x -F -- "$line" "$U"
done
check "elsd.service: ordered after elsd-rules.service" \
	grep -q -E '^After=elsd-rules.service( |$)' "$U"
check_not "elsd.service never removes the steering rules (no 'els-rules remove')" \
	grep -q 'els-rules remove' "$U"
check_eq "elsd.service: /etc/elsd itself is not writable (only policy.d)" "" \
	"$(grep -E '^ReadWritePaths=' "$U" | grep -v -x -F 'ReadWritePaths=-/etc/elsd/policy.d')"

# The rules' own unit: their lifetime apart from elsd's.
RU=$UNITS/elsd-rules.service
for line in "Type=oneshot" "RemainAfterExit=yes" \
	"ExecStart=/usr/sbin/els-rules install -c /etc/elsd/elsd.conf" \
	"ExecReload=/usr/sbin/els-rules install -c /etc/elsd/elsd.conf" \
	"ExecStop=/usr/sbin/els-rules remove --unless-shutdown -c /etc/elsd/elsd.conf" \
	"StateDirectory=els-rules" "DefaultDependencies=no"; do
	check "elsd-rules.service: $line" grep -q -x -F -- "$line" "$RU"
done
check "elsd-rules.service: before elsd.service" grep -q -E '^Before=.*elsd.service' "$RU"
check_not "elsd-rules.service is not enabled on its own (no [Install])" grep -q '^\[Install\]' "$RU"
check_not "elsd-rules.service is not part of elsd (no PartOf/BindsTo: a restart of elsd leaves it)" \
	grep -q -E '^(PartOf|BindsTo)=' "$RU"

# The exposure score: low, and the one the documentation states.
score=$(systemd-analyze security --offline=true --root="$R" elsd.service 2>/dev/null |
	sed -n 's/.*Overall exposure level for elsd.service: \([0-9.]*\).*/\1/p')
log "systemd-analyze security: exposure $score"
check "systemd-analyze security --offline: exposure at most 2.0" \
	systemd-analyze security --offline=true --root="$R" --threshold=20 elsd.service
check "docs/install.md states the exposure score ($score)" \
	grep -q "exposure level.*\\*\\*$score\\*\\*" "$ELS_SOURCE_DIR/docs/install.md"
els_finish
