// The one place @peculiar/x509 is loaded: it needs the reflect-metadata polyfill (for tsyringe)
// and a WebCrypto provider before first use.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };

/** Copy into a plain ArrayBuffer-backed view, the type WebCrypto and @peculiar/x509 accept. */
export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}
