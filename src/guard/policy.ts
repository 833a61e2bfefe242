/**
 * The guard's decision for one request (`guard`, `tenants.<t>.guard`): scan
 * the body, then per category found apply the tenant's action —
 *   allow    send as is;
 *   confine  send as is, but only to zones marked `sensitive` (zones.ts);
 *   redact   replace each value with a typed placeholder (`[EMAIL_1]`; the
 *            same value gets the same placeholder) before anything leaves;
 *   block    refuse with 400 `sensitive_data_blocked`, naming the categories
 *            found and never the values.
 * With the guard off nothing is built and requests pay nothing.
 */
import type { GuardActionName } from './config.ts';
import type { SwitchyardConfig } from '../config/schema.ts';
import { gatewayError, type GatewayError } from '../errors.ts';
import { type Finding, guardCategories, GuardScanner } from './detect.ts';

export type GuardAction = GuardActionName;

/** What the guard decided for one request. */
export interface GuardVerdict {
  /** Each category found and the action taken (metrics count these). */
  found: Array<[category: string, action: GuardAction]>;
  /** The same as `category:action` (the log line and the audit log). */
  verdicts: string[];
  /** Only sensitive zones may receive it. */
  confine: boolean;
  /** The body to send instead (values replaced by placeholders), when something was redacted. */
  raw: string | undefined;
  /** Set when a blocked category was found: the request must be refused with this error. */
  refusal: GatewayError | undefined;
  /** With guard.restore: each placeholder and the value it stands for (as it was written in the JSON body); memory only. */
  placeholders: Map<string, string> | undefined;
}

/** What the output scan looks for in answers: secrets a model may have been fed or may make up, not ordinary PII. */
const outputCategories = ['private_key', 'api_key', 'jwt'];

const placeholderPattern = /\[[A-Z0-9_]+_\d+\]/g;

/**
 * Puts the values back (guard.restore): each placeholder the request's
 * redaction wrote becomes its value again (JSON-escaped for a JSON answer,
 * decoded for stream text); a placeholder the model made up stays as it is.
 */
export function restorePlaceholders(text: string, placeholders: ReadonlyMap<string, string>): string {
  return text.includes('[') ? text.replace(placeholderPattern, (placeholder) => placeholders.get(placeholder) ?? placeholder) : text;
}

/** Order of the actions, least strict first: a zone's policy can only raise a request's action. */
const strictness: Record<GuardAction, number> = { allow: 0, confine: 1, redact: 2, block: 3 };

const placeholderNames: Record<string, string> = { high_entropy: 'SECRET' };

/** The placeholder stem of a category: EMAIL, API_KEY, SECRET (high entropy), or a custom pattern's name. */
function stem(category: string): string {
  return (placeholderNames[category] ?? category).toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/**
 * Writes placeholders over the findings. The text is JSON: a finding that
 * starts on the letter of an escape (`\n` before an address) starts after it,
 * so the placeholder never breaks an escape and the body stays valid JSON.
 */
export function redact(raw: string, findings: readonly Finding[], placeholders?: Map<string, string>): string {
  const numbers = new Map<string, number>();
  const assigned = new Map<string, string>();
  let out = '';
  let at = 0;
  for (const finding of findings) {
    let start = finding.start;
    let backslashes = 0;
    while (raw.charCodeAt(start - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 1) start += raw[start] === 'u' ? 5 : 1;
    if (start >= finding.end) continue;
    const value = raw.slice(start, finding.end);
    const key = `${finding.category}\u0000${value}`;
    let placeholder = assigned.get(key);
    if (placeholder === undefined) {
      const name = stem(finding.category);
      const number = (numbers.get(name) ?? 0) + 1;
      numbers.set(name, number);
      placeholder = `[${name}_${number}]`;
      assigned.set(key, placeholder);
      placeholders?.set(placeholder, value);
    }
    out += raw.slice(at, start) + placeholder;
    at = finding.end;
  }
  return out + raw.slice(at);
}

/** A key's own guard actions (auth.keys[].guard, a token's guard claim), over its tenant's. */
export type KeyGuard = Readonly<Record<string, GuardAction>>;

export class Guard {
  private readonly scanner: GuardScanner;
  private readonly patterns: SwitchyardConfig['guard']['patterns'];
  private readonly categories: ReadonlySet<string>;
  /** Per key policy: its merged actions and a scanner for the categories they need (built on first use). */
  private readonly byKey = new WeakMap<object, { actions: ReadonlyMap<string, GuardAction>; scanner: GuardScanner }>();
  private readonly scanners = new Map<string, GuardScanner>();
  /** Zone policies (zones.<z>.guard): the least a request that may reach the zone gets. */
  private readonly byZone = new Map<string, ReadonlyMap<string, GuardAction>>();
  private readonly zoneCategories = new Set<string>();

  /** True when some zone has a guard policy (the pipeline then says which zones a request may reach). */
  get zonePolicies(): boolean {
    return this.byZone.size > 0;
  }
  private readonly actions: ReadonlyMap<string, GuardAction>;
  private readonly byTenant = new Map<string, ReadonlyMap<string, GuardAction>>();
  private readonly restore: boolean;
  /** Scans answers for secrets (guard.output: redact); undefined when off. */
  private readonly output: GuardScanner | undefined;

  /** Undefined when the guard is off. */
  static create(config: Pick<SwitchyardConfig, 'guard' | 'tenants' | 'zones'>): Guard | undefined {
    return config.guard.enabled ? new Guard(config) : undefined;
  }

  private constructor(config: Pick<SwitchyardConfig, 'guard' | 'tenants' | 'zones'>) {
    const global = new Map(Object.entries(config.guard.actions) as Array<[string, GuardAction]>);
    this.actions = global;
    this.restore = config.guard.restore;
    this.output = config.guard.output === 'redact' ? new GuardScanner(outputCategories) : undefined;
    const used = new Set<string>([...global].filter(([, action]) => action !== 'allow').map(([category]) => category));
    for (const [tenant, policy] of Object.entries(config.tenants)) {
      if (!policy.guard) continue;
      const merged = new Map([...global, ...(Object.entries(policy.guard) as Array<[string, GuardAction]>)]);
      this.byTenant.set(tenant, merged);
      for (const [category, action] of merged) if (action !== 'allow') used.add(category);
    }
    for (const [zone, policy] of Object.entries(config.zones)) {
      if (!policy.guard) continue;
      const actions = new Map(Object.entries(policy.guard) as Array<[string, GuardAction]>);
      this.byZone.set(zone, actions);
      for (const [category, action] of actions)
        if (action !== 'allow') {
          used.add(category);
          this.zoneCategories.add(category);
        }
    }
    this.patterns = config.guard.patterns;
    this.categories = new Set([...guardCategories, ...config.guard.patterns.map((pattern) => pattern.name)]);
    this.scanner = new GuardScanner([...used], config.guard.patterns);
  }

  /** The actions and scanner for a key with its own policy (cached per key record). */
  private forKey(key: { guard?: KeyGuard | undefined }, tenant: string): { actions: ReadonlyMap<string, GuardAction>; scanner: GuardScanner } {
    let entry = this.byKey.get(key);
    if (entry === undefined) {
      const own = Object.entries(key.guard ?? {}).filter(([category]) => this.categories.has(category)) as Array<[string, GuardAction]>;
      const actions = new Map([...(this.byTenant.get(tenant) ?? this.actions), ...own]);
      const enabled = [...actions].filter(([, action]) => action !== 'allow').map(([category]) => category);
      const used = [...new Set([...enabled, ...this.zoneCategories])].sort();
      const id = used.join(',');
      let scanner = this.scanners.get(id);
      if (scanner === undefined) {
        if (this.scanners.size > 64) this.scanners.clear();
        scanner = new GuardScanner(used, this.patterns);
        this.scanners.set(id, scanner);
      }
      entry = { actions, scanner };
      this.byKey.set(key, entry);
    }
    return entry;
  }

  /**
   * guard.output: the answer with secrets replaced by `[<CATEGORY>_REDACTED]`, and the categories found;
   * undefined when the scan is off or found nothing.
   */
  /** True when answers are scanned for secrets (guard.output: redact). */
  get scansOutput(): boolean {
    return this.output !== undefined;
  }

  scanAnswer(json: string): { json: string; categories: string[] } | undefined {
    if (this.output === undefined) return undefined;
    const findings = this.output.scan(json);
    if (findings.length === 0) return undefined;
    let out = '';
    let at = 0;
    for (const finding of findings) {
      out += `${json.slice(at, finding.start)}[${stem(finding.category)}_REDACTED]`;
      at = finding.end;
    }
    return { json: out + json.slice(at), categories: [...new Set(findings.map((finding) => finding.category))] };
  }

  /** Scans and decides (a blocked category gives a `refusal`: 400 sensitive_data_blocked). Undefined: nothing found. */
  inspect(raw: string, tenant: string, key?: { guard?: KeyGuard | undefined }, reachable?: Iterable<string>): GuardVerdict | undefined {
    const own = key?.guard === undefined ? undefined : this.forKey(key, tenant);
    const findings = (own?.scanner ?? this.scanner).scan(raw);
    if (findings.length === 0) return undefined;
    const actions = own?.actions ?? this.byTenant.get(tenant) ?? this.actions;
    const verdicts = new Map<string, GuardAction>();
    const redacted: Finding[] = [];
    for (const finding of findings) {
      let action = actions.get(finding.category) ?? 'allow';
      if (reachable !== undefined) {
        for (const zone of reachable) {
          const floor = this.byZone.get(zone)?.get(finding.category);
          if (floor !== undefined && strictness[floor] > strictness[action]) action = floor;
        }
      }
      verdicts.set(finding.category, action);
      if (action === 'redact') redacted.push(finding);
    }
    const blocked = [...verdicts].filter(([, action]) => action === 'block').map(([category]) => category);
    const refusal =
      blocked.length === 0
        ? undefined
        : gatewayError('SWY_ERR_SENSITIVE_DATA', {
            message: `The request contains data this gateway does not send on (${blocked.sort().join(', ')}). Remove it, or ask the operator about the guard policy.`,
          });
    const placeholders = this.restore && redacted.length > 0 ? new Map<string, string>() : undefined;
    return {
      found: [...verdicts],
      verdicts: [...verdicts].map(([category, action]) => `${category}:${action}`),
      confine: [...verdicts.values()].includes('confine'),
      raw: redacted.length > 0 && refusal === undefined ? redact(raw, redacted, placeholders) : undefined,
      refusal,
      placeholders,
    };
  }
}
