#!/usr/bin/env bash
# Builds the release binaries and installs them with their man pages and shell completions:
#   $PREFIX/bin/{berth,berthd,berth-shim,berth-registry}   (every [[bin]] of the root Cargo.toml)
#   $PREFIX/share/man/man1/berth.1, berth-run.1, berth-container-ls.1, ...
#   $PREFIX/share/bash-completion/completions/berth
#   $PREFIX/share/zsh/site-functions/_berth
#   $PREFIX/share/fish/vendor_completions.d/berth.fish
# With --docker-alias, also $PREFIX/bin/docker -> berth (unless a docker is there already): what
# `ssh HOST docker system dial-stdio` runs for an ssh:// daemon address, on a host with berth only.
# PREFIX defaults to /usr/local; DESTDIR stages the tree elsewhere (packaging), as make install does.
# Usage: [PREFIX=/usr] [DESTDIR=/tmp/stage] scripts/install.sh [--no-build] [--docker-alias]
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
build=1
docker_alias=0
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --docker-alias) docker_alias=1 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if [ "$build" = 1 ]; then
    cargo build --release --bins
fi
release="${CARGO_TARGET_DIR:-target}/release"

# The binaries the project ships: the [[bin]] entries of the root package.
mapfile -t bins < <(awk '
    /^\[\[bin\]\]/ { inbin = 1; next }
    /^\[/ { inbin = 0 }
    inbin && $1 == "name" { gsub(/[" ]/, "", $3); print $3 }
' Cargo.toml)
if [ "${#bins[@]}" -eq 0 ]; then
    echo "install.sh: no [[bin]] entries found in Cargo.toml" >&2
    exit 1
fi

root="$DESTDIR$PREFIX"
bindir="$root/bin"
mandir="$root/share/man/man1"
bashdir="$root/share/bash-completion/completions"
zshdir="$root/share/zsh/site-functions"
fishdir="$root/share/fish/vendor_completions.d"
install -d "$bindir" "$mandir" "$bashdir" "$zshdir" "$fishdir"

for b in "${bins[@]}"; do
    if [ ! -x "$release/$b" ]; then
        echo "install.sh: $release/$b is missing (build with: cargo build --release --bins)" >&2
        exit 1
    fi
    install -m 0755 "$release/$b" "$bindir/$b"
    echo "installed $bindir/$b"
done

berth="$release/berth"
# Pages and scripts come from the command definitions; the scripts run `berth` from PATH when
# completing, so they hold no path of this (possibly staged) tree.
"$berth" __man "$mandir"
echo "installed man pages in $mandir"
"$berth" completion bash > "$bashdir/berth"
"$berth" completion zsh > "$zshdir/_berth"
"$berth" completion fish > "$fishdir/berth.fish"
chmod 0644 "$bashdir/berth" "$zshdir/_berth" "$fishdir/berth.fish" "$mandir"/berth*.1
echo "installed completions: $bashdir/berth $zshdir/_berth $fishdir/berth.fish"

if [ "$docker_alias" = 1 ]; then
    if [ -e "$bindir/docker" ] || [ -L "$bindir/docker" ]; then
        if [ "$(readlink "$bindir/docker")" = berth ]; then
            echo "kept $bindir/docker -> berth"
        else
            echo "install.sh: $bindir/docker exists and is not berth's alias: left as it is" >&2
        fi
    else
        ln -s berth "$bindir/docker"
        echo "installed $bindir/docker -> berth"
    fi
fi
