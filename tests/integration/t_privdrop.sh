#!/usr/bin/env bash
# shellcheck disable=SC2119 # els_steer takes no arguments here
# Privilege drop outside systemd: elsd started as root with `user = "nobody"` binds its queue,
# then runs as nobody with CAP_NET_ADMIN alone (every thread: uid 65534, no other capability,
# no supplementary groups, no_new_privs) and keeps filtering: HTTPS passes, 22 stays dropped,
# the monitor (in a directory nobody owns) keeps recording. Started the way systemd starts it
# (already that user, CAP_NET_ADMIN ambient), it drops nothing and filters the same. A user
# that does not exist, or a non-root start asked to become someone else, is a clear error.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
chmod 711 "$WORK" # nobody must reach the monitor's directory (it unlinks the -wal at close)
install -d -o nobody -g nogroup -m 0750 "$WORK/mon"
DB=$WORK/mon/monitor.db
els_config "$WORK/elsd.conf" "\$a user = \"nobody\";"
chmod 644 "$WORK/elsd.conf"
els_https_server || { fail "https server did not start"; els_finish; exit; }
els_listen "$SRV" 22 || { fail "listener on 22 did not start"; els_finish; exit; }
NOBODY=$(id -u nobody)

# A field of /proc/PID/status, its tabs kept.
field() { sed -n "s/^$2:[[:space:]]*//p" "$1"; }
# Checks every thread of $1: uid and gid nobody, no groups, CapEff only cap_net_admin or none.
threads_unprivileged() {
	local st
	for st in /proc/"$1"/task/*/status; do
		[[ $(field "$st" Uid) == "$NOBODY	$NOBODY	$NOBODY	$NOBODY" ]] || return 1
		[[ -z $(field "$st" Groups) ]] || return 1
		case $(field "$st" CapEff) in
		0000000000001000 | 0000000000000000) ;;
		*) return 1 ;;
		esac
	done
}

els_start "$WORK/elsd.conf" || exit 1
ST=/proc/$ELSD_PID/status
check "elsd says it dropped to nobody" grep -q "dropped privileges: user nobody" "$ELSD_LOG"
check_eq "Uid: nobody (real, effective, saved, fs)" "$NOBODY	$NOBODY	$NOBODY	$NOBODY" "$(field "$ST" Uid)"
check_eq "Gid: nobody's group" "$(id -g nobody)" "$(field "$ST" Gid | cut -f1)"
check_eq "no supplementary groups" "" "$(field "$ST" Groups)"
check_eq "CapEff: cap_net_admin only" 0000000000001000 "$(field "$ST" CapEff)"
check_eq "CapPrm: cap_net_admin only" 0000000000001000 "$(field "$ST" CapPrm)"
check_eq "CapInh and CapAmb empty" "0000000000000000 0000000000000000" \
	"$(field "$ST" CapInh) $(field "$ST" CapAmb)"
check_eq "CapBnd: cap_net_admin only" 0000000000001000 "$(field "$ST" CapBnd)"
check_eq "NoNewPrivs" 1 "$(field "$ST" NoNewPrivs)"
check "every thread: nobody, at most cap_net_admin" threads_unprivileged "$ELSD_PID"
check "still filtering: curl to 443 (IPv4)" in_cli curl -sk --max-time 5 "https://$SRV4/"
check "still filtering: curl to 443 (IPv6)" in_cli curl -sk --max-time 5 "https://[$SRV6]/"
check_not "still filtering: 22 is dropped" in_cli timeout 3 nc -z -w 2 "$SRV4" 22
check "the monitor records the admitted HTTPS flow" \
	wait_records "kind='admit' AND dport=443 AND src='$CLI4'"
check "and the drop on 22" wait_records "kind='drop' AND dport=22 AND src='$CLI4'"
check_eq "the monitor file and its key belong to nobody now" "nobody nobody" \
	"$(stat -c %U "$DB") $(stat -c %U "$WORK/mon/monitor.key" 2>/dev/null || echo none)"
els_stop
check_eq "clean stop as nobody" 0 "$?"
check_eq "monitor integrity" ok "$(sql 'PRAGMA integrity_check')"
before=$(sql "SELECT count(*) FROM records")

# As systemd starts it: already nobody, CAP_NET_ADMIN ambient; the drop has nothing to do.
# shellcheck disable=SC2054 # setpriv's capability lists are comma-separated
SETPRIV=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups
	--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin)
: >"$ELSD_LOG"
ip netns exec "$SRV" "${SETPRIV[@]}" "$ELSD" -c "$WORK/elsd.conf" >>"$ELSD_LOG" 2>&1 &
ELSD_PID=$!
for _ in $(seq 100); do grep -q "started:" "$ELSD_LOG" && break; sleep 0.1; done
check "started as nobody with ambient CAP_NET_ADMIN" grep -q "started:" "$ELSD_LOG"
check "no drop needed" grep -q "running as user nobody already" "$ELSD_LOG"
check "filtering: curl to 443" in_cli curl -sk --max-time 5 "https://$SRV4/"
check_not "filtering: 22 is dropped" in_cli timeout 3 nc -z -w 2 "$SRV4" 22
els_stop
check_ge "the monitor file and key (made by root, given to nobody) are still usable" "$((before + 1))" \
	"$(sql "SELECT count(*) FROM records")"

# Mistakes, told clearly.
els_config "$WORK/ghost.conf" "\$a user = \"els-no-such-user\";"
out=$("$ELSD" -n -c "$WORK/ghost.conf" 2>&1)
check_eq "elsd -n: a user that does not exist is an error" 1 "$?"
check "naming the file, line and user" grep -q "ghost.conf:[0-9]*: 'user' = \"els-no-such-user\": no such user" <<<"$out"
els_config "$WORK/daemon.conf" "\$a user = \"daemon\";"
chmod 644 "$WORK/daemon.conf"
out=$(ip netns exec "$SRV" "${SETPRIV[@]}" timeout 10 "$ELSD" -c "$WORK/daemon.conf" 2>&1)
check_eq "not root and asked to become another user: exit 3" 3 "$?"
check "saying why" grep -q "elsd runs as uid $NOBODY, not root: it cannot switch" <<<"$out"
els_finish
