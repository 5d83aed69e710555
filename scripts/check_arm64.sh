#!/usr/bin/env bash
# make check-arm64: fer-edge on arm64 under QEMU, step by step, compared with a native run.
#
#   bash scripts/check_arm64.sh [--target NAME ...]      (as root; make check-arm64 uses sudo)
#
# 1. Installs what the host lacks (mmdebstrap, qemu-user-static, proot, mosquitto, python3-venv).
# 2. Registers qemu-aarch64 with binfmt_misc, mounting binfmt_misc where needed; where it cannot
#    be mounted, falls back to proot -q qemu-aarch64-static.
# 3. Builds an arm64 Debian bookworm root filesystem with mmdebstrap from the Debian archive
#    this machine's apt uses, and caches it, keyed by what goes in it: the sources, the packages,
#    the CA certificates copied in. A rerun reuses it and the venvs made in it.
# 4. Makes a host venv with the checkout for the native reference, and runs
#    scripts/arm64/check.py: the README's install steps in the root filesystem, then
#    --version, check-config, install-service --dry-run, predict and run --no-realtime on
#    Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5) CPU models and on a Jetson stand-in, each
#    compared with the native run. Exit status 1 on any failed step or difference.
#
# Settings (environment; not FER_EDGE_*, which fer-edge reads as config overrides):
#   CHECK_ARM64_CACHE        the cache (default /var/cache/fer-edge-arm64); remove it for a cold run
#   CHECK_ARM64_CA_CERTS     auto (default): copy the host's /usr/local/share/ca-certificates/*.crt
#                            into the root filesystem, where there are any (a package index reached
#                            through a local CA must be trusted inside too); none; or a folder of *.crt
#   CHECK_ARM64_MIRROR       a Debian archive URI, instead of the one apt's sources name
#   ARM64_EMULATION          binfmt or proot (default: binfmt where binfmt_misc works)
#   PYTHON                   the host Python for the native venv (default python3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
# python3-venv and mosquitto-clients: the README's Pi steps; python3-opencv: the Jetson stand-in
# (Debian's, like JetPack's: numpy 1.x, no cv2.data); ca-certificates: pip's trust store.
PACKAGES=python3-venv,mosquitto-clients,python3-opencv,ca-certificates
RECIPE=1  # raise when the way the root filesystem is made changes
CACHE=${CHECK_ARM64_CACHE:-/var/cache/fer-edge-arm64}
PYTHON=${PYTHON:-python3}

say() { printf 'check-arm64: %s\n' "$*"; }
die() { printf 'check-arm64: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "needs root (chroot, mounts, binfmt_misc); run it as root"
    exec sudo --preserve-env=CHECK_ARM64_CACHE,CHECK_ARM64_CA_CERTS,CHECK_ARM64_MIRROR,ARM64_EMULATION,PYTHON,http_proxy,https_proxy,no_proxy,PIP_INDEX_URL,PIP_EXTRA_INDEX_URL \
        bash "$0" "$@"
fi
started=$(date +%s)

host_tools() {
    local missing=() tool package
    for pair in mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static proot:proot \
                arch-test:arch-test mosquitto:mosquitto; do
        tool=${pair%%:*} package=${pair#*:}
        command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$package")
    done
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} with apt"
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# qemu-aarch64 in binfmt_misc, from qemu-user-static's own definition; "binfmt" or "proot".
emulation() {
    local fs=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    if [ "${ARM64_EMULATION:-}" = proot ]; then echo proot; return; fi
    if [ ! -e "$fs/register" ]; then mount -t binfmt_misc binfmt_misc "$fs" 2>/dev/null || true; fi
    if [ -e "$fs/register" ]; then
        if [ ! -e "$fs/qemu-aarch64" ] && [ -f "$conf" ]; then
            grep -v '^#' "$conf" > "$fs/register" 2>/dev/null || true
        fi
        if [ -e "$fs/qemu-aarch64" ] && ! grep -q '^enabled' "$fs/qemu-aarch64"; then
            echo 1 > "$fs/qemu-aarch64" 2>/dev/null || true
        fi
    fi
    if arch-test arm64 >/dev/null 2>&1; then
        echo binfmt
    elif [ "${ARM64_EMULATION:-}" = binfmt ]; then
        die "ARM64_EMULATION=binfmt, but arm64 binaries do not run through binfmt_misc here"
    else
        echo proot
    fi
}

# The apt sources of the root filesystem: this machine's Debian archive, suites renamed to $SUITE.
rootfs_sources() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-$SUITE}")
    if [ -n "${CHECK_ARM64_MIRROR:-}" ]; then
        printf 'deb %s %s main\n' "$CHECK_ARM64_MIRROR" "$SUITE" "$CHECK_ARM64_MIRROR" "$SUITE-updates"
        return
    fi
    {
        # deb822 stanzas (debian.sources and the like), then one-line sources.list entries
        for file in /etc/apt/sources.list.d/*.sources; do
            [ -f "$file" ] || continue
            awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
                                      for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print uris[i], suites[j]
                                    types = ""; enabled = ""; nu = ns = 0 }
                 /^[[:space:]]*$/ { flush(); next }
                 /^#/ { next }
                 tolower($1) == "types:" { types = substr($0, index($0, ":") + 1) }
                 tolower($1) == "enabled:" { enabled = tolower($2) }
                 tolower($1) == "uris:" { nu = split(substr($0, index($0, ":") + 1), uris, " ") }
                 tolower($1) == "suites:" { ns = split(substr($0, index($0, ":") + 1), suites, " ") }
                 END { flush() }' "$file"
        done
        for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$file" ] || continue
            sed -e 's/\[[^]]*\]//' "$file" | awk '$1 == "deb" { print $2, $3 }'
        done
    } | awk -v host="$codename" -v suite="$SUITE" '
        { s = $2; if (s == host) s = suite; else if (index(s, host "-") == 1) s = suite substr(s, length(host) + 1) }
        s ~ "^" suite "(-updates|-security)?$" && !seen[$1 " " s]++ { printf "deb %s %s main\n", $1, s }'
}

ca_certs() {
    local setting=${CHECK_ARM64_CA_CERTS:-auto} dir
    case $setting in
    none) return ;;
    auto) dir=/usr/local/share/ca-certificates ;;
    *) dir=$setting; [ -d "$dir" ] || die "CHECK_ARM64_CA_CERTS: $dir is not a folder" ;;
    esac
    find "$dir" -maxdepth 2 -name '*.crt' -type f 2>/dev/null | sort
}

build_rootfs() {
    local target=$1 partial=$1.partial
    local -a sources certs args
    mapfile -t sources < <(rootfs_sources)
    mapfile -t certs < <(ca_certs)
    args=(--variant=apt --architectures=arm64 --include="$PACKAGES" --quiet)
    if [ ${#certs[@]} -gt 0 ]; then
        args+=(--customize-hook="copy-in ${certs[*]} /usr/local/share/ca-certificates/"
               --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1')
    fi
    local proxy=""
    eval "$(apt-config shell proxy Acquire::http::Proxy)"
    if [ -n "$proxy" ]; then args+=(--aptopt="Acquire::http::Proxy \"$proxy\""); fi
    if [ "$EMULATION" = proot ]; then
        die "building the root filesystem needs binfmt_misc (mmdebstrap runs dpkg in it): build it" \
            "once where binfmt_misc can be mounted and point CHECK_ARM64_CACHE at that cache"
    fi
    rm -rf "$partial"
    say "building the arm64 $SUITE root filesystem with mmdebstrap (minutes): ${sources[*]}"
    local began=$SECONDS
    nice -n 5 mmdebstrap "${args[@]}" "$SUITE" "$partial" "${sources[@]}"
    touch "$partial/.fer-edge-check-complete"
    mv "$partial" "$target"
    say "root filesystem built in $((SECONDS - began)) s"
}

# The rootfs's pip reaches the index the host's pip does: the host's index settings (remote
# ones; the last file wins, as in pip) and, with CA certificates copied in, the system trust
# store that holds them. PIP_INDEX_URL and proxies in the environment pass through in_rootfs.sh.
rootfs_pip_conf() {
    echo "# written by check_arm64.sh from the host's pip configuration"
    echo "[global]"
    "$venv/bin/python" -m pip config list 2>/dev/null \
        | sed -n "s/^[a-z]*\.\(index-url\|extra-index-url\|trusted-host\)='\(.*\)'$/\1 \2/p" \
        | awk '{ last[$1] = $0 } END { for (name in last) print last[name] }' \
        | while read -r name values; do
            kept=$(printf '%s\n' $values | grep -E '^(https?://|[a-zA-Z0-9.-]+$)' | tr '\n' ' ' || true)
            skipped=$(printf '%s\n' $values | grep -vE '^(https?://|[a-zA-Z0-9.-]+$)' | tr '\n' ' ' || true)
            if [ -n "$kept" ]; then echo "$name = $kept"; fi
            if [ -n "$skipped" ]; then echo "# not reachable from the root filesystem: $name $skipped"; fi
        done
    if [ -n "$(ca_certs)" ]; then echo "cert = /etc/ssl/certs/ca-certificates.crt"; fi
}

host_tools
EMULATION=$(emulation)
export ARM64_EMULATION=$EMULATION
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE"

sources=$(rootfs_sources)
[ -n "$sources" ] || die "no Debian $SUITE archive found in /etc/apt/sources.list.d/*.sources or sources.list; set CHECK_ARM64_MIRROR"
key=$({ echo "recipe $RECIPE arm64 $SUITE $PACKAGES"; echo "$sources"
        ca_certs | while read -r cert; do sha256sum < "$cert"; done; } | sha256sum | cut -c1-16)
rootfs=$CACHE/rootfs-$key
if [ -f "$rootfs/.fer-edge-check-complete" ]; then
    say "emulation: $EMULATION; root filesystem: $rootfs (cached)"
else
    say "emulation: $EMULATION; root filesystem: $rootfs (new)"
    build_rootfs "$rootfs"
fi
for old in "$CACHE"/rootfs-*; do
    if [ "$old" != "$rootfs" ] && [ -d "$old" ]; then say "not used any more (remove it to free space): $old"; fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fer-edge-arm64.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$CACHE/pip"
ln -s "$CACHE/pip" "$work/pip-cache"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
        | tar -C "$ROOT" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$work/src" -xf -
else
    tar -C "$ROOT" --exclude=./.venv --exclude=./build -cf - . | tar -C "$work/src" -xf -
fi

venv=$CACHE/host-venv-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ ! -x "$venv/bin/python" ]; then
    say "creating the native venv $venv"
    "$PYTHON" -m venv "$venv"
fi
say "installing the checkout natively (the reference)"
"$venv/bin/python" -m pip install "$work/src" "scikit-image>=0.22" > "$work/host-pip.log" 2>&1 \
    || { tail -20 "$work/host-pip.log"; die "pip could not install the checkout in $venv"; }

rootfs_pip_conf > "$rootfs/etc/pip.conf"
if grep -q '^# not reachable' "$rootfs/etc/pip.conf"; then
    say "$(sed -n 's/^# not reachable/not reachable/p' "$rootfs/etc/pip.conf")"
fi

status=0
"$venv/bin/python" "$ROOT/scripts/arm64/check.py" --rootfs "$rootfs" --work "$work" "$@" || status=$?
say "took $(( $(date +%s) - started )) s"
exit $status
