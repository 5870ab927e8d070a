#!/usr/bin/env bash
# The guest root filesystem of every ignis sandbox, built from Debian packages
# only (no image registry is needed). One recipe, two packagings: the Docker
# backend imports it as an image; the microVM backend packs it as an ext4 disk.
#
# Usage: rootfs.sh OUT_DIR
# Env:   IGNIS_DEBIAN_MIRROR (default http://deb.debian.org/debian)
#        IGNIS_DEBIAN_SUITE  (default bookworm)
#
# ignis hashes this file: changing it rebuilds the images.
set -euo pipefail

out=${1:?usage: rootfs.sh OUT_DIR}
mirror=${IGNIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${IGNIS_DEBIAN_SUITE:-bookworm}

if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is not installed: apt-get install debootstrap" >&2
    exit 2
fi

rm -rf "$out"
mkdir -p "$out"
echo "step: debootstrap $suite (minbase + python3 + nodejs) from $mirror"
# python3 (not python3-minimal: that lacks json); nodejs; ca-certificates for
# functions that later get a network.
debootstrap --variant=minbase --include=python3,nodejs,ca-certificates \
    "$suite" "$out" "$mirror" 2>&1 | sed -u 's/^/  /'

echo "step: trim"
rm -rf "$out"/usr/share/doc/* "$out"/usr/share/man/* "$out"/usr/share/info/* \
       "$out"/usr/share/locale/* "$out"/usr/share/lintian "$out"/usr/share/bash-completion \
       "$out"/var/cache/apt/* "$out"/var/lib/apt/lists/* "$out"/var/log/* \
       "$out"/var/cache/debconf/*-old "$out"/usr/lib/python3*/__pycache__ \
       "$out"/usr/lib/python3*/test "$out"/usr/lib/python3*/idlelib "$out"/usr/lib/python3*/tkinter
find "$out"/usr/lib/python3* -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
# Pre-compile the standard library: the root filesystem is read-only at run
# time, and cached bytecode makes the bootstrap start faster.
chroot "$out" /usr/bin/python3 -m compileall -q /usr/lib/python3 /usr/lib/python3.11 >/dev/null 2>&1 || true

echo "step: layout"
# Device nodes come from the sandbox (Docker's /dev, the microVM's devtmpfs).
rm -rf "$out"/dev/*
# Mount points of every sandbox: the channel directory, the code tmpfs, the
# bootstraps; /tmp is a tmpfs too.
mkdir -p "$out"/run/ignis "$out"/var/task "$out"/opt/ignis "$out"/tmp
chmod 1777 "$out"/tmp "$out"/var/task
# Sandboxes run as nobody (65534), which debootstrap creates.
echo "step: done ($(du -sm "$out" | cut -f1) MiB)"
