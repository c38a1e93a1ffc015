# Sourced by .ci/run: puts a Go that can build this module first on PATH.
#
# go.mod's `go` line is the oldest Go that builds the module. If the go on
# PATH is older (Debian 12's golang-go is 1.19), or there is none (then
# Debian's golang-go is installed first, as any Go will do), the toolchain
# of that version is fetched from the Go module proxy, where every Go
# release is published as the module golang.org/toolchain, with the go
# already present: `go mod download` works since long before toolchain
# switching existed. Its files come out of the module cache read-only and
# without exec bits, so the binaries are made executable. GOTOOLCHAIN=local
# then keeps every later go command on it.

# want is go.mod's Go version (1.26.8); version_of prints a go's version.
want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)
version_of() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*//'; }
# older A B: is version A older than version B?
older() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ] && [ "$1" != "$2" ]; }

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    echo "--- no Go: installing Debian's golang-go to fetch Go $want with"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
  fi
fi
have=$(version_of go)
if [ -z "$have" ] || older "$have" "$want"; then
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "no Go $want toolchain for $(uname -m)"; exit 1 ;;
  esac
  toolchain="golang.org/toolchain@v0.0.1-go$want.linux-$arch"
  echo "--- Go ${have:-?} is older than go.mod's $want: fetching $toolchain from the module proxy"
  # Outside the module: an old go cannot read this go.mod.
  goroot=$(cd "$(mktemp -d)" && GOFLAGS= GO111MODULE=on GOTOOLCHAIN=local go mod download -json "$toolchain" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' || true)
  if [ ! -f "$goroot/bin/go" ]; then
    echo "could not fetch $toolchain (is the Go module proxy, GOPROXY=$(go env GOPROXY), reachable?)"
    exit 1
  fi
  chmod u+x "$goroot"/bin/* "$goroot"/pkg/tool/*/*
  export GOROOT="$goroot" PATH="$goroot/bin:$PATH"
fi
export GOTOOLCHAIN=local
