#!/usr/bin/env bash
# Makes the `bb` image (busybox from Debian's busybox-static) in the daemon BERTH_HOST/DOCKER_HOST
# points at, unless it is there already. Usage: scripts/busybox-image.sh [berth-binary] [tag]
set -euo pipefail
berth=${1:-berth}
tag=${2:-bb:latest}
if "$berth" image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
bb=$(command -v busybox || true)
[ -x /bin/busybox ] && bb=/bin/busybox
[ -n "$bb" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for a in $("$bb" --list); do [ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
tar -C "$dir" -c . | "$berth" import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
echo "made image $tag"
