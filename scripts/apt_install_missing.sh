#!/bin/sh
# Install the Debian packages whose command is missing, and change nothing else on the host.
#
#   sh scripts/apt_install_missing.sh COMMAND=PACKAGE ...      (make demo, make test)
#
# A pair counts as present when COMMAND is on PATH or in /usr/sbin (mosquitto's home, off a
# user's PATH) or dpkg has PACKAGE installed; present pairs are left alone, so an installed
# systemd is never touched. The missing packages are installed without their recommends and
# with --no-upgrade. If apt would still upgrade or remove an installed package to make room for
# them (a dependency that needs a newer libudev1, say), nothing is installed: the script names
# those packages and the command to run by hand, and exits 1.
set -eu

missing=
for pair in "$@"; do
    command=${pair%%=*}
    package=${pair#*=}
    if command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] ||
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" = installed ]; then
        continue
    fi
    missing="$missing $package"
done
[ -n "$missing" ] || exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
options="-y -qq --no-install-recommends --no-upgrade"
echo "installing$missing (apt-get install $options)"
$sudo apt-get update -qq
# A simulation needs no root; its "Inst NAME [OLD] (NEW ...)" lines are upgrades, "Remv" removals.
# shellcheck disable=SC2086 # one word per package and option
changes=$(apt-get install -s $options $missing | sed -n 's/^Inst \([^ ]*\) \[\([^]]*\)\] (\([^ ]*\).*/  upgrade \1 \2 -> \3/p; s/^Remv \([^ ]*\).*/  remove \1/p')
if [ -n "$changes" ]; then
    printf 'not installing%s: apt would also change installed packages:\n%s\n' "$missing" "$changes" >&2
    printf 'to accept that, run: %sapt-get install --no-install-recommends%s\n' "${sudo:+sudo }" "$missing" >&2
    exit 1
fi
# shellcheck disable=SC2086
$sudo apt-get install $options $missing
