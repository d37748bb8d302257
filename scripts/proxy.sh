#!/usr/bin/env bash
# Runs Caddy (Debian's package, installed if missing) as a reverse proxy
# on a loopback port in front of iotad, with scripts/proxy/Caddyfile, in
# the foreground until it is stopped. For trying iotad behind a proxy and
# for the test that does so; docs/DEPLOY.md has the setup for a real
# domain.
#
#   scripts/proxy.sh LISTEN UPSTREAM [STATE_DIR]
#   scripts/proxy.sh 127.0.0.1:8080 127.0.0.1:1984
#
# LISTEN is a loopback host:port; UPSTREAM is iotad's --addr. Start iotad
# with --trusted-proxies 127.0.0.1/32 so that it reads the client address
# from the X-Forwarded-For header Caddy sets. STATE_DIR (default: a new
# temporary directory) is where Caddy may write.
#
# As root it installs caddy with apt-get when it is missing. On a machine
# that runs systemd, installing Debian's caddy also starts its own
# caddy.service on port 80: stop it with `systemctl disable --now caddy`
# if that is not wanted.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 LISTEN UPSTREAM [STATE_DIR]   e.g. $0 127.0.0.1:8080 127.0.0.1:1984" >&2
	exit 2
fi
listen=$1 upstream=$2 state=${3:-}

port=${listen##*:}
bind=${listen%:*}
bind=${bind#[}
bind=${bind%]}
case $bind in
localhost) bind=127.0.0.1 ;;
127.*|::1) ;;
*)
	echo "$0: LISTEN must be a loopback address (127.x.x.x, [::1] or localhost), not $listen" >&2
	exit 2
	;;
esac
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
	echo "$0: LISTEN $listen has no port" >&2
	exit 2
fi
if [[ $upstream != *:* ]]; then
	echo "$0: UPSTREAM must be host:port (iotad's --addr), not $upstream" >&2
	exit 2
fi

if ! command -v caddy >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		echo "$0: caddy is not installed; as root: apt-get install --no-install-recommends caddy" >&2
		exit 1
	fi
	echo "$0: installing caddy" >&2
	# Other scripts may be installing packages at the same time: wait for
	# dpkg's lock rather than fail on it.
	apt-get -o DPkg::Lock::Timeout=600 update >&2
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends caddy >&2
fi

if [ -z "$state" ]; then
	state=$(mktemp -d -t iotad-proxy.XXXXXX)
fi
mkdir -p "$state"
export IOTAD_PROXY_BIND=$bind IOTAD_PROXY_PORT=$port IOTAD_UPSTREAM=$upstream IOTAD_PROXY_STATE=$state
# Caddy saves its running config under XDG_CONFIG_HOME: keep that in the
# state directory too, not in the home of whoever runs this.
export XDG_CONFIG_HOME=$state/config XDG_DATA_HOME=$state/data
exec caddy run --config "$here/proxy/Caddyfile" --adapter caddyfile
