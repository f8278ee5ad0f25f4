// The container images `kubeadm config images list` gives for a Kubernetes minor (pause, etcd and CoreDNS tags as
// of that minor's kubeadm; apiserver, controller-manager, scheduler and proxy carry the cluster's own version),
// from registry.k8s.io (k8s.gcr.io is frozen). Data only: one row per minor, add a row for a new one.
import { InputError } from '../errors.ts';

/** The default of kubernetes.imageRepository (the schema's). */
export const IMAGE_REPOSITORY = 'registry.k8s.io';

interface Row {
  pause: string;
  etcd: string;
  /** CoreDNS image path and tag under the repository (moved to coredns/coredns in 1.21). */
  coredns: string;
}

const TABLE: Record<string, Row> = {
  '1.17': { pause: '3.1', etcd: '3.4.3-0', coredns: 'coredns:1.6.5' },
  '1.18': { pause: '3.2', etcd: '3.4.3-0', coredns: 'coredns:1.6.7' },
  '1.19': { pause: '3.2', etcd: '3.4.13-0', coredns: 'coredns:1.7.0' },
  '1.20': { pause: '3.2', etcd: '3.4.13-0', coredns: 'coredns:1.7.0' },
  '1.21': { pause: '3.4.1', etcd: '3.4.13-0', coredns: 'coredns/coredns:v1.8.0' },
  '1.22': { pause: '3.5', etcd: '3.5.0-0', coredns: 'coredns/coredns:v1.8.4' },
  '1.23': { pause: '3.6', etcd: '3.5.1-0', coredns: 'coredns/coredns:v1.8.6' },
  '1.24': { pause: '3.7', etcd: '3.5.3-0', coredns: 'coredns/coredns:v1.8.6' },
  '1.25': { pause: '3.8', etcd: '3.5.4-0', coredns: 'coredns/coredns:v1.9.3' },
  '1.26': { pause: '3.9', etcd: '3.5.6-0', coredns: 'coredns/coredns:v1.9.3' },
  '1.27': { pause: '3.9', etcd: '3.5.7-0', coredns: 'coredns/coredns:v1.10.1' },
  '1.28': { pause: '3.9', etcd: '3.5.9-0', coredns: 'coredns/coredns:v1.10.1' },
  '1.29': { pause: '3.9', etcd: '3.5.10-0', coredns: 'coredns/coredns:v1.11.1' },
  '1.30': { pause: '3.9', etcd: '3.5.12-0', coredns: 'coredns/coredns:v1.11.1' },
};

export interface KubeadmImage {
  ref: string;
  /** Only the control plane node runs it. */
  controlPlane: boolean;
}

/** The images kubeadm pulls for `version` (1.17.17), by the repository it is configured with. */
export function kubeadmImages(version: string, repo = IMAGE_REPOSITORY): KubeadmImage[] {
  const minor = version.split('.').slice(0, 2).join('.');
  const row = TABLE[minor];
  if (!row) {
    throw new InputError(`kubernetes.version ${version}: no kubeadm image list for ${minor} (known: ${Object.keys(TABLE).join(', ')})`, 'add a row to lib/cluster/kubeadm-images.ts from `kubeadm config images list`');
  }
  const v = `v${version}`;
  return [
    { ref: `${repo}/kube-apiserver:${v}`, controlPlane: true },
    { ref: `${repo}/kube-controller-manager:${v}`, controlPlane: true },
    { ref: `${repo}/kube-scheduler:${v}`, controlPlane: true },
    { ref: `${repo}/etcd:${row.etcd}`, controlPlane: true },
    { ref: `${repo}/kube-proxy:${v}`, controlPlane: false },
    { ref: `${repo}/pause:${row.pause}`, controlPlane: false },
    { ref: `${repo}/${row.coredns}`, controlPlane: false },
  ];
}
