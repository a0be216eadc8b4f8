#!/usr/bin/env node
// A real, OpenID Certified provider (panva's `oidc-provider`) for end-to-end tests.
//
//   npm ci --prefix e2e/op
//   node e2e/op/provider.mjs --port 0 \
//     --client-id e2e-client --client-secret e2e-secret \
//     --redirect-uri http://127.0.0.1:3000/oauth2callback \
//     --post-logout-redirect-uri http://127.0.0.1:3000/
//
// Every flag also reads an environment variable (flag wins): OP_HOST, OP_PORT,
// OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI, OP_POST_LOGOUT_REDIRECT_URI,
// OP_ACCESS_TOKEN_TTL, OP_RESOURCE, OP_PAR, OP_DPOP, OP_CLIENT_JWKS, OP_FAPI. The URI flags
// may be repeated (or comma-separated in the env).
//
// --par required|optional|off (RFC 9126 pushed authorization requests; default optional,
// oidc-provider's own default: the endpoint is advertised and served). `required` sets
// `requirePushedAuthorizationRequests`: discovery says require_pushed_authorization_requests
// and a plain authorization request fails with invalid_request. `off` disables the feature.
// Token revocation (RFC 7009) is always on; each refresh or access token it revokes prints
// `oidc-provider refresh_token.destroyed: client_id=ID` (or access_token) to stderr.
//
// --dpop required|default (or OP_DPOP; RFC 9449): `required` makes the login client's access
// tokens DPoP-bound (`dpop_bound_access_tokens`) and every DPoP proof carry a server nonce
// (`features.dPoP` with `nonceSecret` and `requireNonce`); `default` keeps oidc-provider's
// default (DPoP offered, not required, no nonces).
//
// --client-jwks FILE|URL (or OP_CLIENT_JWKS) adds a private_key_jwt client (RFC 7523):
// `<client-id>-pkjwt`, with the same redirect URIs and no secret, authenticating with
// assertions signed by a key of FILE, a JWK Set of public keys ({"keys": [...]}), or of
// the set at URL (an http(s) URL: the client's jwks_uri, fetched when an assertion comes).
//
// --fapi 2.0 (or OP_FAPI) switches on oidc-provider's FAPI 2.0 Security Profile
// (`features.fapi`: PKCE required, client assertions whose `aud` is the issuer, no access
// tokens in query strings, a redirect_uri in every request) and makes the clients' ID tokens
// PS256 (`id_token_signed_response_alg`, with an RSA key made at start-up), as FAPI 2.0
// allows only PS256, ES256 and EdDSA.
// Combine with --par required, --dpop required and --client-jwks for the whole profile.
//
// --resource URI (RFC 8707 resource indicators) adds an API: a second client,
// `<client-id>-api` with the same secret, may use the client_credentials grant, and its
// access tokens are RFC 9068 JWTs (typ at+jwt, RS256) whose audience is URI. The login
// client's tokens stay as they are (opaque, usable at userinfo).
//
// When ready it prints exactly one line to stdout:
//   oidc-provider listening on http://HOST:PORT
// which is also the issuer (no trailing slash). Diagnostics go to stderr, including one line
// per token issued: `oidc-provider grant.success: grant_type=GRANT client_id=ID`.
//
// Accounts: any login id with any password. sub = login, email = `${login}@example.test`
// (verified), name = the login capitalised ("alice" -> "Alice"). The ID token stays minimal
// (oidc-provider's default), so email and profile claims come from userinfo. Consent is
// kept (the dev consent page must be submitted); refresh tokens are issued to any client
// allowed the refresh_token grant, with or without offline_access.
//
// This is a test fixture: the signing key in jwks.json and the cookie keys are public.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const HERE = new URL('.', import.meta.url);

// oidc-provider prints its NOTICEs with console.info (stdout); keep stdout for the one
// "listening" line that callers wait for, and send everything else to stderr.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

const { values: flags } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'access-token-ttl': { type: 'string' },
    resource: { type: 'string' },
    par: { type: 'string' },
    dpop: { type: 'string' },
    'client-jwks': { type: 'string' },
    fapi: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8')
    .split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}

const list = (flag, env, fallback) => {
  if (flag && flag.length) return flag;
  if (process.env[env]) return process.env[env].split(',').map((s) => s.trim()).filter(Boolean);
  return fallback;
};
const int = (name, raw) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
};

const host = flags.host ?? process.env.OP_HOST ?? '127.0.0.1';
const port = int('port', flags.port ?? process.env.OP_PORT ?? '0');
const clientId = flags['client-id'] ?? process.env.OP_CLIENT_ID ?? 'e2e-client';
const clientSecret = flags['client-secret'] ?? process.env.OP_CLIENT_SECRET ?? 'e2e-secret';
const redirectUris = list(flags['redirect-uri'], 'OP_REDIRECT_URI', ['http://127.0.0.1:3000/oauth2callback']);
const postLogoutRedirectUris = list(
  flags['post-logout-redirect-uri'],
  'OP_POST_LOGOUT_REDIRECT_URI',
  ['http://127.0.0.1:3000/'],
);
const accessTokenTtl = int('access-token-ttl', flags['access-token-ttl'] ?? process.env.OP_ACCESS_TOKEN_TTL ?? '3600');
if (accessTokenTtl === 0) fail('--access-token-ttl must be at least 1 second');

const resource = flags.resource ?? process.env.OP_RESOURCE;
const par = flags.par ?? process.env.OP_PAR ?? 'optional';
if (!['required', 'optional', 'off'].includes(par)) fail(`--par must be required, optional or off, got ${JSON.stringify(par)}`);
const dpop = flags.dpop ?? process.env.OP_DPOP ?? 'default';
if (!['required', 'default'].includes(dpop)) fail(`--dpop must be required or default, got ${JSON.stringify(dpop)}`);
const fapi = flags.fapi ?? process.env.OP_FAPI;
if (fapi !== undefined && fapi !== '2.0') fail(`--fapi must be 2.0, got ${JSON.stringify(fapi)}`);
const apiClientId = `${clientId}-api`;
// What every login client (the secret one and the private_key_jwt one) gets from the flags.
const loginClientExtras = {
  ...(dpop === 'required' ? { dpop_bound_access_tokens: true } : {}),
  ...(fapi ? { id_token_signed_response_alg: 'PS256' } : {}),
};

const jwks = JSON.parse(readFileSync(new URL('jwks.json', HERE), 'utf8'));
if (fapi) {
  // The key in jwks.json is for RS256 only; PS256 ID tokens get an RSA key of their own,
  // made at start-up (one key, one algorithm).
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwks.keys.push({ ...privateKey.export({ format: 'jwk' }), alg: 'PS256', use: 'sig', kid: 'e2e-rsa-ps256' });
}

const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...loginClientExtras,
  }],
  // A sent code_challenge is still enforced (S256 only); it just is not mandatory.
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
    ...(fapi ? { fapi: { enabled: true, profile: fapi } } : {}),
    userinfo: { enabled: true },
    pushedAuthorizationRequests: {
      enabled: par !== 'off',
      requirePushedAuthorizationRequests: par === 'required',
    },
    ...(dpop === 'required' ? {
      dPoP: {
        enabled: true,
        nonceSecret: Buffer.from('e2e-dpop-nonce-secret-not-secret', 'utf8'),
        requireNonce: () => true,
      },
    } : {}),
  },
  cookies: {
    keys: ['e2e-cookie-key-not-secret-0123456789abcdef'],
  },
  jwks,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims(use, scope) {
        return {
          sub: id,
          email: `${id}@example.test`,
          email_verified: true,
          name: capitalise(id),
        };
      },
    };
  },
  claims: {
    acr: null,
    sid: null,
    auth_time: null,
    iss: null,
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  // Default is "only with offline_access"; a normal login should get a refresh token too.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  // Keep the dev consent page: tests submit it (a later browser test wants that step).
  // loadExistingGrant is left at its default (reuses a grant already given in this session).
};

// Listen first so port 0 works without a race: the issuer needs the real port, and
// nothing can reach the server before we print the address.
if (resource) {
  configuration.clients.push({
    client_id: apiClientId,
    client_secret: clientSecret,
    redirect_uris: [],
    response_types: [],
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  configuration.features.clientCredentials = { enabled: true };
  configuration.features.resourceIndicators = {
    enabled: true,
    // Only the API client gets the resource by default; logins keep userinfo tokens.
    defaultResource: (ctx, client) => (client?.clientId === apiClientId ? resource : undefined),
    useGrantedResource: () => true,
    getResourceServerInfo: (ctx, resourceIndicator) => {
      if (resourceIndicator !== resource) throw new Error(`unknown resource ${resourceIndicator}`);
      return { scope: 'api:read', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
    },
  };
}

const clientJwks = flags['client-jwks'] ?? process.env.OP_CLIENT_JWKS;
if (clientJwks) {
  let keys;
  if (/^https?:\/\//.test(clientJwks)) {
    keys = { jwks_uri: clientJwks };
    // oidc-provider's fetches refuse loopback and private addresses (SSRF protection);
    // this fixture's apps are on loopback, so the jwks_uri fetch goes without it.
    configuration.fetch = (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined });
  } else {
    try {
      keys = { jwks: { keys: JSON.parse(readFileSync(clientJwks, 'utf8')).keys } };
    } catch (err) {
      fail(`--client-jwks ${clientJwks}: ${err.message}`);
    }
  }
  configuration.clients.push({
    client_id: `${clientId}-pkjwt`,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'private_key_jwt',
    ...loginClientExtras,
    ...keys,
  });
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, () => {
    server.off('error', reject);
    resolve();
  });
}).catch((err) => fail(`cannot listen on ${host}:${port}: ${err.message}`));

const { port: actualPort } = server.address();
const urlHost = host.includes(':') ? `[${host}]` : host;
const issuer = `http://${urlHost}:${actualPort}`;

const provider = new Provider(issuer, configuration);

for (const event of [
  'server_error', 'authorization.error', 'grant.error', 'userinfo.error',
  'end_session.error', 'revocation.error', 'introspection.error', 'jwks.error',
  'discovery.error', 'check_session.error',
]) {
  provider.on(event, (...args) => {
    const err = args.find((a) => a instanceof Error);
    const detail = err ? `${err.name}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}${err.error_detail ? ` [${err.error_detail}]` : ''}${err.cause?.message ? ` cause: ${err.cause.message}` : ''}` : '';
    process.stderr.write(`oidc-provider ${event}: ${detail}\n`);
  });
}

// One stderr line per successful token request, so tests can tell which grants the client
// used: a silent session refresh shows up as `grant_type=refresh_token`.
provider.on('grant.success', (ctx) => {
  process.stderr.write(`oidc-provider grant.success: grant_type=${ctx.oidc.params.grant_type} client_id=${ctx.oidc.client?.clientId}\n`);
});

// One stderr line per token destroyed (the revocation endpoint, at the app's logout).
for (const kind of ['refresh_token', 'access_token']) {
  provider.on(`${kind}.destroyed`, (token) => {
    process.stderr.write(`oidc-provider ${kind}.destroyed: client_id=${token.clientId}\n`);
  });
}

server.on('request', provider.callback());

process.stdout.write(`oidc-provider listening on ${issuer}\n`);

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`oidc-provider: ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
