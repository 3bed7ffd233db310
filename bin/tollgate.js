#!/usr/bin/env node
// Entry point for `npx tollgate`: runs the TypeScript sources through tsx so that a fresh
// `npm ci` is all it takes (no build step that install-script policies could hold back).
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
