#!/usr/bin/env bash
# Installs what ignis needs on Debian and makes sure a Docker engine runs.
# Idempotent; run as root or with sudo available.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v python3 >/dev/null || need+=(python3)
command -v node >/dev/null || need+=(nodejs)
# The web console is built with npm (esbuild; web/package-lock.json).
command -v npm >/dev/null || need+=(npm)
command -v cc >/dev/null || need+=(gcc libc6-dev)
# The microVM backend: QEMU, a kernel to boot, busybox for the initramfs.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v file >/dev/null || need+=(file)
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "deps: cargo is missing: install a Rust toolchain (rustup, see rust-toolchain.toml)" >&2
    exit 1
fi

# A Docker engine: the one already running, systemd's, or our own dockerd.
docker_ok() { [ -S /var/run/docker.sock ] && $SUDO docker version >/dev/null 2>&1; }
if ! docker_ok; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        $SUDO systemctl start docker || true
    fi
fi
if ! docker_ok; then
    # A dockerd that was killed leaves its pid file, and a new one refuses
    # to start while the file names a live process: drop it when it names
    # none (or a zombie).
    if [ -f /var/run/docker.pid ]; then
        pid=$(cat /var/run/docker.pid)
        state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        case "$state" in
        "" | Z*) $SUDO rm -f /var/run/docker.pid ;;
        esac
    fi
    echo "deps: starting dockerd (log: /var/log/ignis-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/ignis-dockerd.log 2>&1 &'
    # After a crash it first cleans up what the old one left: give it time.
    for _ in $(seq 1 240); do
        docker_ok && break
        sleep 0.5
    done
fi
if ! docker_ok; then
    echo "deps: the Docker engine did not start; see /var/log/ignis-dockerd.log" >&2
    tail -20 /var/log/ignis-dockerd.log >&2 || true
    exit 1
fi
echo "deps: docker engine $($SUDO docker version --format '{{.Server.Version}}') ready"
