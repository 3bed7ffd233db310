#!/usr/bin/env bash
# Build the Dockerfile without Docker and check the image: Debian's buildah (vfs storage, chroot
# isolation) against a LOCAL base image, since registry bases cannot be pulled here: a debootstrap
# of Debian bookworm (minbase) plus this machine's node and npm, saved as an OCI archive. The base
# and buildah's storage are cached in $TOLLGATE_IMAGE_CACHE (default /var/cache/tollgate-image-base),
# outside the repository. Then, in the built image: the user and entrypoint (skopeo inspect),
# `tollgate --version` through the entrypoint, a CA init and a PKCS#12 export (the dependencies the
# bundle loads from node_modules), both iptables backends, and no devDependency anywhere.
# Needs root (debootstrap, chroot). Prints the time of each step and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${TOLLGATE_IMAGE_CACHE:-/var/cache/tollgate-image-base}
IMAGE=localhost/tollgate:image-test
mkdir -p "$CACHE"
B=(buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs)
step_start=0
step() { step_start=$(date +%s); echo "== $*"; }
done_step() { echo "   ($(( $(date +%s) - step_start )) s)"; }
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then echo "image-test: needs root (debootstrap and buildah's chroot isolation)" >&2; exit 1; fi

need=()
for tool in buildah skopeo debootstrap; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  done_step
fi

# --- the local base: Debian bookworm minbase + this machine's node (and npm, for the build stage) ---
NODE=$(readlink -f "$(command -v node)")
NODE_VERSION=$("$NODE" --version)
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
BASE_TAR="$CACHE/base-bookworm-node-$NODE_VERSION.oci.tar"
ROOTFS="$CACHE/rootfs-bookworm"
if [ ! -s "$BASE_TAR" ]; then
  if [ ! -e "$ROOTFS/.complete" ]; then
    step "debootstrap --variant=minbase bookworm (once; cached in $ROOTFS)"
    rm -rf "$ROOTFS.tmp"
    # libstdc++6 for node; ca-certificates for npm and apt over TLS.
    debootstrap --variant=minbase --include=ca-certificates,libstdc++6 bookworm "$ROOTFS.tmp" http://deb.debian.org/debian > "$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    rm -rf "$ROOTFS" && mv "$ROOTFS.tmp" "$ROOTFS" && touch "$ROOTFS/.complete"
    done_step
  fi
  step "base image $BASE_TAR (node $NODE_VERSION from $NODE, npm from $NPM_DIR)"
  tar -C "$ROOTFS" --exclude=./.complete --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      --exclude='./var/cache/apt/archives/*.deb' -cf "$CACHE/rootfs.tar" .
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" add "$ctr" "$CACHE/rootfs.tar" / >/dev/null
  "${B[@]}" copy "$ctr" "$NODE" /usr/local/bin/node >/dev/null
  "${B[@]}" copy "$ctr" "$NPM_DIR" /usr/local/lib/node_modules/npm >/dev/null
  "${B[@]}" run --isolation chroot "$ctr" -- ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
  # A machine whose TLS goes through an intercepting proxy trusts its CA from
  # /usr/local/share/ca-certificates: the base trusts it too, as a company's base image would.
  extra_ca=0
  for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] || continue
    "${B[@]}" copy "$ctr" "$crt" /usr/local/share/ca-certificates/ >/dev/null
    extra_ca=$((extra_ca + 1))
  done
  if [ "$extra_ca" -gt 0 ]; then
    "${B[@]}" run --isolation chroot "$ctr" -- update-ca-certificates >/dev/null
    "${B[@]}" config --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$ctr"
    echo "   $extra_ca extra CA certificate(s) of this machine trusted in the base"
  fi
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$ctr"
  "${B[@]}" commit --quiet "$ctr" "oci-archive:$BASE_TAR.tmp" >/dev/null
  "${B[@]}" rm "$ctr" >/dev/null
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -f "$CACHE/rootfs.tar"
  done_step
fi

# --- the build ---
step "buildah bud (Dockerfile, BASE=oci-archive:$BASE_TAR)"
"${B[@]}" bud --isolation chroot --pull=never --layers=false --build-arg "BASE=oci-archive:$BASE_TAR" -t "$IMAGE" -f Dockerfile . > "$CACHE/build.log" 2>&1 \
  || { tail -40 "$CACHE/build.log"; fail "build failed (log: $CACHE/build.log)"; }
done_step

cleanup() {
  "${B[@]}" rm --all >/dev/null 2>&1 || true
  "${B[@]}" rmi --force "$IMAGE" >/dev/null 2>&1 || true
  "${B[@]}" rmi --prune >/dev/null 2>&1 || true
  rm -f "$CACHE/image.oci.tar"
}
trap cleanup EXIT

step "checks"
"${B[@]}" push --quiet "$IMAGE" "oci-archive:$CACHE/image.oci.tar" >/dev/null
config=$(skopeo inspect --config "oci-archive:$CACHE/image.oci.tar")
user=$(node -e 'const c = JSON.parse(process.argv[1]).config; process.stdout.write(c.User ?? "")' "$config")
entrypoint=$(node -e 'const c = JSON.parse(process.argv[1]).config; process.stdout.write(JSON.stringify(c.Entrypoint))' "$config")
[ "$user" = "2102:2102" ] || fail "image user is '$user', expected 2102:2102"
[ "$entrypoint" = '["node","/app/bin/tollgate.js"]' ] || fail "entrypoint is $entrypoint"
echo "   user $user, entrypoint $entrypoint"

ctr=$("${B[@]}" from "$IMAGE")
in_image() { "${B[@]}" run --isolation chroot "$ctr" -- "$@"; }
# The entrypoint with an argument, as a container runtime would run it.
mapfile -t ep < <(node -e 'for (const a of JSON.parse(process.argv[1])) console.log(a)' "$entrypoint")
version=$(in_image "${ep[@]}" --version)
[ "$version" = "$(node -p 'require("./package.json").version')" ] || fail "tollgate --version printed '$version'"
echo "   tollgate --version: $version"
[ "$(in_image id -u):$(in_image id -g)" = "2102:2102" ] || fail "commands do not run as 2102:2102"
# Dependencies the bundle loads from node_modules: @peculiar/x509 (ca init), node-forge (--p12).
in_image sh -c 'cd /tmp && tollgate ca init --trust-domain example.org --dir ca >/dev/null && tollgate cert issue --ca-dir ca --spiffe-id spiffe://example.org/ns/a/sa/b --out b --p12 --password image-test >/dev/null && test -s b.p12' \
  || fail "ca init / cert issue --p12 failed in the image"
echo "   ca init, cert issue --p12: ok"
rules=$(in_image tollgate capture --inbound 8080:15006 --exclude-uid 2102 --dry-run)
[[ "$rules" == *'REDIRECT --to-ports 15006'* ]] || fail "capture --dry-run printed no rules"
in_image sh -c 'iptables-nft-restore --version && iptables-legacy-restore --version' | sed 's/^/   /'
[ "$(in_image sh -c 'test -w /app || test -w /app/dist/tollgate.cjs; echo $?')" = 1 ] || fail "/app is writable by the runtime user"
# Our devDependencies (package.json) other than @types/node, which protobufjs (@grpc/proto-loader) needs at run time.
leaked=$(in_image sh -c 'find / -xdev -type d \( -path "*/node_modules/typescript" -o -path "*/node_modules/fast-check" -o -path "*/node_modules/kubernetes-models" -o -path "*/node_modules/@aws-cdk" -o -path "*/node_modules/@types/node-forge" \) 2>/dev/null; true' | grep -v '^/usr/local/lib/node_modules/npm/' || true)
[ -z "$leaked" ] || fail "devDependencies in the image: $leaked"
echo "   no devDependency (typescript, fast-check, kubernetes-models, @aws-cdk/*, @types/node-forge) in the image"
echo "   /app: $(in_image du -sh /app | cut -f1) ($(in_image du -sh /app/node_modules | cut -f1) of it node_modules: $(in_image sh -c 'ls /app/node_modules | tr "\n" " "'))"
done_step

size=$("${B[@]}" images --format '{{.Size}}' "$IMAGE")
packed=$(du -h "$CACHE/image.oci.tar" | cut -f1)
echo "image-test: ok: image $size unpacked, $packed as an OCI archive (base: bookworm minbase + node $NODE_VERSION)"
