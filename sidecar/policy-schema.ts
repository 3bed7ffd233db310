// The JSON schema of a policy file (sidecar/policy-parse.ts reads it): shape and types only; the rules
// themselves are checked after it. Not compiled at run time: scripts/config-validators.ts generates
// sidecar/policy-validator.cjs from it with Ajv's standalone code, and
// test/config-validators.test.ts fails when that file is not what this schema generates.

const sectionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['allow'],
  properties: { allow: { type: 'array', items: { type: 'string' } } },
};

export const policySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ports'],
  properties: {
    trustDomains: { type: 'array', minItems: 1, items: { type: 'string' } },
    ports: { type: 'object', additionalProperties: { $ref: '#/$defs/section' } },
    default: { $ref: '#/$defs/section' },
  },
  $defs: { section: sectionSchema },
};
