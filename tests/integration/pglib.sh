# shellcheck shell=bash disable=SC2034
# A private PostgreSQL server for the sweep tests, from Debian's packages: a cluster in its own
# temporary directory, run as the postgres user, its socket in that directory, and TCP only on
# 127.0.0.1 (a free port) with TLS required (a self-signed certificate for IP 127.0.0.1, so
# that sslmode=verify-full can be tested). Source after lib.sh; call pg_start, and pg_stop in
# the EXIT trap. Sets PGCONN (a libpq connection string for els-sweep) and pq (run SQL).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDIR=
PGCONN=

pg_start() {
	[[ -x $PGBIN/initdb ]] || { echo "PostgreSQL 15 is not installed ($PGBIN)"; return 1; }
	id postgres >/dev/null 2>&1 || { echo "no postgres user"; return 1; }
	PGDIR=$(mktemp -d /tmp/els-pg.XXXXXX) || return 1
	chown postgres: "$PGDIR" && chmod 700 "$PGDIR"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres --no-sync \
		>"$PGDIR/initdb.log" 2>&1 || { cat "$PGDIR/initdb.log"; return 1; }
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$PGDIR/data/server.key" -out "$PGDIR/data/server.crt" 2>/dev/null || return 1
	cp "$PGDIR/data/server.crt" "$PGDIR/ca.crt"
	chown postgres: "$PGDIR/data/server.key" "$PGDIR/data/server.crt"
	chmod 600 "$PGDIR/data/server.key"
	PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >>"$PGDIR/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $PGPORT
		unix_socket_directories = '$PGDIR'
		ssl = on
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 20
	EOF
	# TLS or nothing over TCP; the socket (for setup) needs none
	cat >"$PGDIR/data/pg_hba.conf" <<-EOF
		local all all trust
		hostssl all all 127.0.0.1/32 trust
	EOF
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
		start >/dev/null || { cat "$PGDIR/server.log"; return 1; }
	runuser -u postgres -- "$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -XAtq -c "CREATE DATABASE els" \
		postgres >/dev/null || return 1
	PGCONN="host=127.0.0.1 port=$PGPORT dbname=els user=postgres sslrootcert=$PGDIR/ca.crt"
}

# pq SQL: runs one statement over the socket, prints unaligned rows.
pq() { runuser -u postgres -- "$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -XAtq -v ON_ERROR_STOP=1 -c "$1" els; }

pg_stop() {
	[[ -n $PGDIR ]] || return 0
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$PGDIR"
	PGDIR=
}
