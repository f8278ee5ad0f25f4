#!/bin/bash
# pi-image first-boot steps, run by cloud-init's runcmd as `firstboot.sh <step>`. Every step logs to the console
# (cloud-init copies runcmd output there), records success in /var/lib/pi-image/done/<step> and is safe to re-run:
# run `sudo /usr/local/lib/pi-image/firstboot.sh <step>` again after fixing whatever stopped it.
# Configuration comes from /etc/pi-image/cluster.env (written by pi-image, values validated and quoted);
# secrets from files under /etc/pi-image/secrets and /etc/kubernetes/pki (0600, root).
# The steps after `clock` (STEPS in cluster.env) need a true time: when NTP has not synchronised within
# CLOCK_WAIT seconds they are put off, and pi-image-resume.service runs them once it has (also after a reboot).
# `scrub` overwrites the secrets where they lie (the SD's seed, cloud-init's copies) and removes what the steps
# that are done no longer need.
set -euo pipefail
# PI_IMAGE_PATH: tools looked up first (tests put stand-ins for kubectl/kubeadm there).
export PATH=${PI_IMAGE_PATH:+$PI_IMAGE_PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive
STEP=${1:?usage: firstboot.sh <step>}
# shellcheck source=/dev/null
. "${PI_IMAGE_ENV:-/etc/pi-image/cluster.env}"
DONE=${PI_IMAGE_STATE:-/var/lib/pi-image/done}
mkdir -p "$DONE"
COMPLETE=$(dirname "$DONE")/complete
SYSTEMCTL=${PI_IMAGE_SYSTEMCTL:-systemctl}
FIRMWARE=${PI_IMAGE_FIRMWARE:-/boot/firmware}
CLOUD=${PI_IMAGE_CLOUD:-/var/lib/cloud}
ETC=${PI_IMAGE_ETC:-/etc/pi-image}
TIMESYNC_FLAG=${PI_IMAGE_TIMESYNC_FLAG:-/run/systemd/timesync/synchronized}

log() { echo "pi-image[$STEP]: $*"; logger -t pi-image "[$STEP] $*" 2>/dev/null || true; }
die() { log "FAILED: $*"; exit 1; }

# ---- clock ------------------------------------------------------------------------------------------------
# True once NTP has set the clock: systemd-timesyncd's flag file, or the kernel's sync state via timedatectl
# (chrony, ntpd). With PI_IMAGE_TIMESYNC_FLAG set (tests) the flag file alone decides.
clock_synced() {
  [ -e "$TIMESYNC_FLAG" ] && return 0
  [ -z "${PI_IMAGE_TIMESYNC_FLAG:-}" ] || return 1
  [ "$(timedatectl show -p NTPSynchronized --value 2>/dev/null)" = yes ]
}
# The node's steps that come after `clock` (they need a true time: TLS, apt's Release dates, certificates).
steps_after_clock() {
  local s after=0
  for s in ${STEPS:-}; do
    if [ "$after" = 1 ]; then printf '%s ' "$s"; fi
    if [ "$s" = clock ]; then after=1; fi
  done
  return 0
}
needs_clock() { case " $(steps_after_clock) " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- apt -----------------------------------------------------------------------------------------------------
# apt's daily timers fire when NTP jumps the clock, and unattended-upgrades then holds the dpkg lock for minutes.
# bootcmd holds them from early in first boot (the same commands); release_apt gives them back at the end.
APT_UNITS="apt-daily.service apt-daily-upgrade.service"
APT_TIMERS="apt-daily.timer apt-daily-upgrade.timer"
hold_apt() {
  # shellcheck disable=SC2086
  $SYSTEMCTL mask --runtime --quiet $APT_UNITS 2>/dev/null || true
  # shellcheck disable=SC2086
  $SYSTEMCTL stop --no-block $APT_TIMERS 2>/dev/null || true
}
release_apt() {
  local t
  log "apt-daily timers and unattended-upgrades released"
  # shellcheck disable=SC2086
  $SYSTEMCTL unmask --runtime --quiet $APT_UNITS 2>/dev/null || true
  for t in $APT_TIMERS; do
    if $SYSTEMCTL is-enabled --quiet "$t" 2>/dev/null; then $SYSTEMCTL start --no-block "$t" 2>/dev/null || true; fi
  done
}
# Who holds dpkg's lock (a POSIX lock, matched by inode in /proc/locks; eoan's apt cannot wait for it).
dpkg_lock_holder() {
  local f ino pid
  for f in ${PI_IMAGE_DPKG_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock}; do
    [ -e "$f" ] || continue
    ino=$(stat -c %i "$f")
    pid=$(awk -v ino="$ino" '{ for (i = 2; i <= NF; i++) if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) {
      split($i, a, ":"); if (a[3] == ino) { print $(i - 1); exit } } }' /proc/locks 2>/dev/null)
    if [ -n "$pid" ]; then echo "$pid $(tr '\0\n' '  ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"; return 0; fi
  done
  return 1
}
wait_dpkg_lock() {
  local waited=0 limit=${APT_LOCK_WAIT:-1200} who
  while who=$(dpkg_lock_holder); do
    if [ $((waited % 60)) = 0 ]; then log "waiting for the dpkg lock (held by pid $who; ${waited}s of at most ${limit}s)"; fi
    [ "$waited" -lt "$limit" ] || die "the dpkg lock is still held after ${limit}s by pid $who"
    sleep 5; waited=$((waited + 5))
  done
}

# ---- scrub ---------------------------------------------------------------------------------------------------
# Overwrite a file with zeros where it lies (FAT and ext4 rewrite in place; shred syncs), then replace its content
# with FILE2's (or remove it when FILE2 is empty). The old bytes are gone from the clusters/blocks they used.
wipe_file() {
  local f=$1 with=${2:-}
  [ -f "$f" ] || return 0
  shred -n 0 -z --exact "$f"
  if [ -n "$with" ]; then
    cat "$with" > "$f"
    sync "$f"
  else
    rm -f "$f"
  fi
}
# Files the node no longer needs once STEP is done (they hold the token, Heketi's keys, MetalLB's key).
leftovers_of() {
  case $1 in
  master) echo "$ETC/kubeadm.yaml" ;;
  join) echo "$ETC/kubeadm-join.yaml" ;;
  addons) echo "$ETC/secrets/metallb-memberlist-key" ;;
  heketi) echo "$ETC/secrets/heketi-ssh-key $ETC/secrets/heketi-admin-key $ETC/heketi.json $ETC/storageclass.yaml" ;;
  esac
}
all_steps_done() {
  local s
  for s in ${STEPS:-}; do [ -e "$DONE/$s" ] || return 1; done
}

if [ "$STEP" != resume ] && [ "$STEP" != token-cleanup ] && needs_clock "$STEP" && [ ! -e "$DONE/clock" ]; then
  log "put off: needs a true clock (NTP not synchronised yet); pi-image-resume.service runs it once it is"
  exit 0
fi
if [ -e "$DONE/$STEP" ] && [ "${FORCE:-0}" != 1 ]; then log "already done"; exit 0; fi
trap 'rc=$?; [ $rc -eq 0 ] || log "stopped with status $rc; re-run: sudo /usr/local/lib/pi-image/firstboot.sh $STEP"' EXIT

# fetch URL OUT SHA256|published — from the node's bundle when it has one (sha256 from pi-image.lock, checked
# again here), else download with retries, verify, then rename into place.
fetch() {
  local url=$1 out=$2 sum=$3 rc=0
  if [ -f "${PI_IMAGE_BUNDLE_SH:-/usr/local/lib/pi-image/bundle.sh}" ]; then
    bash "${PI_IMAGE_BUNDLE_SH:-/usr/local/lib/pi-image/bundle.sh}" fetch "$url" "$out" || rc=$?
    [ "$rc" = 0 ] && return 0
    [ "$rc" = 4 ] || die "$url: not in this node's bundle, or damaged (run pi-image lock and build again)"
  fi
  log "download $url"
  curl -fsSL --retry 20 --retry-delay 6 --retry-connrefused -o "$out.part" "$url" || die "download $url"
  if [ "$sum" = published ]; then
    sum=$(curl -fsSL --retry 20 --retry-delay 6 "$url.sha256" | awk '{print $1}') || die "download $url.sha256"
  fi
  if [ -n "$sum" ]; then
    echo "$sum  $out.part" | sha256sum -c --quiet - || { rm -f "$out.part"; die "sha256 mismatch for $url"; }
  else
    log "warning: no sha256 given for $url; not verified"
  fi
  mv "$out.part" "$out"
}

apt_install() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    wait_dpkg_lock
    apt-get -o Acquire::Retries=5 update -q && apt-get -o Acquire::Retries=5 install -y -q --no-install-recommends "$@" && return 0
    log "apt failed (try $i), retrying in 15s"; sleep 15
  done
  die "apt-get install $*"
}

kubectl_retry() {
  local i
  for i in $(seq 1 60); do kubectl "$@" && return 0; sleep 10; done
  die "kubectl $*"
}

# The disk holding / and the name of its partition N (sda → sda2, nvme0n1/mmcblk0 → …p2).
root_disk() {
  if [ -n "${PI_IMAGE_DISK:-}" ]; then echo "$PI_IMAGE_DISK"; return; fi
  local src; src=$(findmnt -no SOURCE /)
  echo "/dev/$(lsblk -no PKNAME "$src" | head -n1)"
}
part_of() { case $1 in *[0-9]) echo "${1}p$2" ;; *) echo "${1}$2" ;; esac; }

case $STEP in
bundle)
  # The node's bundle (pi-image.lock's share for this role) from SSD partition 2: moved, extracted, checked.
  bash "${PI_IMAGE_BUNDLE_SH:-/usr/local/lib/pi-image/bundle.sh}" unpack
  ;;
images)
  # Container images from the bundle into the runtime, before kubeadm init/join (nothing pulled).
  bash "${PI_IMAGE_BUNDLE_SH:-/usr/local/lib/pi-image/bundle.sh}" images
  ;;
brick)
  # The build wrote one partition (the root, fixed size). Make p2 in the rest of the disk, raw, for Heketi.
  disk=$(root_disk)
  count=$(sfdisk -d "$disk" | grep -c 'start=' || true)
  if [ "$count" -ge 2 ]; then
    log "$disk already has $count partitions; brick partition kept as it is"
  else
    # Right after the root, to the end of the disk: the root need not start at 1 MiB (the build keeps the base
    # image's root offset), and sfdisk would otherwise take the first free gap, the one before the root.
    read -r p1start p1size < <(sfdisk -d "$disk" | awk -F'[=,]' '/start=/ { gsub(/ /, "", $2); gsub(/ /, "", $4); print $2, $4; exit }')
    log "creating the brick partition in the free space of $disk after the root (from sector $((p1start + p1size)))"
    echo "$((p1start + p1size)),,8e" | sfdisk --quiet --append --no-reread "$disk" || die "sfdisk --append $disk"
    if [ -z "${PI_IMAGE_DISK:-}" ]; then
      partx --add --nr 2 "$disk" 2>/dev/null || partprobe "$disk" 2>/dev/null || true
      udevadm settle || true
      part=$(part_of "$disk" 2)
      [ -b "$part" ] && wipefs --all --quiet "$part" || true
    fi
  fi
  part=$(part_of "$disk" 2)
  [ "$part" = "$BRICK_DEVICE" ] || log "note: the brick is $part but the profile names $BRICK_DEVICE for Heketi"
  ;;
base)
  # What a reboot needs comes first, before anything that can fail: the unit that finishes an interrupted first
  # boot, and kubelet when its unit is already here (release binaries; the apt package brings its own later).
  $SYSTEMCTL daemon-reload || true
  units=""
  if [ -f /etc/systemd/system/pi-image-resume.service ]; then $SYSTEMCTL enable --quiet pi-image-resume.service; units="pi-image-resume"; fi
  if [ "${KUBERNETES:-0}" = 1 ] && [ -f /etc/systemd/system/kubelet.service ]; then $SYSTEMCTL enable --quiet kubelet; units="$units kubelet"; fi
  [ -z "$units" ] || log "enabled first, for a reboot: ${units# }"
  log "swap off"
  swapoff -a || true
  sed -i -E '/^[^#].*[[:space:]]swap[[:space:]]/s/^/#/' /etc/fstab
  log "kernel modules and sysctls"
  grep -v '^#' /etc/modules-load.d/pi-image.conf | while read -r m; do [ -z "$m" ] || modprobe "$m" || log "warning: modprobe $m failed"; done
  sysctl --system >/dev/null || true
  if [ "${LEGACY_IPTABLES:-0}" = 1 ]; then
    log "legacy iptables backend"
    for t in iptables ip6tables arptables ebtables; do
      [ -x "/usr/sbin/$t-legacy" ] && update-alternatives --set "$t" "/usr/sbin/$t-legacy" >/dev/null || true
    done
  fi
  if [ -x /usr/local/sbin/pi-image-update-vmlinux ]; then
    log "kernel re-decompression hook"
    /usr/local/sbin/pi-image-update-vmlinux || log "warning: vmlinux check failed"
  fi
  if [ "${HEKETI:-0}" = 1 ] && [ -s /etc/pi-image/heketi-ssh-key.pub ]; then
    log "root SSH access for Heketi from $MASTER_IP"
    install -d -m 0700 /root/.ssh
    line="from=\"$MASTER_IP\" $(cat /etc/pi-image/heketi-ssh-key.pub)"
    touch /root/.ssh/authorized_keys; chmod 0600 /root/.ssh/authorized_keys
    grep -qxF "$line" /root/.ssh/authorized_keys || echo "$line" >> /root/.ssh/authorized_keys
  fi
  ;;
clock)
  wait=${CLOCK_WAIT:-300}
  later=$(steps_after_clock)
  if ! clock_synced; then
    log "waiting up to ${wait}s for NTP to set the clock (it says $(date -u +%FT%TZ)); then: ${later% }"
    waited=0
    while ! clock_synced && [ "$waited" -lt "$wait" ]; do
      sleep 5; waited=$((waited + 5))
      [ $((waited % 60)) != 0 ] || log "still waiting for NTP (${waited}s)"
    done
    if ! clock_synced; then
      log "clock NOT synchronised after ${waited}s (it says $(date -u +%FT%TZ)); put off until it is: ${later% }"
      $SYSTEMCTL start --no-block pi-image-resume.service 2>/dev/null || log "warning: could not start pi-image-resume.service"
      exit 0
    fi
  fi
  log "clock synchronised by NTP: $(date -u +%FT%TZ)"
  ;;
packages)
  # The node's list, written by pi-image from the profile (lib/cluster/packages.ts, the same list the lock resolves).
  pkgs=${PACKAGES:-}
  # The bundle's local repository (pi-image.lock's .debs for this role): installed from it with no network and no
  # true clock; what the lock does not hold (or the image already has) is left to the network as before.
  debs=${PI_IMAGE_BUNDLE:-/var/lib/pi-image/bundle}/pi-image-bundle/debs
  net=""
  if [ -s "$debs/Packages" ]; then
    bash "${PI_IMAGE_BUNDLE_SH:-/usr/local/lib/pi-image/bundle.sh}" verify-debs || die "the bundle's .debs (see the line above); run pi-image build again"
    local_pkgs=""
    for p in $pkgs; do
      if grep -qx "Package: $p" "$debs/Packages"; then local_pkgs="$local_pkgs $p"
      elif [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ]; then :
      else net="$net $p"; fi
    done
    if [ -n "$local_pkgs" ]; then
      log "installing from the bundle (no network):$local_pkgs"
      # shellcheck source=/dev/null
      . "${PI_IMAGE_OFFLINE_APT:-/usr/local/lib/pi-image/offline-apt.sh}"
      wait_dpkg_lock
      t0=$(date +%s)
      # shellcheck disable=SC2086
      offline_apt_install "$debs" $local_pkgs || die "installing$local_pkgs from the bundle's .debs ($debs)"
      log "installed from the bundle in $(( $(date +%s) - t0 ))s: $(grep -c '^Package: ' "$debs/Packages") .debs available, temporary apt source removed"
    fi
  else
    net=" $pkgs"
  fi
  if [ -n "${net// /}" ]; then
    log "installing$net (from the network)"
    # shellcheck disable=SC2086
    apt_install $net
  fi
  ;;
runtime)
  if [ "$RUNTIME" = containerd ]; then
    log "containerd with the systemd cgroup driver"
    mkdir -p /etc/containerd
    containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > /etc/containerd/config.toml.new
    mv /etc/containerd/config.toml.new /etc/containerd/config.toml
    systemctl enable containerd
    systemctl restart containerd
  else
    log "docker"
    systemctl enable --now docker
  fi
  ;;
kubernetes)
  if [ "$K8S_INSTALL" = binaries ]; then
    log "Kubernetes $K8S_VERSION release binaries"
    for b in kubeadm kubelet kubectl; do
      sumvar="SHA256_$b"; fetch "$K8S_BIN_URL/$b" "/usr/local/bin/$b" "${!sumvar}"; chmod 0755 "/usr/local/bin/$b"
    done
    tmp=$(mktemp -d)
    fetch "$CRICTL_URL" "$tmp/crictl.tgz" "$CRICTL_SHA256"; tar -xzf "$tmp/crictl.tgz" -C /usr/local/bin
    mkdir -p /opt/cni/bin
    fetch "$CNI_URL" "$tmp/cni.tgz" "$CNI_SHA256"; tar -xzf "$tmp/cni.tgz" -C /opt/cni/bin
    rm -rf "$tmp"
  else
    log "Kubernetes $K8S_VERSION from $K8S_APT_REPO"
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL --retry 20 --retry-delay 6 "${K8S_APT_REPO}Release.key" | gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
    echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] $K8S_APT_REPO /" > /etc/apt/sources.list.d/kubernetes.list
    apt_install "kubelet=$K8S_VERSION-*" "kubeadm=$K8S_VERSION-*" "kubectl=$K8S_VERSION-*"
    systemctl enable kubelet
    apt-mark hold kubelet kubeadm kubectl
  fi
  systemctl daemon-reload
  systemctl enable kubelet
  ;;
gluster)
  log "glusterd"
  systemctl enable --now glusterd 2>/dev/null || systemctl enable --now glusterfs-server
  ;;
master)
  export KUBECONFIG=/etc/kubernetes/admin.conf
  if [ -f /etc/kubernetes/admin.conf ]; then
    log "control plane already initialised"
  else
    log "kubeadm init (pre-made CA in /etc/kubernetes/pki, pre-set token)"
    kubeadm init --config /etc/pi-image/kubeadm.yaml
  fi
  if [ -f /etc/systemd/system/pi-image-token-cleanup.timer ]; then
    log "the bootstrap token ($TOKEN_ID, ttl $TOKEN_TTL) is deleted once $NODE_NAMES have joined"
    systemctl daemon-reload
    systemctl enable --now pi-image-token-cleanup.timer
  fi
  for u in root ${ADMIN_USERS:-}; do
    home=$(getent passwd "$u" | cut -d: -f6) || continue
    install -d -m 0700 "$home/.kube"
    install -m 0600 /etc/kubernetes/admin.conf "$home/.kube/config"
    chown -R "$u:" "$home/.kube"
  done
  ;;
join)
  if [ -f /etc/kubernetes/kubelet.conf ]; then log "already joined"; else
    log "waiting for the API server at $API_ENDPOINT"
    for i in $(seq 1 360); do curl -ksf "https://$API_ENDPOINT/healthz" >/dev/null && break; sleep 10; done
    log "kubeadm join $API_ENDPOINT (token discovery, CA pinned by hash)"
    kubeadm join --config /etc/pi-image/kubeadm-join.yaml
  fi
  ;;
addons)
  export KUBECONFIG=/etc/kubernetes/admin.conf
  tmp=$(mktemp -d)
  if [ "${CALICO:-0}" = 1 ]; then
    log "Calico with pod CIDR $POD_CIDR"
    fetch "$CALICO_URL" "$tmp/calico.yaml" "$CALICO_SHA256"
    sed -i -e 's|# - name: CALICO_IPV4POOL_CIDR|- name: CALICO_IPV4POOL_CIDR|' \
      -e "s|#   value: \"192.168.0.0/16\"|  value: \"$POD_CIDR\"|" -e "s|value: \"192.168.0.0/16\"|value: \"$POD_CIDR\"|" "$tmp/calico.yaml"
    kubectl_retry apply -f "$tmp/calico.yaml"
  fi
  if [ "${METALLB:-0}" = 1 ]; then
    log "MetalLB"
    i=0; for u in $METALLB_URLS; do i=$((i+1)); fetch "$u" "$tmp/metallb-$i.yaml" ""; kubectl_retry apply -f "$tmp/metallb-$i.yaml"; done
    kubectl -n metallb-system get secret memberlist >/dev/null 2>&1 ||
      kubectl_retry -n metallb-system create secret generic memberlist --from-file=secretkey=/etc/pi-image/secrets/metallb-memberlist-key
    kubectl_retry apply -f /etc/pi-image/metallb-config.yaml
  fi
  if [ "${INGRESS:-0}" = 1 ]; then
    log "ingress-nginx"
    i=0; for u in $INGRESS_URLS; do
      i=$((i+1)); fetch "$u" "$tmp/ingress-$i.yaml" ""
      # The image edit the lock saw (kubernetes.ingressNginx.image, lib/cluster/addons.ts): the controller's image
      # lines name the platform's image (0.30.0's manifest names the amd64 one), so the bundled image is the one run.
      if [ -n "${INGRESS_IMAGE:-}" ]; then
        sed -E -i "s,^([[:space:]]*(-[[:space:]]+)?image:[[:space:]]*)([\"']?)([^\"'[:space:]]*/)?(nginx-ingress-controller(-amd64)?|ingress-nginx/controller)(:[^@\"'[:space:]]*)?(@sha256:[0-9a-f]{64})?\\3,\\1\\3${INGRESS_IMAGE}\\3," "$tmp/ingress-$i.yaml"
        log "ingress-nginx controller image: ${INGRESS_IMAGE}"
      fi
      kubectl_retry apply -f "$tmp/ingress-$i.yaml"
    done
  fi
  rm -rf "$tmp"
  ;;
heketi)
  export KUBECONFIG=/etc/kubernetes/admin.conf
  if [ ! -x /usr/local/bin/heketi ]; then
    tmp=$(mktemp -d)
    fetch "$HEKETI_URL" "$tmp/heketi.tgz" "$HEKETI_SHA256"
    tar -xzf "$tmp/heketi.tgz" -C "$tmp"
    install -m 0755 "$tmp/heketi/heketi" "$tmp/heketi/heketi-cli" /usr/local/bin/
    rm -rf "$tmp"
  fi
  install -d -m 0700 /etc/heketi /var/lib/heketi
  install -m 0600 /etc/pi-image/secrets/heketi-ssh-key /etc/heketi/heketi_key
  install -m 0600 /etc/pi-image/heketi.json /etc/heketi/heketi.json
  systemctl daemon-reload
  systemctl enable --now heketi
  for i in $(seq 1 60); do curl -sf "http://127.0.0.1:$HEKETI_PORT/hello" >/dev/null && break; sleep 5; done
  log "waiting for glusterd and SSH on $NODE_IPS"
  for ip in $NODE_IPS; do
    for i in $(seq 1 360); do
      (exec 3<>"/dev/tcp/$ip/24007") 2>/dev/null && (exec 3<>"/dev/tcp/$ip/22") 2>/dev/null && break; sleep 10
    done
  done
  log "loading the GlusterFS topology"
  heketi-cli --server "http://127.0.0.1:$HEKETI_PORT" --user admin --secret "$(cat /etc/pi-image/secrets/heketi-admin-key)" \
    topology load --json=/etc/pi-image/topology.json
  if [ "${STORAGECLASS:-0}" = 1 ]; then
    log "StorageClass"
    kubectl_retry apply -f /etc/pi-image/storageclass.yaml
  fi
  ;;
scrub)
  # Last step of runcmd (and of resume): secrets out of the SD's seed and cloud-init's copies on the SSD; the
  # secret files the steps that are done used, removed. Overwritten in place first, so no old cluster holds them.
  log "overwriting the seed's secrets on the SD ($FIRMWARE/user-data) and replacing it with the scrubbed copy"
  wipe_file "$FIRMWARE/user-data" "$ETC/user-data.scrubbed"
  log "overwriting cloud-init's copies of the seed in $CLOUD/instances/*"
  for d in "$CLOUD"/instances/*/; do
    [ -d "$d" ] || continue
    wipe_file "$d/user-data.txt" "$ETC/user-data.scrubbed"
    for f in user-data.txt.i cloud-config.txt obj.pkl; do wipe_file "$d/$f"; done
  done
  for f in /run/cloud-init/instance-data-sensitive.json; do wipe_file "$f"; done
  for s in ${STEPS:-}; do
    [ -e "$DONE/$s" ] || continue
    for f in $(leftovers_of "$s"); do
      [ ! -e "$f" ] || { log "removing $f (step $s is done)"; wipe_file "$f"; }
    done
  done
  sync
  if all_steps_done; then
    release_apt
    $SYSTEMCTL disable --quiet pi-image-resume.service 2>/dev/null || true
    touch "$COMPLETE"
    log "first boot complete"
  else
    log "steps not done yet: kept what they need ($(for s in ${STEPS:-}; do [ -e "$DONE/$s" ] || printf '%s ' "$s"; done))"
  fi
  ;;
resume)
  # Run by pi-image-resume.service: the steps put off (no true clock) or stopped (a failure, a reboot), then scrub.
  trap 'log "stopped by a shutdown; it goes on at the next boot"; exit 0' TERM
  hold_apt
  if ! clock_synced && [ ! -e "$DONE/clock" ]; then
    log "waiting for NTP to set the clock before: $(steps_after_clock)"
    until clock_synced; do sleep 15; done
  fi
  for s in ${STEPS:-}; do
    [ -e "$DONE/$s" ] && continue
    bash "$0" "$s" || die "step $s failed"
  done
  FORCE=1 bash "$0" scrub
  exit 0
  ;;
token-cleanup)
  # Run by pi-image-token-cleanup.timer on the master: once every node of the profile is a Kubernetes node, the
  # bootstrap token has no more use. A node added later gets a fresh token (see docs/first-boot.md).
  export KUBECONFIG=/etc/kubernetes/admin.conf
  have=$(kubectl get nodes -o name 2>/dev/null | sed 's|^node/||') || die "kubectl get nodes"
  for n in $NODE_NAMES; do
    printf '%s\n' "$have" | grep -qxF "$n" || { log "waiting for $n to join"; exit 0; }
  done
  log "every node has joined: deleting bootstrap token $TOKEN_ID"
  out=$(kubeadm token delete "$TOKEN_ID" 2>&1) || case $out in *"not found"*) ;; *) die "kubeadm token delete $TOKEN_ID: $out" ;; esac
  $SYSTEMCTL disable --now pi-image-token-cleanup.timer 2>/dev/null || true
  ;;
*)
  die "unknown step $STEP"
  ;;
esac
touch "$DONE/$STEP"
log "done"
