#!/usr/bin/env bash
# Obtain a real kube-apiserver and kube-controller-manager (v1.20.2) and etcd (3.4) for the
# real-API-server test tier, and print the directory that holds all three.
#
#   scripts/kube-bin.sh            -> prints $TOLLGATE_KUBE_CACHE/bin (default /var/cache/tollgate-kube/bin)
#
# No registry ships kube-apiserver for plain Debian, so it is compiled from Debian bookworm's source
# package `kubernetes` (the whole upstream tree with vendor/; Debian itself builds only kubectl from
# it) with Debian's Go. etcd is Debian's `etcd-server`. The first build takes 7-11 minutes on 2 cores
# and needs root (apt-get); afterwards the cache outside the repository is reused and nothing is
# downloaded. Diagnostics go to stderr; stdout carries only the directory.
set -euo pipefail

cache=${TOLLGATE_KUBE_CACHE:-/var/cache/tollgate-kube}
bin=$cache/bin
src_version=1.20.5+really1.20.2-1.1+deb12u1 # bookworm's kubernetes source package (upstream 1.20.2)

have() { [ -x "$bin/$1" ]; }
say() { echo "kube-bin: $*" >&2; }
need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "$1 needs root (apt-get), and $bin does not hold it yet."
    say "Run 'sudo scripts/kube-bin.sh' once (7-11 minutes the first time), or point TOLLGATE_KUBE_BIN"
    say "at a directory with kube-apiserver, kube-controller-manager and etcd."
    exit 1
  fi
}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
}

if have kube-apiserver && have kube-controller-manager && have etcd; then
  echo "$bin"
  exit 0
fi

# The servers are built but etcd is gone (the symlink points at Debian's package): reinstall only it.
if have kube-apiserver && have kube-controller-manager; then
  if ! command -v etcd >/dev/null 2>&1; then
    need_root "installing etcd-server"
    apt_install etcd-server
  fi
  ln -sfn "$(command -v etcd)" "$bin/etcd"
  echo "$bin"
  exit 0
fi

need_root "building kube-apiserver"
say "building kube-apiserver and kube-controller-manager into $bin (7-11 minutes, once)"
# rsync: without it Kubernetes' code generators silently write empty files and the build fails later.
# The reflect2 and json-iterator packages replace vendored copies (see below).
apt_install golang-go rsync etcd-server \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev

# A private apt state under the cache adds bookworm's source index without touching the system's
# apt configuration. The mirror is whichever one apt already uses here.
mkdir -p "$cache"/apt/lists/partial "$cache"/apt/cache/archives/partial "$cache"/apt/parts "$cache"/home "$bin"
mirror=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true)
[ -n "$mirror" ] || mirror=$(grep -hm1 '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true)
if [ -z "$mirror" ]; then
  say "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  exit 1
fi
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$cache"/apt/sources.list
apt_opts=(-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Etc::SourceList=$cache/apt/sources.list"
  -o "Dir::Etc::SourceParts=$cache/apt/parts" -o "Dir::Cache=$cache/apt/cache")
apt-get "${apt_opts[@]}" update -qq >&2

work=$cache/build
rm -rf "$work" && mkdir -p "$work" && cd "$work"
# The pinned version is the one this recipe was proven with; if bookworm has moved on, take its current one.
apt-get "${apt_opts[@]}" source --download-only "kubernetes=$src_version" >&2 ||
  apt-get "${apt_opts[@]}" source --download-only kubernetes >&2
origs=(kubernetes_*.orig.tar.gz)
mkdir src && tar xzf "${origs[0]}" -C src
cd src/*/

# Under Go >= 1.18 the vendored reflect2 makes kube-apiserver crash (SIGSEGV in mapiterinit) on the
# first JSON patch a mutating webhook returns. Debian's reflect2 1.0.2 and json-iterator 1.1.12 work.
for pkg in modern-go/reflect2 json-iterator/go; do
  rm -rf "vendor/github.com/$pkg"
  mkdir -p "vendor/github.com/$pkg"
  cp -a "/usr/share/gocode/src/github.com/$pkg/." "vendor/github.com/$pkg/"
  rm -f "vendor/github.com/$pkg/go.mod" "vendor/github.com/$pkg/go.sum"
done
# Kubernetes 1.20's build expects its tree at $GOPATH/src/k8s.io/kubernetes.
export GOPATH=$PWD/.go
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
HOME=$cache/home CGO_ENABLED=0 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2

# Copy then rename, so that a concurrent reader never sees half a binary.
for b in kube-apiserver kube-controller-manager; do
  cp _output/bin/$b "$bin/.$b.tmp" && mv -f "$bin/.$b.tmp" "$bin/$b"
done
ln -sfn "$(command -v etcd)" "$bin/etcd"
cd "$cache"
rm -rf "$work" home/go home/.cache
say "done"
echo "$bin"
