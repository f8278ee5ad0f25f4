// The dpkg status database (/var/lib/dpkg/status): which packages are installed, at which version and
// architecture, with what they provide. Pure; no I/O.
// Invariants: only `Status: install ok installed` counts (half-installed, config-files, deinstall are ignored);
// a package is keyed by name and architecture (multi-arch images can hold foo:arm64 and foo:armhf).
import { InputError } from '../../errors.ts';
import { StanzaParser } from './deb822.ts';
import { parseProvides, type Provide } from './depends.ts';

export interface InstalledPackage {
  package: string;
  version: string;
  architecture: string;
  multiArch?: string;
  provides: Provide[];
  essential: boolean;
}

const FIELDS = ['package', 'status', 'version', 'architecture', 'multi-arch', 'provides', 'essential'];

/** Installed packages of a dpkg status text. */
export function parseDpkgStatus(text: string | Buffer, where = '/var/lib/dpkg/status'): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  const p = new StanzaParser(
    (st, line) => {
      const name = st.get('package');
      if (!name) throw new InputError(`${where} line ${line}: a stanza without a Package field`);
      if ((st.get('status') ?? '').split(/\s+/).join(' ') !== 'install ok installed') return;
      const version = st.get('version');
      if (!version) throw new InputError(`${where} line ${line}: ${name} is installed but has no Version`);
      out.push({
        package: name,
        version,
        architecture: st.get('architecture') ?? 'all',
        multiArch: st.get('multi-arch'),
        provides: st.has('provides') ? parseProvides(st.get('provides')!, `${where}: ${name}: Provides`) : [],
        essential: st.get('essential') === 'yes',
      });
    },
    { fields: FIELDS, name: where },
  );
  p.push(text);
  p.end();
  return out;
}

/** The image's native architecture from its status: the architecture dpkg itself is installed for. */
export function nativeArchFromStatus(pkgs: InstalledPackage[]): string | undefined {
  return pkgs.find((p) => p.package === 'dpkg')?.architecture;
}
