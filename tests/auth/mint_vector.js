#!/usr/bin/env node
// mint_vector.js - issues the test vector of docs/auth.md with nothing but
// Node's built-in crypto, and prints the token. It proves that a backend in
// another language can issue tokens sparkd accepts: its output must equal
// the token that tests/unit/test_auth.c expects, byte for byte.
'use strict';
const crypto = require('crypto');

// An Ed25519 private key from its 32-byte seed: Node imports raw seeds only
// as PKCS#8, so prefix the fixed DER header of an Ed25519 PKCS#8 key.
function signingKeyFromSeed(seed) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

function mint(kid, seed, claims) {
  const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
  const signed = `${kid}.${payload}`;
  const sig = crypto.sign(null, Buffer.from(signed, 'ascii'), signingKeyFromSeed(seed));
  return `${signed}.${sig.toString('base64url')}`;
}

function publicKeyFromSeed(seed) {
  const jwk = crypto.createPublicKey(signingKeyFromSeed(seed)).export({ format: 'jwk' });
  return jwk.x; // already unpadded URL-safe base64
}

const seed = Buffer.from([...Array(32).keys()]); // 00 01 02 ... 1f
const kid = 'vector1';
// Members in this order: sub, name, iat, exp, scopes (nbf is optional).
const claims = {
  sub: '42',
  name: 'Ada Lovelace',
  iat: 1700000000,
  exp: 1700003600,
  scopes: ['room:lobby', 'component:todo:*'],
};

if (process.argv.includes('--keys')) {
  console.log(`SPARK_SIGNING_KEY=${kid}:${seed.toString('base64url')}`);
  console.log(`SPARK_VERIFY_KEYS=${kid}:${publicKeyFromSeed(seed)}`);
}
console.log(mint(kid, seed, claims));
