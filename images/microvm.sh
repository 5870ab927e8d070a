#!/usr/bin/env bash
# Packages the guest root filesystem (images/rootfs.sh) for the microVM
# backend: Debian's kernel, a tiny busybox initramfs that loads the virtio
# and ext4 modules and switches to the real root, and the root filesystem
# as an ext4 image built without loop mounts (mkfs.ext4 -d).
#
# Usage: microvm.sh ROOTFS_DIR BOOTSTRAP_DIR OUT_DIR
#   BOOTSTRAP_DIR holds bootstrap.py, bootstrap.js and guest-init.
# Needs: linux-image-amd64, busybox-static, e2fsprogs.
set -euo pipefail

rootfs=${1:?usage: microvm.sh ROOTFS_DIR BOOTSTRAP_DIR OUT_DIR}
boot=${2:?}
out=${3:?}

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
[ -n "$kernel" ] || { echo "no kernel in /boot: apt-get install linux-image-amd64" >&2; exit 2; }
kver=${kernel#/boot/vmlinuz-}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q static || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is not installed" >&2; exit 2; }
command -v mkfs.ext4 >/dev/null || { echo "e2fsprogs is not installed" >&2; exit 2; }

mkdir -p "$out"
# Absolute paths: the initramfs is packed from inside its directory.
rootfs=$(realpath "$rootfs"); boot=$(realpath "$boot"); out=$(realpath "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "step: kernel $kver"
cp "$kernel" "$out/vmlinuz"

echo "step: initramfs"
ird="$work/initramfs"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,modules}
cp "$busybox" "$ird/bin/busybox"
for tool in sh mount insmod sleep switch_root cat mkdir; do ln -s busybox "$ird/bin/$tool"; done
for m in virtio_ring virtio virtio_mmio virtio_blk crc16 mbcache jbd2 crc32c_generic ext4 virtio_console virtio_rng; do
    f=$(find "/lib/modules/$kver" -name "$m.ko" | head -1)
    [ -n "$f" ] && cp "$f" "$ird/modules/"
done
cat > "$ird/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_mmio virtio_blk crc16 mbcache jbd2 crc32c_generic ext4 virtio_console virtio_rng; do
    [ -f /modules/$m.ko ] && insmod /modules/$m.ko 2>/dev/null
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
mount -t ext4 -o ro /dev/vda /newroot || { echo "ignis: cannot mount the root disk"; echo o > /proc/sysrq-trigger; }
mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev tmpfs /newroot/tmp
mount -t tmpfs -o size=256m,mode=1777,nosuid,nodev tmpfs /newroot/var/task
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /opt/ignis/guest-init
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$out/initramfs.cpio.gz")

echo "step: root filesystem image"
stage="$work/root"
cp -a "$rootfs" "$stage"
rm -f "$stage/.complete"
install -m 0644 "$boot/bootstrap.py" "$stage/opt/ignis/bootstrap.py"
install -m 0644 "$boot/bootstrap.js" "$stage/opt/ignis/bootstrap.js"
install -m 0755 "$boot/guest-init" "$stage/opt/ignis/guest-init"
size=$(( $(du -sm "$stage" | cut -f1) + 64 ))
mkfs.ext4 -q -F -O ^has_journal -L ignis -d "$stage" "$out/rootfs.ext4.tmp" "${size}M"
mv "$out/rootfs.ext4.tmp" "$out/rootfs.ext4"
echo "step: done ($(du -sm "$out" | cut -f1) MiB)"
