# Shared by the peer installers: the test cache and a crash-safe install into it.
# Sourced, not run.
cache="${ATHENS_TEST_CACHE:-$HOME/.cache/athens-operator-tests}"

# install_once <dir> <what> <function>: unless <dir> exists, runs <function> with a fresh temp
# folder as $1 and renames that folder to <dir>. An interrupted install leaves nothing that looks
# complete, and when a parallel run finished first its install is kept.
install_once() {
  local dir="$1" what="$2" fn="$3"
  [[ -e "$dir" ]] && return 0
  echo "peers: installing $what (a few minutes the first time)" >&2
  local start=$SECONDS
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  "$fn" "$tmp"
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  trap - EXIT
  echo "peers: $what installed in $((SECONDS - start))s" >&2
}

# build_wrapper <folder> <package> <binary>: builds <package> from the Go module in
# tests/peers/<folder> (which pins the peer's version, with a go.sum) into
# $cache/<folder>-<hash of that module's files>/<binary>, and prints the binary's path.
build_wrapper() {
  local folder="$1" pkg="$2" bin="$3"
  local src hash
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/$folder" && pwd)"
  hash="$(find "$src" -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-12)"
  build() {
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1/$bin" "$pkg")
  }
  install_once "$cache/$folder-$hash" "$folder ($(grep -m1 -o "$4 v[^ ]*" "$src/go.mod"))" build
  echo "$cache/$folder-$hash/$bin"
}
