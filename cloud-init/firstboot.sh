#!/bin/bash
# pi-image first-boot steps, run by cloud-init's runcmd as `firstboot.sh <step>`. Every step logs to the console
# (cloud-init copies runcmd output there), records success in /var/lib/pi-image/done/<step> and is safe to re-run:
# run `sudo /usr/local/lib/pi-image/firstboot.sh <step>` again after fixing whatever stopped it.
# Configuration comes from /etc/pi-image/cluster.env (written by pi-image, values validated and quoted);
# secrets from files under /etc/pi-image/secrets and /etc/kubernetes/pki (0600, root).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive
STEP=${1:?usage: firstboot.sh <step>}
# shellcheck source=/dev/null
. "${PI_IMAGE_ENV:-/etc/pi-image/cluster.env}"
DONE=${PI_IMAGE_STATE:-/var/lib/pi-image/done}
mkdir -p "$DONE"

log() { echo "pi-image[$STEP]: $*"; logger -t pi-image "[$STEP] $*" 2>/dev/null || true; }
die() { log "FAILED: $*"; exit 1; }

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
    log "creating the brick partition in the free space of $disk"
    echo ',,8e' | sfdisk --quiet --append --no-reread "$disk" || die "sfdisk --append $disk"
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
packages)
  pkgs="curl ca-certificates gnupg"
  [ "${KUBERNETES:-0}" = 1 ] && pkgs="$pkgs $RUNTIME conntrack socat ebtables ethtool ipset"
  [ "${GLUSTER:-0}" = 1 ] && pkgs="$pkgs glusterfs-server glusterfs-client lvm2 thin-provisioning-tools"
  # shellcheck disable=SC2086
  log "installing $pkgs ${EXTRA_PACKAGES:-}"
  # shellcheck disable=SC2086
  apt_install $pkgs ${EXTRA_PACKAGES:-}
  ;;
runtime)
  if [ "$RUNTIME" = containerd ]; then
    log "containerd with the systemd cgroup driver"
    mkdir -p /etc/containerd
    containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > /etc/containerd/config.toml.new
    mv /etc/containerd/config.toml.new /etc/containerd/config.toml
    systemctl restart containerd
    systemctl enable containerd
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
    i=0; for u in $INGRESS_URLS; do i=$((i+1)); fetch "$u" "$tmp/ingress-$i.yaml" ""; kubectl_retry apply -f "$tmp/ingress-$i.yaml"; done
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
  # Last step: the seed on the FAT boot partition (and cloud-init's cached copy) lose the secrets.
  log "removing secrets from the cloud-init seed"
  for f in /boot/firmware/user-data /var/lib/cloud/instance/user-data.txt; do
    [ -f "$f" ] || continue
    cp /etc/pi-image/user-data.scrubbed "$f.pi-image-new" && mv "$f.pi-image-new" "$f"
  done
  rm -f /var/lib/cloud/instance/user-data.txt.i
  sync
  ;;
*)
  die "unknown step $STEP"
  ;;
esac
touch "$DONE/$STEP"
log "done"
