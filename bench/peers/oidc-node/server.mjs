// node-oidc-provider for bench/peers: one confidential client (client_secret_basic) with the
// client_credentials grant and scope `roles`, token introspection on, the library's default
// in-memory adapter, signing keys made at start. Access tokens come from resource indicators
// with a default resource: a JWT signed with ALG, or an opaque (stored) token.
// Environment: PORT, ALG (RS256 | ES256), FORMAT (jwt | opaque), TOKEN_TTL (seconds).
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 18300);
const alg = process.env.ALG || 'RS256';
const format = process.env.FORMAT || 'jwt';
const ttl = Number(process.env.TOKEN_TTL || 3600);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:idp-peers:api';

function signingKey(kid, type, options) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: kid, use: 'sig' };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench-service',
    client_secret: 'bench-service-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'roles',
  }],
  jwks: {
    keys: [signingKey('RS256', 'rsa', { modulusLength: 2048 }),
      signingKey('ES256', 'ec', { namedCurve: 'P-256' })],
  },
  cookies: { keys: ['idp-peers-cookie-key-0123456789abcdef'] },
  scopes: ['roles'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'roles',
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: format,
        ...(format === 'jwt' ? { jwt: { sign: { alg } } } : {}),
      }),
    },
  },
  ttl: { ClientCredentials: ttl },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`node-oidc-provider ${issuer} format=${format} alg=${alg} ` +
    `NODE_ENV=${process.env.NODE_ENV} node ${process.version}`);
});
server.keepAliveTimeout = 60000;
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
});
