# shellcheck shell=bash disable=SC2034 # the python helpers are read by t_systemd_boot.sh
# Helpers for t_systemd_boot.sh: a Debian 12 root filesystem cached as a tarball, booted with
# systemd as PID 1 by systemd-nspawn inside a network namespace this run creates, and the
# python helpers that count what reaches the container. Sourced after lib.sh.
#
# Facts these rely on (checked on the CI machines): nspawn finds the cgroup tree when started
# under `nsenter --net=/run/netns/NAME` (`ip netns exec` remounts /sys and hides it); it keeps
# CAP_NET_ADMIN only when asked (--capability), since it does not know the namespace is ours;
# `nsenter -t PID1 -a` runs a command inside the booted container.

: "${ELS_TEST_CACHE:=/var/cache/els-agent-test}"
: "${ELS_DEBIAN_MIRROR:=http://deb.debian.org/debian}"
SD_NSPAWN_PID="" SD_PID1=""

# The packages the container needs besides the .deb's own Depends (given as $1, the control
# field): an init, the tools the scenario runs inside, the firewall loader it restarts.
sd_packages() {
	local depends=$1
	{
		printf '%s\n' systemd systemd-sysv dbus iproute2 procps nftables iptables sqlite3 \
			python3-minimal
		# "a (>= 1), b | c" -> a, b: the first choice of each alternative, no versions
		tr ',' '\n' <<<"$depends" | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g'
	} | grep -v '^$' | sort -u
}

# Prints the path of a root filesystem tarball for the package list in $1 (one per line),
# building it with mmdebstrap when the cache has none. The key is the list's hash, so a new
# dependency makes a new tarball and never a stale container.
sd_rootfs() {
	local list=$1 key tar
	key=$(printf '%s' "$list" | sha256sum | cut -c1-16)
	tar=$ELS_TEST_CACHE/debian12-$key.tar
	mkdir -p "$ELS_TEST_CACHE" || return 1
	(
		# Two runs on one machine build it once: the second waits for the first.
		flock 9
		if [[ ! -s $tar ]]; then
			log "no cached root filesystem for this package list: mmdebstrap (one time)" >&2
			mmdebstrap --variant=minbase --format=tar --include="$(paste -sd, <<<"$list")" bookworm \
				"$tar.tmp" "$ELS_DEBIAN_MIRROR" >"$WORK/mmdebstrap.log" 2>&1 ||
				{ tail -n 20 "$WORK/mmdebstrap.log" >&2; rm -f "$tar.tmp"; exit 1; }
			mv "$tar.tmp" "$tar"
		fi
	) 9>"$ELS_TEST_CACHE/lock" || return 1
	echo "$tar"
}

# Boots ROOT (a directory) as machine NAME inside network namespace NS; sets SD_PID1.
sd_boot() {
	local root=$1 name=$2 ns=$3
	# nspawn starts from here; its cwd must not be inside the tree it will boot
	(cd / && exec nsenter --net="/run/netns/$ns" systemd-nspawn -D "$root" -M "$name" -b \
		--register=no --keep-unit --capability=CAP_NET_ADMIN --console=passive \
		>"$WORK/nspawn.log" 2>&1) &
	SD_NSPAWN_PID=$!
	for _ in $(seq 100); do
		SD_PID1=$(pgrep -P "$SD_NSPAWN_PID" -x systemd | head -1)
		[[ -n $SD_PID1 ]] && break
		kill -0 "$SD_NSPAWN_PID" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $SD_PID1 ]] || { cat "$WORK/nspawn.log"; return 1; }
	# "running", or "degraded" when a unit irrelevant here failed
	# (systemctl fails at once until the container's bus is up: ask again)
	local state=
	for _ in $(seq 90); do
		state=$(timeout 90 nsenter -t "$SD_PID1" -a systemctl is-system-running --wait \
			2>/dev/null)
		[[ $state == running || $state == degraded ]] && break
		sleep 1
	done
	[[ $state == running || $state == degraded ]] ||
		{ echo "container state: $state"; cat "$WORK/nspawn.log"; return 1; }
}

# Runs a command inside the container (all its namespaces).
in_ct() { nsenter -t "$SD_PID1" -a "$@"; }

# Stops the container: its PID 1 is killed, which ends every process of its PID namespace,
# then nspawn exits. Both PIDs are this run's own.
sd_kill() {
	[[ -n $SD_PID1 ]] && kill -KILL "$SD_PID1" 2>/dev/null
	if [[ -n $SD_NSPAWN_PID ]]; then
		for _ in $(seq 50); do kill -0 "$SD_NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SD_NSPAWN_PID" 2>/dev/null
		wait "$SD_NSPAWN_PID" 2>/dev/null
	fi
	SD_PID1="" SD_NSPAWN_PID=""
}

# The counter at the denied port: runs in the container's network namespace (behind its
# steering rules, as a service there would be) and appends one line per UDP datagram or TCP
# connection that reaches it.
sd_counter_py='
import socket, sys, select
port, out = int(sys.argv[1]), sys.argv[2]
socks = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    t.bind((addr, port)); t.listen(64)
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((addr, port))
    socks += [t, u]
with open(out, "a", buffering=1) as f:
    while True:
        for s in select.select(socks, [], [])[0]:
            if s.type == socket.SOCK_STREAM:
                c, peer = s.accept(); c.close(); f.write("tcp %s\n" % (peer[0],))
            else:
                _, peer = s.recvfrom(2048); f.write("udp %s\n" % (peer[0],))
'

# The prober: from its own namespace, every 50 ms a UDP datagram and a TCP connection attempt
# to the denied port over IPv4 and IPv6; one line per attempt that the far end accepted.
sd_prober_py='
import socket, sys, time
port, out, targets = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
n = 0
with open(out, "a", buffering=1) as f:
    while True:
        for t in targets:
            fam = socket.AF_INET6 if ":" in t else socket.AF_INET
            u = socket.socket(fam, socket.SOCK_DGRAM); u.sendto(b"probe %d" % n, (t, port)); u.close()
            s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.2)
            try:
                s.connect((t, port)); f.write("connected %s\n" % t)
            except OSError:
                pass
            s.close()
        n += 1
        with open(out + ".sent", "w") as g:
            g.write("%d\n" % n)
        time.sleep(0.05)
'

# The long-lived permitted connection: an echo server in the container's namespace, and a
# client that sends a line every 200 ms and waits for its echo. The client writes "alive N"
# after each echo and "broken: why" when an echo has not come back within 20 s (TCP's own
# retransmissions carry it over a restart's short drop window) or the connection fails.
sd_echo_server_py='
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
def serve(c):
    while True:
        d = c.recv(4096)
        if not d:
            return
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
sd_echo_client_py='
import socket, sys, time
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def status(text):
    with open(out + ".tmp", "w") as f:
        f.write(text + "\n")
    import os; os.replace(out + ".tmp", out)
try:
    s = socket.create_connection((host, port), timeout=5)
except OSError as e:
    status("broken: connect: %s" % e); sys.exit(1)
s.settimeout(20)
n = 0
while True:
    msg = b"ping %d\n" % n
    try:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(len(msg) - len(got))
            if not d:
                status("broken: closed by the server after %d echoes" % n); sys.exit(1)
            got += d
    except OSError as e:
        status("broken: %s after %d echoes" % (e, n)); sys.exit(1)
    n += 1
    status("alive %d" % n)
    time.sleep(0.2)
'
