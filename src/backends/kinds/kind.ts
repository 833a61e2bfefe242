/** What differs between runtimes, behind one small interface per backend kind. */
export type HealthVerdict = 'up' | 'loading' | 'down';

/** The per-runtime facts the gateway needs (see shared/reference/RUNTIMES.md). */
export interface BackendKind {
  name: 'vllm' | 'llamacpp' | 'openai';
  /** Path probed for health; `undefined` means probe `/v1/models`. */
  healthPath: string;
  /** Reads a probe answer. Connection refused is handled by the caller as `down`. */
  interpretHealth(status: number, body: string): HealthVerdict;
  /** Stream from the runtime even when the client did not ask, so a client leaving cancels at once. */
  streamUpstreamByDefault: boolean;
}
