# shellcheck shell=sh
# pi-image: install OS packages from the bundle's local apt repository, with no network (sourced by first boot).
# The bundle directory holds Packages, SHA256SUMS and the .debs, flat, under the names apt's archive cache uses
# (written by pi-image from the lock), so apt takes it as its archive cache and `--no-download` finds them there.
# Trust: every .deb is checked against SHA256SUMS here, on the node, before apt sees the directory; apt then checks
# each .deb against Packages again. So the source is `[trusted=yes]`: no key to manage, nothing fetched.
# The source lives only in a private sources file and lists directory for the two apt-get calls and is removed
# after, so the node's own apt configuration is never changed. Extra apt options (tests): $OFFLINE_APT_OPTS.

# offline_apt_install DIR PACKAGE...  -> 0 when installed; 1 with a line naming what failed.
offline_apt_install() {
  oa_dir=$1
  shift
  if [ ! -s "$oa_dir/Packages" ] || [ ! -s "$oa_dir/SHA256SUMS" ]; then
    echo "offline-apt: $oa_dir: no Packages or SHA256SUMS: the bundle's apt repository is missing" >&2
    return 1
  fi
  if ! (cd "$oa_dir" && sha256sum --quiet --strict -c SHA256SUMS >&2); then
    echo "offline-apt: $oa_dir: a .deb does not match SHA256SUMS (damaged bundle); nothing installed" >&2
    return 1
  fi
  oa_tmp=$(mktemp -d /tmp/pi-image-offline-apt.XXXXXX) || return 1
  mkdir -p "$oa_tmp/lists/partial" "$oa_tmp/archives/partial"
  for oa_deb in "$oa_dir"/*.deb; do ln -s "$oa_deb" "$oa_tmp/archives/"; done
  echo "deb [trusted=yes] file:$oa_dir ./" > "$oa_tmp/sources.list"
  # Word splitting of the options is wanted (pi-image's paths have no blanks).
  oa_o="-o Dir::Etc::SourceList=$oa_tmp/sources.list -o Dir::Etc::SourceParts=- -o Dir::State::Lists=$oa_tmp/lists"
  oa_o="$oa_o -o Dir::Cache::Archives=$oa_tmp/archives"
  # Local files only: no download sandbox user needed (it could not write into this root-owned directory).
  oa_o="$oa_o -o APT::Sandbox::User=root -o Acquire::Languages=none ${OFFLINE_APT_OPTS:-}"
  oa_rc=0
  # shellcheck disable=SC2086
  apt-get $oa_o -q update >&2 || oa_rc=$?
  # shellcheck disable=SC2086
  [ $oa_rc != 0 ] || DEBIAN_FRONTEND=noninteractive apt-get $oa_o install -y -q --no-download --no-install-recommends "$@" >&2 || oa_rc=$?
  rm -rf "$oa_tmp"
  [ $oa_rc = 0 ] || echo "offline-apt: apt-get failed ($oa_rc) installing from $oa_dir" >&2
  return $oa_rc
}
