/**
 * deploy/k8s: every manifest parses as YAML (the `yaml` package), the required
 * kinds are there, and the pieces fit together: selectors match the pod labels,
 * probes and scrape settings name real ports and paths, the grace period covers
 * the gateway's drain, and the ConfigMap's gateway config validates with the
 * environment the Deployment and the example Secret give it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { validateConfig } from '../../../src/config/load.ts';

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
  replicas: number;
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

  it('kustomization.yaml lists existing files, leaving out only the example Secret and the optional ServiceMonitor', () => {
    const kustomization = parseYaml(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = readdirSync(k8sDir).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml');
    for (const resource of kustomization.resources) expect(files).toContain(resource);
    expect(files.filter((file) => !kustomization.resources.includes(file)).sort()).toEqual(['secret.example.yaml', 'servicemonitor.yaml']);
  });

  it('runs 2+ gateway replicas with readiness on /readyz, liveness on /healthz, resources and scrape annotations', () => {
    expect(spec.replicas).toBeGreaterThanOrEqual(2);
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

    const pdb = find('PodDisruptionBudget') as Manifest & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(spec.replicas);

    const hpa = find('HorizontalPodAutoscaler') as Manifest & { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number } };
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);

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

  it('shares one Redis between the replicas through a Service', () => {
    const redis = find('Service', 'redis') as Manifest & { spec: { ports: Array<{ port: number }> } };
    expect(redis.spec.ports[0]?.port).toBe(6379);
  });
});
