/** Errors of auth and limits, from the one catalogue. */
import { errorCatalogue, GatewayError } from '../errors.ts';

const limitErrors = {
  SWY_ERR_INVALID_API_KEY: errorCatalogue.SWY_ERR_INVALID_API_KEY,
  SWY_ERR_MODEL_NOT_ALLOWED: errorCatalogue.SWY_ERR_MODEL_NOT_ALLOWED,
  SWY_ERR_RATE_LIMIT_REQUESTS: errorCatalogue.SWY_ERR_RATE_LIMIT_REQUESTS,
  SWY_ERR_RATE_LIMIT_TOKENS: errorCatalogue.SWY_ERR_RATE_LIMIT_TOKENS,
  SWY_ERR_INSUFFICIENT_QUOTA: errorCatalogue.SWY_ERR_INSUFFICIENT_QUOTA,
  SWY_ERR_LIMITS_UNAVAILABLE: errorCatalogue.SWY_ERR_LIMITS_UNAVAILABLE,
  SWY_ERR_AUTH_UNAVAILABLE: errorCatalogue.SWY_ERR_AUTH_UNAVAILABLE,
};

export type LimitErrorName = keyof typeof limitErrors;

/** Builds one of the errors above. */
export function limitError(
  name: LimitErrorName,
  options: { message?: string; param?: string | null; retryAfterSeconds?: number; cause?: unknown } = {},
): GatewayError {
  return new GatewayError(limitErrors[name], options);
}
