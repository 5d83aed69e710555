#!/usr/bin/env bash
# Run one command inside the arm64 root filesystem, under QEMU user emulation.
#
#   scripts/arm64/in_rootfs.sh ROOTFS CPU WORK -- COMMAND [ARG...]
#
# CPU is a QEMU CPU model (cortex-a72: Pi 4, cortex-a76: Pi 5); QEMU_CPU passes it to every
# process the command starts. The command sees WORK (a host folder: the checkout's copy, the
# inputs) at /work, WORK/pip-cache as pip's cache, the host's resolv.conf, a fresh /tmp, and,
# where WORK/cpuinfo/CPU exists, that file as /proc/cpuinfo: qemu 7.2 shows the guest the host's
# x86 cpuinfo, and LiteRT's CPU-feature probe crashes on it while building the interpreter.
#
# ARM64_EMULATION=binfmt (default): chroot in a private mount namespace, so every mount goes
# away with the command; the kernel runs aarch64 binaries through qemu-aarch64 (binfmt_misc).
# ARM64_EMULATION=proot: proot -q qemu-aarch64-static, where binfmt_misc cannot be mounted.
# The environment is emptied but for the proxy and pip index variables, which pass through.
set -euo pipefail

if [ $# -lt 5 ] || [ "$4" != "--" ]; then
    echo "usage: $0 ROOTFS CPU WORK -- COMMAND [ARG...]" >&2
    exit 2
fi
rootfs=$1 cpu=$2 work=$3
shift 4

guest_env=(HOME=/root LANG=C.UTF-8 QEMU_CPU="$cpu"
           PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
            PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
    if [ -n "${!name:-}" ]; then guest_env+=("$name=${!name}"); fi
done
cpuinfo=$work/cpuinfo/$cpu
mkdir -p "$work/pip-cache" "$work/tmp"

case ${ARM64_EMULATION:-binfmt} in
binfmt)
    # shellcheck disable=SC2016  # the inner script expands its own positional parameters
    exec unshare --mount --propagation private -- bash -euc '
        rootfs=$1 cpu=$2 work=$3 cpuinfo=$4; shift 4
        mount -t proc proc "$rootfs/proc"
        if [ -f "$cpuinfo" ]; then mount --bind "$cpuinfo" "$rootfs/proc/cpuinfo"; fi
        mount -t sysfs -o ro sysfs "$rootfs/sys"
        mount --rbind /dev "$rootfs/dev"
        mount -t tmpfs tmpfs "$rootfs/tmp"
        mkdir -p "$rootfs/work" "$rootfs/root/.cache/pip"
        mount --bind "$work" "$rootfs/work"
        mount --bind "$work/pip-cache" "$rootfs/root/.cache/pip"
        touch "$rootfs/etc/resolv.conf"
        mount --bind /etc/resolv.conf "$rootfs/etc/resolv.conf"
        exec chroot "$rootfs" "$@"
    ' in_rootfs "$rootfs" "$cpu" "$work" "$cpuinfo" /usr/bin/env -i "${guest_env[@]}" "$@"
    ;;
proot)
    binds=(-b /dev -b /proc -b /sys -b "$work:/work" -b "$work/pip-cache:/root/.cache/pip"
           -b "$work/tmp:/tmp" -b /etc/resolv.conf)
    if [ -f "$cpuinfo" ]; then binds+=(-b "$cpuinfo:/proc/cpuinfo"); fi
    QEMU_CPU=$cpu exec proot -0 -q qemu-aarch64-static -r "$rootfs" "${binds[@]}" -w / \
        /usr/bin/env -i "${guest_env[@]}" "$@"
    ;;
*)
    echo "$0: ARM64_EMULATION must be binfmt or proot, not '$ARM64_EMULATION'" >&2
    exit 2
    ;;
esac
