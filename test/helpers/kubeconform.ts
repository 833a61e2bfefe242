/**
 * kubeconform and the Kubernetes JSON schemas it validates against, installed
 * once per machine from package registries and cached outside the repo
 * (`$SWITCHYARD_TOOLS_CACHE` or `~/.cache/switchyard-kubeconform`):
 *
 * - kubeconform: `go install github.com/yannh/kubeconform/cmd/kubeconform@<version>` (the Go module proxy);
 * - schemas: kubeconform downloads them from GitHub by default, which CI cannot reach. The PyPI package
 *   `kubernetes-validate` ships the same standalone schemas, one directory per Kubernetes version
 *   (`kubernetes_validate/kubernetes-json-schema/v1.NN.0-local-strict/`); `pip download` fetches its wheel and
 *   the directories needed are unpacked. Their `$ref`s point at `/api/_definitions.json` under an `$id` on
 *   kubernetes.io; both are rewritten to the file next door so validation reads only local files.
 *
 * Nothing is skipped when this fails: ensureKubeconform() throws one line naming what to install.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const kubeconformVersion = 'v0.8.0';
export const schemaPackage = 'kubernetes-validate==1.37.0';
/** The oldest Kubernetes the manifests support (autoscaling/v2, policy/v1 are GA well before) and the newest schemas. */
export const kubernetesVersions = ['1.30.0', '1.37.0'];

export interface Kubeconform {
  binary: string;
  /** A `-schema-location` template reading the cached schemas. */
  schemaLocation: string;
}

function cacheDir(): string {
  if (process.env.SWITCHYARD_TOOLS_CACHE) return join(process.env.SWITCHYARD_TOOLS_CACHE, 'kubeconform');
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard-kubeconform');
}

function lastLine(text: string | null | undefined): string {
  return (text ?? '').trim().split('\n').pop()?.trim() ?? '';
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number }): { ok: boolean; why: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', env: options.env ?? process.env, timeout: options.timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error) return { ok: false, why: result.error.message };
  if (result.status !== 0) return { ok: false, why: lastLine(result.stderr) || lastLine(result.stdout) || `exit ${result.status}` };
  return { ok: true, why: '' };
}

function ensureBinary(directory: string): string {
  const binary = join(directory, kubeconformVersion, 'kubeconform');
  if (existsSync(binary)) return binary;
  const module = `github.com/yannh/kubeconform/cmd/kubeconform@${kubeconformVersion}`;
  const probe = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `kubeconform is not installed and there is no \`go\` to build it: install Go (https://go.dev/dl or the golang-go package), or run \`GOBIN=${join(directory, kubeconformVersion)} go install ${module}\` elsewhere`,
    );
  }
  const built = run('go', ['install', module], { env: { ...process.env, GOBIN: join(directory, kubeconformVersion), GOFLAGS: '-mod=mod' }, timeoutMs: 600_000 });
  if (!built.ok || !existsSync(binary))
    throw new Error(`\`go install ${module}\` failed (${built.why || 'no binary'}): run it yourself with GOBIN=${join(directory, kubeconformVersion)}`);
  return binary;
}

function ensureSchemas(directory: string): string {
  const root = join(directory, 'schemas', schemaPackage.replace('==', '-'));
  const missing = kubernetesVersions.filter((version) => !existsSync(join(root, `v${version}-local-strict`, '.complete')));
  if (missing.length === 0) return root;
  const download = mkdtempSync(join(tmpdir(), 'swy-k8s-schemas-'));
  try {
    const fetched = run('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--quiet', '--dest', download, schemaPackage], {
      timeoutMs: 300_000,
    });
    const wheel = readdirSync(download).find((name) => name.endsWith('.whl'));
    if (!fetched.ok || !wheel) {
      throw new Error(
        `\`python3 -m pip download --no-deps ${schemaPackage}\` failed (${fetched.why || 'no wheel'}): the Kubernetes schemas for kubeconform come from that PyPI package`,
      );
    }
    const unpacked = join(download, 'unpacked');
    const prefixes = missing.map((version) => `kubernetes_validate/kubernetes-json-schema/v${version}-local-strict/`);
    const script = [
      'import sys, zipfile',
      'wheel, target, *prefixes = sys.argv[1:]',
      'archive = zipfile.ZipFile(wheel)',
      'members = [name for name in archive.namelist() if name.startswith(tuple(prefixes)) and name.endswith(".json")]',
      'archive.extractall(target, members)',
      'print(len(members))',
    ].join('\n');
    const extracted = spawnSync('python3', ['-c', script, join(download, wheel), unpacked, ...prefixes], { encoding: 'utf8' });
    if (extracted.status !== 0 || Number(extracted.stdout.trim()) === 0) throw new Error(`unpacking ${wheel} failed: ${lastLine(extracted.stderr) || 'no schema files in it'}`);
    for (const version of missing) {
      const from = join(unpacked, 'kubernetes_validate/kubernetes-json-schema', `v${version}-local-strict`);
      for (const file of readdirSync(from)) {
        // `$ref: /api/_definitions.json#/...` resolves against the `$id` (kubernetes.io): point both at the file next door.
        const text = readFileSync(join(from, file), 'utf8').replaceAll('"/api/_definitions.json#', '"_definitions.json#');
        const schema = JSON.parse(text) as Record<string, unknown>;
        delete schema.$id;
        writeFileSync(join(from, file), JSON.stringify(schema));
      }
      const target = join(root, `v${version}-local-strict`);
      mkdirSync(root, { recursive: true });
      rmSync(target, { recursive: true, force: true });
      cpSync(from, target, { recursive: true });
      writeFileSync(join(target, '.complete'), `${schemaPackage}\n`);
    }
    return root;
  } finally {
    rmSync(download, { recursive: true, force: true });
  }
}

/** kubeconform and the schemas, installed on first use (a minute or two), cached after. Throws one line when that fails. */
export function ensureKubeconform(): Kubeconform {
  const directory = cacheDir();
  mkdirSync(directory, { recursive: true });
  const binary = ensureBinary(directory);
  const root = ensureSchemas(directory);
  return { binary, schemaLocation: `${root}/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json` };
}
