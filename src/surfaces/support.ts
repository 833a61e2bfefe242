/**
 * Which backends serve which surface, and how: natively (the surface's own
 * path) or translated onto chat completions. Decided per backend from, in
 * order: its `surfaces` config; what its kind serves natively; and what it
 * answered — a backend whose kind should serve a surface but answers its path
 * with 404 (a path it does not know, not a model it does not know) is
 * translated from then on, for the life of the process.
 */
import type { Backend } from '../backends/registry.ts';
import type { BackendConfig } from '../config/schema.ts';
import type { SurfaceName } from './names.ts';
import type { ServeMode, Surface } from './surface.ts';

/** Knows how each backend serves each surface. */
export class SurfaceSupport {
  /** Surfaces (by name) each backend turned out not to serve natively (by backend id). */
  private readonly learnt = new Map<string, Set<string>>();

  private readonly translating: ReadonlySet<SurfaceName>;

  /** Throws at startup when a backend asks for a translation the surface does not have. */
  constructor(backends: Iterable<Backend>, surfaces: readonly Surface[]) {
    this.translating = new Set(surfaces.filter((surface) => surface.translates).map((surface) => familyOf(surface)));
    this.check([...backends].map((backend) => backend.config));
  }

  /** Throws when a backend's config asks for a translation the surface does not have (at startup and on reload). */
  check(backends: readonly Pick<BackendConfig, 'id' | 'surfaces'>[]): void {
    for (const backend of backends) {
      for (const [name, mode] of Object.entries(backend.surfaces)) {
        if (mode === 'translate' && !this.translating.has(name as SurfaceName)) {
          throw new Error(
            `backends[${backend.id}].surfaces.${name}: ${name} has no translation onto chat completions (only ${[...this.translating].join(', ')} do); use native or off`,
          );
        }
      }
    }
  }

  /** How `backend` serves `surface`; undefined when it does not (it is then never sent there). */
  mode(backend: Backend, surface: Surface): ServeMode | undefined {
    const family = familyOf(surface);
    const configured = backend.config.surfaces[family];
    if (configured !== undefined) return configured === 'off' ? undefined : configured;
    if (backend.kind.nativeSurfaces.includes(family) && !this.learnt.get(backend.id)?.has(surface.name)) return 'native';
    return surface.translates ? 'translate' : undefined;
  }

  /**
   * The mode for a stream the guard restores values into (guard.restore): a surface with a chat translation goes
   * through it (where the restore works on the chat deltas) unless config pins the backend to native.
   */
  restoringMode(backend: Backend, surface: Surface, mode: ServeMode): ServeMode {
    if (mode !== 'native' || !surface.translates || surface.name === 'chat') return mode;
    return backend.config.surfaces[familyOf(surface)] === 'native' ? mode : 'translate';
  }

  /**
   * A native call answered 404 with `body`: when that says the path is unknown (and the surface has a
   * translation, and config did not pin the mode), the backend is translated from now on; returns true.
   */
  learnFrom404(backend: Backend, surface: Surface, body: string): boolean {
    if (!surface.translates || backend.config.surfaces[familyOf(surface)] !== undefined) return false;
    // vLLM and llama.cpp name the model in a 404 for a model they do not serve; a route they lack is "Not Found".
    if (/model/i.test(body)) return false;
    let surfaces = this.learnt.get(backend.id);
    if (!surfaces) {
      surfaces = new Set();
      this.learnt.set(backend.id, surfaces);
    }
    surfaces.add(surface.name);
    return true;
  }
}

/** The config and kind name a surface is served under. */
function familyOf(surface: Surface): SurfaceName {
  return surface.family ?? (surface.name as SurfaceName);
}
