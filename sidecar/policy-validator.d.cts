// Generated from sidecar/policy-schema.ts by scripts/config-validators.ts (npm run validators): do not edit.
import type { ValidateFunction } from 'ajv';
declare const validate: ValidateFunction;
export = validate;
