// kubeadm configuration for one node, as plain objects: InitConfiguration + ClusterConfiguration for the master
// (pre-set bootstrap token with the profile's kubernetes.tokenTTL; API server certificate names the master's
// FQDN, hostname and address; images from registry.k8s.io), JoinConfiguration for workers (token discovery
// pinned by the CA hash).
import type { Profile, ResolvedNode } from './profile.ts';
import type { Secrets } from './secrets.ts';

type Obj = Record<string, unknown>;

function nodeRegistration(p: Profile, node: ResolvedNode): Obj {
  const reg: Obj = { name: node.name };
  if (p.kubernetes.runtime === 'containerd') reg.criSocket = 'unix:///run/containerd/containerd.sock';
  const labels = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(',');
  if (labels) {
    reg.kubeletExtraArgs = p.kubernetes.kubeadmApiVersion.endsWith('v1beta4') ? [{ name: 'node-labels', value: labels }] : { 'node-labels': labels };
  }
  return reg;
}

/** The master's kubeadm init documents. */
export function kubeadmInitConfig(p: Profile, node: ResolvedNode, secrets: Pick<Secrets, 'token'>): Obj[] {
  const api = p.kubernetes.kubeadmApiVersion;
  const advertise = node.address === 'dhcp' ? undefined : node.address.ip;
  const init: Obj = {
    apiVersion: api,
    kind: 'InitConfiguration',
    bootstrapTokens: [
      {
        token: secrets.token,
        description: 'pi-image: lets the nodes of this cluster join; deleted by the master once they all have',
        ttl: p.kubernetes.tokenTTL,
        usages: ['signing', 'authentication'],
        groups: ['system:bootstrappers:kubeadm:default-node-token'],
      },
    ],
    ...(advertise ? { localAPIEndpoint: { advertiseAddress: advertise, bindPort: 6443 } } : {}),
    nodeRegistration: nodeRegistration(p, node),
  };
  const cluster: Obj = {
    apiVersion: api,
    kind: 'ClusterConfiguration',
    clusterName: p.cluster.name,
    kubernetesVersion: `v${p.kubernetes.version}`,
    imageRepository: p.kubernetes.imageRepository,
    controlPlaneEndpoint: p.kubernetes.apiEndpoint,
    apiServer: { certSANs: [node.fqdn, node.name, ...(advertise ? [advertise] : [])] },
    networking: { podSubnet: p.kubernetes.podCIDR, serviceSubnet: p.kubernetes.serviceCIDR, dnsDomain: p.kubernetes.dnsDomain },
  };
  const docs = [init, cluster];
  if (p.kubernetes.runtime === 'containerd') {
    docs.push({ apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration', cgroupDriver: 'systemd' });
  }
  return docs;
}

/** A worker's kubeadm join document. */
export function kubeadmJoinConfig(p: Profile, node: ResolvedNode, secrets: Pick<Secrets, 'token' | 'discoveryHash'>): Obj[] {
  return [
    {
      apiVersion: p.kubernetes.kubeadmApiVersion,
      kind: 'JoinConfiguration',
      discovery: {
        bootstrapToken: { apiServerEndpoint: p.kubernetes.apiEndpoint, token: secrets.token, caCertHashes: [secrets.discoveryHash] },
      },
      nodeRegistration: nodeRegistration(p, node),
    },
  ];
}
