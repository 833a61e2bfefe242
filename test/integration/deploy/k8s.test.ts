/**
 * deploy/k8s: every manifest parses as YAML (the `yaml` package), the required
 * kinds are there, and the pieces fit together: selectors match the pod labels,
 * probes and scrape settings name real ports and paths, the grace period covers
 * the gateway's drain, and the ConfigMap's gateway config validates with the
 * environment the Deployment and the example Secret give it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { validateConfig } from '../../../src/config/load.ts';
import { ensureKubeconform, type Kubeconform, kubernetesVersions } from '../../helpers/kubeconform.ts';

const root = resolve(import.meta.dirname, '../../..');
const k8sDir = join(root, 'deploy/k8s');

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Each kind's own fields; narrowed where used.
  [key: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ secretRef?: { name: string; optional?: boolean }; configMapRef?: { name: string } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; capabilities?: { drop?: string[] } };
}

interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    spec: {
      terminationGracePeriodSeconds?: number;
      securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
      containers: Container[];
      volumes?: Array<{ name: string; configMap?: { name: string } }>;
    };
  };
}

function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of readdirSync(k8sDir).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml')) {
    for (const document of parseAllDocuments(readFileSync(join(k8sDir, file), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`deploy/k8s/${file} is not valid YAML: ${document.errors.map((error) => error.message).join('; ')}`);
      const value = document.toJS() as Manifest | null;
      if (value) manifests.push({ ...value, file });
    }
  }
  return manifests;
}

const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) => Object.entries(selector).every(([key, value]) => labels?.[key] === value);

describe('deploy/k8s manifests', () => {
  const manifests = loadManifests();
  const find = (kind: string, name = 'switchyard') => {
    const found = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name);
    if (!found) throw new Error(`no ${kind} named ${name} in deploy/k8s`);
    return found;
  };
  const deployment = find('Deployment');
  const spec = deployment.spec as DeploymentSpec;
  const podLabels = spec.template.metadata.labels;
  const container = spec.template.spec.containers[0] as Container;
  const portNamed = (name: string | number) => container.ports?.find((port) => port.name === name || port.containerPort === name);

  it('parse as YAML and include every required kind', () => {
    for (const manifest of manifests) {
      expect(manifest.apiVersion, manifest.file).toBeTruthy();
      expect(manifest.kind, manifest.file).toBeTruthy();
      expect(manifest.metadata?.name, manifest.file).toBeTruthy();
    }
    const kinds = new Set(manifests.map((manifest) => manifest.kind));
    for (const kind of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'ServiceMonitor']) expect(kinds).toContain(kind);
    expect(find('HorizontalPodAutoscaler').apiVersion).toBe('autoscaling/v2');
    expect(find('PodDisruptionBudget').apiVersion).toBe('policy/v1');
    expect(find('ServiceMonitor').apiVersion).toBe('monitoring.coreos.com/v1');
  });

  it('kustomization.yaml lists existing files, leaving out only the example Secret and the optional ServiceMonitor and adapter rule', () => {
    const kustomization = parseYaml(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = readdirSync(k8sDir).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml');
    for (const resource of kustomization.resources) expect(files).toContain(resource);
    expect(files.filter((file) => !kustomization.resources.includes(file)).sort()).toEqual(['prometheus-adapter.yaml', 'secret.example.yaml', 'servicemonitor.yaml']);
  });

  it('leaves the replica count to the HPA, with readiness on /readyz, liveness on /healthz, resources and scrape annotations', () => {
    // A replicas field would reset the HPA's count on every apply.
    expect(spec.replicas).toBeUndefined();
    expect(matches(spec.selector.matchLabels, podLabels)).toBe(true);
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portNamed(container.readinessProbe?.httpGet?.port ?? '')).toBeDefined();
    expect(portNamed(container.livenessProbe?.httpGet?.port ?? '')).toBeDefined();
    expect(container.resources?.requests?.cpu).toBeTruthy();
    expect(container.resources?.requests?.memory).toBeTruthy();
    expect(container.resources?.limits?.memory).toBeTruthy();
  });

  it('serves metrics on their own port (admin.port), which the scrape annotations name', () => {
    const configMap = find('ConfigMap', 'switchyard-config') as Manifest & { data: Record<string, string> };
    const adminPort = (parseYaml(configMap.data['switchyard.yaml'] ?? '') as { admin?: { port?: number } }).admin?.port;
    expect(adminPort).toBeDefined();
    expect(portNamed('metrics')?.containerPort).toBe(adminPort);
    const annotations = spec.template.metadata.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(annotations['prometheus.io/path']).toBe('/metrics');
    expect(Number(annotations['prometheus.io/port'])).toBe(adminPort);
  });

  it('runs as a non-root user with a read-only root filesystem and no privilege escalation', () => {
    const pod = spec.template.spec.securityContext ?? {};
    expect(pod.runAsNonRoot).toBe(true);
    expect(pod.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(container.securityContext?.capabilities?.drop).toContain('ALL');
  });

  it('mounts the ConfigMap config where `serve --config` reads it, and the config validates with the pod environment', () => {
    expect(container.args?.slice(0, 3)).toEqual(['serve', '--config', '/etc/switchyard/switchyard.yaml']);
    const configVolume = spec.template.spec.volumes?.find((volume) => volume.configMap?.name === 'switchyard-config');
    expect(configVolume).toBeDefined();
    expect(container.volumeMounts).toContainEqual({ name: configVolume?.name, mountPath: '/etc/switchyard', readOnly: true });
    const configMap = find('ConfigMap', 'switchyard-config') as Manifest & { data: Record<string, string> };
    const secret = find('Secret', 'switchyard-secrets') as Manifest & { stringData: Record<string, string> };
    expect(container.envFrom?.map((source) => source.secretRef?.name)).toContain('switchyard-secrets');
    const env = { ...Object.fromEntries((container.env ?? []).map((variable) => [variable.name, variable.value ?? ''])), ...secret.stringData };
    const config = validateConfig(parseYaml(configMap.data['switchyard.yaml'] ?? ''), 'configmap.yaml', env);
    expect(config.server.host).toBe('0.0.0.0');
    expect(portNamed(config.server.port)).toBeDefined();
    expect(config.redis?.url).toBe(secret.stringData.REDIS_URL);
    // The pod's grace period covers the preStop sleep plus the gateway's drain.
    const preStopSeconds = Number(container.lifecycle?.preStop?.exec?.command.at(-1) ?? container.lifecycle?.preStop?.sleep?.seconds ?? 0);
    expect((spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(config.server.shutdownGraceMs + preStopSeconds * 1000);
  });

  it('selects the gateway pods from the Service, the PodDisruptionBudget and the HPA, and the ServiceMonitor selects the Service', () => {
    const service = find('Service') as Manifest & { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string | number }> } };
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    for (const port of service.spec.ports) expect(portNamed(port.targetPort), `Service port ${port.name}`).toBeDefined();

    const pdb = find('PodDisruptionBudget') as Manifest & { spec: { selector: { matchLabels: Record<string, string> } } };
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);

    const hpa = find('HorizontalPodAutoscaler') as Manifest & { spec: { scaleTargetRef: { kind: string; name: string } } };
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });

    // The API Service does not carry the metrics/admin port.
    expect(service.spec.ports.map((port) => portNamed(port.targetPort)?.name)).toEqual(['http']);

    const monitor = find('ServiceMonitor') as Manifest & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> } };
    const monitored = manifests.filter((manifest) => manifest.kind === 'Service' && matches(monitor.spec.selector.matchLabels, manifest.metadata.labels)) as Array<
      Manifest & { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string | number }> } }
    >;
    expect(monitored.map((manifest) => manifest.metadata.name)).toEqual(['switchyard-metrics']);
    const metricsService = monitored[0];
    expect(matches(metricsService?.spec.selector ?? {}, podLabels)).toBe(true);
    for (const endpoint of monitor.spec.endpoints) {
      const port = metricsService?.spec.ports.find((candidate) => candidate.name === endpoint.port);
      expect(port, `ServiceMonitor port ${endpoint.port}`).toBeDefined();
      expect(portNamed(port?.targetPort ?? '')?.name).toBe('metrics');
      expect(endpoint.path).toBe('/metrics');
    }
  });

  it('sizes replicas, PDB and HPA for shared backend limits: scaled on in-flight requests per pod, up to what the backends can hold', () => {
    interface HpaSpec {
      minReplicas: number;
      maxReplicas: number;
      metrics: Array<{ type: string; pods?: { metric: { name: string }; target: { type: string; averageValue: string } }; resource?: { name: string } }>;
      behavior?: { scaleDown?: { policies?: Array<{ type: string; value: number }> } };
    }
    const hpa = find('HorizontalPodAutoscaler').spec as HpaSpec;
    const pdb = find('PodDisruptionBudget').spec as { maxUnavailable?: number; minAvailable?: number };
    // Drains take one pod at a time however far the HPA scaled, and at its minimum one pod still serves.
    expect(pdb).toEqual(expect.objectContaining({ maxUnavailable: 1 }));
    expect(pdb.minAvailable).toBeUndefined();
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.minReplicas - (pdb.maxUnavailable ?? 0)).toBeGreaterThanOrEqual(1);
    expect(hpa.behavior?.scaleDown?.policies).toContainEqual(expect.objectContaining({ type: 'Pods', value: 1 }));

    // The load metric is the gateway's own, and one it exports (README's metrics table lists what /metrics serves).
    const pods = hpa.metrics.find((metric) => metric.type === 'Pods')?.pods;
    expect(pods?.metric.name).toBe('switchyard_inflight_requests');
    expect(pods?.target.type).toBe('AverageValue');
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain('| `switchyard_inflight_requests` | gauge |');
    const adapter = find('ConfigMap', 'prometheus-adapter') as Manifest & { data: Record<string, string> };
    const rules = (parseYaml(adapter.data['config.yaml'] ?? '') as { rules: Array<{ seriesQuery: string; name: { as: string } }> }).rules;
    expect(rules.map((rule) => rule.name.as)).toContain(pods?.metric.name);
    expect(hpa.metrics.map((metric) => metric.resource?.name)).toContain('cpu');

    // maxReplicas: the most the fleet can hold at full load (every backend's slots plus its queue, shared by the
    // replicas) at the target per pod; more pods would only hold idle connections.
    const configMap = find('ConfigMap', 'switchyard-config') as Manifest & { data: Record<string, string> };
    const config = validateConfig(parseYaml(configMap.data['switchyard.yaml'] ?? ''), 'configmap.yaml', {
      VLLM_URL: 'http://vllm:8000',
      LLAMACPP_URL: 'http://llamacpp:8080',
      VLLM_MODEL: 'm',
      LLAMACPP_MODEL: 'm',
    });
    const capacity = config.backends.reduce((sum, backend) => sum + backend.maxConcurrency + backend.queue.maxSize, 0);
    const needed = Math.ceil(capacity / Number(pods?.target.averageValue));
    expect(hpa.maxReplicas).toBeGreaterThanOrEqual(needed);
    expect(hpa.maxReplicas).toBeLessThanOrEqual(needed + 2);
    expect(readFileSync(join(k8sDir, 'hpa.yaml'), 'utf8')).toContain(`ceil(${capacity} / ${pods?.target.averageValue}) = ${needed}`);
  });

  it('shares one Redis between the replicas through a Service', () => {
    const redis = find('Service', 'redis') as Manifest & { spec: { ports: Array<{ port: number }> } };
    expect(redis.spec.ports[0]?.port).toBe(6379);
  });
});

/**
 * The manifests against the Kubernetes API's own schemas with kubeconform (`-strict`: unknown fields are errors),
 * for the oldest and newest Kubernetes versions supported. kubeconform and the schemas are installed from the Go
 * module proxy and PyPI on first use and cached (test/helpers/kubeconform.ts); if that fails the tests fail with
 * the reason, they are not skipped. The ServiceMonitor is a Prometheus Operator CRD with no schema in that set:
 * it is the one resource skipped, and the structural checks above cover it.
 */
describe('deploy/k8s against the Kubernetes API schemas (kubeconform)', () => {
  let tool: Kubeconform;
  beforeAll(() => {
    tool = ensureKubeconform();
  }, 900_000);

  interface Result {
    filename: string;
    kind: string;
    name: string;
    status: string;
    msg: string;
  }
  const validate = (version: string, target: string): { status: number | null; resources: Result[]; output: string } => {
    const result = spawnSync(
      tool.binary,
      [
        '-strict',
        '-summary',
        '-verbose',
        '-output',
        'json',
        '-kubernetes-version',
        version,
        '-schema-location',
        tool.schemaLocation,
        '-ignore-filename-pattern',
        'kustomization\\.yaml$',
        '-skip',
        'ServiceMonitor',
        target,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    let resources: Result[] = [];
    try {
      resources = (JSON.parse(result.stdout) as { resources?: Result[] }).resources ?? [];
    } catch {
      // not JSON: the assertions below show the output
    }
    return { status: result.status, resources, output };
  };

  it.each(kubernetesVersions)('every manifest is valid for Kubernetes %s', (version) => {
    const { status, resources, output } = validate(version, k8sDir);
    const problems = resources.filter((resource) => resource.status !== 'statusValid' && resource.kind !== 'ServiceMonitor');
    expect(problems, output).toEqual([]);
    expect(status, output).toBe(0);
    expect(
      resources
        .filter((resource) => resource.status === 'statusValid')
        .map((resource) => resource.kind)
        .sort(),
    ).toEqual(
      ['ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'Service'].sort(),
    );
    expect(resources.filter((resource) => resource.status === 'statusSkipped').map((resource) => resource.kind)).toEqual(['ServiceMonitor']);
  });

  it('rejects a wrong type and an unknown field (the schemas are really read)', () => {
    const directory = mkdtempSync(join(tmpdir(), 'swy-kubeconform-'));
    try {
      const file = join(directory, 'broken.yaml');
      writeFileSync(
        file,
        [
          'apiVersion: policy/v1',
          'kind: PodDisruptionBudget',
          'metadata: { name: broken }',
          'spec:',
          '  maxUnavailable: 1',
          '  selector: { matchLabels: { app: x } }',
          '  unknownField: true',
          '---',
          'apiVersion: autoscaling/v2',
          'kind: HorizontalPodAutoscaler',
          'metadata: { name: broken }',
          'spec:',
          '  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: x }',
          '  maxReplicas: "ten"',
          '',
        ].join('\n'),
      );
      const { status, resources, output } = validate(kubernetesVersions.at(-1) as string, file);
      expect(status, output).toBe(1);
      // kubeconform validates in parallel: the order of the results varies.
      expect(resources.map((resource) => `${resource.kind} ${resource.status}`).sort(), output).toEqual([
        'HorizontalPodAutoscaler statusInvalid',
        'PodDisruptionBudget statusInvalid',
      ]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
