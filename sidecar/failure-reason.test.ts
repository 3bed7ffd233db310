// Failure classification is a pure table: each input must land on one stable metric label.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TollgateError } from '../common/errors.ts';
import { certificateFailure, failureReason, reasonText } from './failure-reason.ts';

describe('failureReason', () => {
  const errno = (code: string): Error => Object.assign(new Error(code), { code });
  const cases: Array<[string, Error | null, string]> = [
    ['no error: closed mid-handshake', null, 'tls_handshake'],
    ['unknown CA', errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'untrusted'],
    ['self-signed', errno('DEPTH_ZERO_SELF_SIGNED_CERT'), 'untrusted'],
    ['expired', errno('CERT_HAS_EXPIRED'), 'expired'],
    ['not yet valid', errno('CERT_NOT_YET_VALID'), 'not_yet_valid'],
    ['wrong extKeyUsage', errno('INVALID_PURPOSE'), 'svid_invalid'],
    ['refused TCP', errno('ECONNREFUSED'), 'unreachable'],
    ['handshake timeout', errno('ERR_TLS_HANDSHAKE_TIMEOUT'), 'handshake_timeout'],
    ['no client certificate', errno('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), 'no_client_cert'],
    ['old protocol', errno('ERR_SSL_UNSUPPORTED_PROTOCOL'), 'protocol_version'],
    ['protocol alert', errno('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'), 'protocol_version'],
    ['other OpenSSL error', errno('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), 'tls_handshake'],
    ['a profile failure', new TollgateError('TG_SVID_INVALID', 'leaf has cA=true', { details: { reason: 'leaf has cA=true' } }), 'svid_invalid'],
    ['an expired SVID by our clock', new TollgateError('TG_SVID_EXPIRED', 'x'), 'svid_expired'],
    ['another trust domain', new TollgateError('TG_SVID_UNTRUSTED', 'x'), 'svid_untrusted'],
    ['a tagged reason', new TollgateError('TG_SVID_UNTRUSTED', 'x', { details: { reason: 'wrong_identity' } }), 'wrong_identity'],
  ];
  for (const [name, err, reason] of cases) {
    test(`${name} → ${reason}`, () => assert.equal(failureReason(err).reason, reason));
  }
});

describe('certificateFailure', () => {
  const cases: Array<[string, string, string]> = [
    ['CERT_HAS_EXPIRED', 'expired', 'TG_SVID_EXPIRED'],
    ['CERT_NOT_YET_VALID', 'not_yet_valid', 'TG_SVID_EXPIRED'],
    ['INVALID_PURPOSE', 'svid_invalid', 'TG_SVID_INVALID'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'untrusted', 'TG_SVID_UNTRUSTED'],
    ['SOMETHING_NEW_FROM_OPENSSL', 'untrusted', 'TG_SVID_UNTRUSTED'],
    ['PERMITTED_VIOLATION', 'name_constraints', 'TG_SVID_UNTRUSTED'],
    ['EXCLUDED_VIOLATION', 'name_constraints', 'TG_SVID_UNTRUSTED'],
  ];
  for (const [verdict, reason, code] of cases) {
    test(`${verdict} → ${reason} (${code})`, () => assert.deepEqual(certificateFailure(verdict), { reason, code, internal: verdict }));
  }
});

describe('every failure has a TG_ code and a reason a person reads; OpenSSL names stay internal', () => {
  const errno = (code: string): Error => Object.assign(new Error(`error:0A0000C7:SSL routines::x (../deps/openssl/openssl/ssl/statem/statem_srvr.c:3517) ${code}`), { code });
  for (const code of ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_TLS_HANDSHAKE_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', '']) {
    test(code || '(no code)', () => {
      const why = failureReason(errno(code));
      assert.match(why.code, /^TG_[A-Z_]+$/);
      assert.equal(why.internal, code || 'ERR_TLS');
      const text = reasonText(why.reason, '');
      assert.ok(text.length > 10, `a text for ${why.reason}`);
      assert.doesNotMatch(text, /ERR_|\.c:|openssl/);
    });
  }
  test('no error (closed mid-handshake) is TG_TLS_HANDSHAKE', () => assert.equal(failureReason(null).code, 'TG_TLS_HANDSHAKE'));
});
