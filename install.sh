#!/bin/sh
# Installs tether from a release (contract section 8). POSIX sh: runs under dash and
# busybox ash.
#
#   TETHER_DOWNLOAD_URL=https://…/releases/latest/download sh install.sh [--prefix DIR] [--key KEY]
#
# TETHER_DOWNLOAD_URL is the directory of one release (the latest, or a version's): it
# holds SHA256SUMS, tether-<version>-<target>.tar.gz and its .sha256. The archive for
# this machine (from `uname -sm`) is downloaded, its hash checked against both, and
# bin/tether + lib/tether/{tether-host,tether-ptyd} are installed under DIR (default
# ~/.local; with no HOME, --prefix is required), each by rename, so running it again
# upgrades in place. Downloads are https only (plain http only to loopback), redirects
# too. When minisign is installed, SHA256SUMS's signature is checked against the release
# key (--key names another minisign public key, for a test release signed with a test
# key); when it is not, the last line says so.
#
# A download error, a hash mismatch or an unknown platform installs nothing and exits 1
# with one line saying why.
set -eu

# keys/release.pub: the key SHA256SUMS.minisig is checked against (a test keeps the two equal).
RELEASE_KEY="RWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5"

die() {
    echo "tether install: $*; nothing was installed" >&2
    exit 1
}

prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] || die "--prefix needs a directory"
            prefix=$2
            shift 2
            ;;
        --prefix=*)
            prefix=${1#--prefix=}
            shift
            ;;
        --key)
            [ $# -ge 2 ] || die "--key needs a minisign public key"
            RELEASE_KEY=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown option $1 (usage: install.sh [--prefix DIR] [--key KEY])" ;;
    esac
done
if [ -z "$prefix" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set: pass --prefix DIR to say where tether goes"
    prefix="$HOME/.local"
fi
base=${TETHER_DOWNLOAD_URL:-}
[ -n "$base" ] || die "TETHER_DOWNLOAD_URL is not set: point it at a release's download directory"
base=${base%/}
# True when the http:// URL $1 names this machine: localhost, 127.0.0.0/8 or [::1].
loopback() {
    hostport=${1#http://}
    hostport=${hostport%%/*}
    case "$hostport" in
        "[::1]" | "[::1]:"*) return 0 ;;
    esac
    host=${hostport%:*}
    case "$host" in
        localhost) return 0 ;;
        *[!0-9.]*) return 1 ;;
        127.*) return 0 ;;
    esac
    return 1
}
# https only; plain http only to this machine (contract section 9's plaintext rule).
case "$base" in
    https://*) protocols="=https" ;;
    http://*) loopback "$base" && protocols="=http,https" ||
        die "refusing $base: plain http:// is allowed only to loopback; use https://" ;;
    *) die "refusing $base: downloads are https:// only (plain http:// only to loopback)" ;;
esac

case "$(uname -s) $(uname -m)" in
    "Linux x86_64" | "Linux amd64") target=linux-x64 ;;
    "Linux aarch64" | "Linux arm64") target=linux-arm64 ;;
    "Darwin arm64" | "Darwin aarch64") target=darwin-arm64 ;;
    "Darwin x86_64") target=darwin-x64 ;;
    *) die "unsupported platform: $(uname -s) $(uname -m) (tether ships linux-x64, linux-arm64, darwin-arm64, darwin-x64)" ;;
esac

if command -v curl >/dev/null 2>&1; then
    # Redirects to https only, whatever the first URL was.
    fetch() {
        curl -fsSL --retry 2 --proto "$protocols" --proto-redir '=https' --tlsv1.2 -o "$2" "$1" 2>/dev/null ||
            die "cannot download $1"
    }
elif command -v wget >/dev/null 2>&1; then
    # wget cannot refuse a redirect by scheme: its headers show every hop, and a download
    # that went through plain http is thrown away.
    fetch() {
        wget -q -S -O "$2" "$1" 2>"$tmp/wget.log" || die "cannot download $1"
        if [ -n "$(sed -n 's/^ *[Ll][Oo][Cc][Aa][Tt][Ii][Oo][Nn]: *[Hh][Tt][Tt][Pp]:.*/x/p' "$tmp/wget.log")" ]; then
            die "cannot download $1: it redirects to plain http"
        fi
    }
else
    die "neither curl nor wget is installed"
fi
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "neither sha256sum nor shasum is installed"
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t tether-install)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS"
signature_checked=no
if command -v minisign >/dev/null 2>&1; then
    fetch "$base/SHA256SUMS.minisig" "$tmp/SHA256SUMS.minisig"
    minisign -Vqm "$tmp/SHA256SUMS" -P "$RELEASE_KEY" >/dev/null 2>&1 ||
        die "SHA256SUMS is not signed by the tether release key ($RELEASE_KEY)"
    signature_checked=yes
fi
archive=$(sed -n "s/^[0-9a-f]\{64\}  \(tether-[^ /]*-$target\.tar\.gz\)\$/\1/p" "$tmp/SHA256SUMS" | head -n 1)
[ -n "$archive" ] || die "the release has no archive for $target"
listed=$(sed -n "s/^\([0-9a-f]\{64\}\)  $archive\$/\1/p" "$tmp/SHA256SUMS")
fetch "$base/$archive" "$tmp/$archive"
fetch "$base/$archive.sha256" "$tmp/$archive.sha256"
actual=$(sha256 "$tmp/$archive")
sidecar=$(cut -d' ' -f1 "$tmp/$archive.sha256")
[ "$actual" = "$listed" ] || die "$archive does not match SHA256SUMS (sha256 $actual)"
[ "$actual" = "$sidecar" ] || die "$archive does not match $archive.sha256 (sha256 $actual)"

mkdir "$tmp/unpacked"
gzip -dc "$tmp/$archive" | (cd "$tmp/unpacked" && tar -xf -) || die "cannot unpack $archive"
top="$tmp/unpacked/${archive%.tar.gz}"
for file in bin/tether lib/tether-host lib/tether-ptyd; do
    [ -f "$top/$file" ] || die "$archive lacks $file: the bundle is incomplete"
done

mkdir -p "$prefix/bin" "$prefix/lib/tether" || die "cannot create $prefix/bin and $prefix/lib/tether"
# Each file lands beside its final name under a fresh name (mktemp: O_EXCL, so a planted
# file or symlink is never written through), then takes the name by rename: a running
# host keeps its old binary, and an interrupted install leaves no half-written one.
put() {
    staged=$(mktemp "$2.tether-new.XXXXXX") || return 1
    if cat "$1" >"$staged" && chmod 755 "$staged" && mv -f "$staged" "$2"; then
        return 0
    fi
    rm -f "$staged"
    return 1
}
put "$top/lib/tether-ptyd" "$prefix/lib/tether/tether-ptyd" || die "cannot write $prefix/lib/tether"
partial() {
    echo "tether install: cannot write $1: the install is incomplete; run it again" >&2
    exit 1
}
put "$top/lib/tether-host" "$prefix/lib/tether/tether-host" || partial "$prefix/lib/tether"
put "$top/bin/tether" "$prefix/bin/tether" || partial "$prefix/bin"
echo "installed ${archive%.tar.gz} into $prefix (bin/tether, lib/tether/)"
if [ "$signature_checked" = no ]; then
    echo "tether install: the signature of SHA256SUMS was not checked (minisign is not installed); to check it: minisign -Vm SHA256SUMS -P $RELEASE_KEY" >&2
fi
case ":${PATH:-}:" in
    *":$prefix/bin:"*) ;;
    *) echo "add $prefix/bin to PATH to run tether" ;;
esac
