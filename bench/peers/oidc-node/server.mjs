// node-oidc-provider for bench/peers: one confidential client (client_secret_basic) with the
// client_credentials grant and scope `roles`, token introspection on, an in-memory store,
// signing keys made at start. Access tokens come from resource indicators with a default
// resource: a JWT signed with ALG, or an opaque (stored) token.
// Environment: PORT, ALG (RS256 | ES256), FORMAT (jwt | opaque), TOKEN_TTL (seconds).
//
// The store: the library's own memory adapter keeps only the last 1,000 entries (an LRU), so
// it would forget the 10,000 tokens of the introspection rows, and the tokens the grant rows
// mint meanwhile would push out the ones being introspected. MapAdapter is the same idea with
// room for STORE_MAX entries (default 5,000,000): a Map, entries dropped when expired.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 18300);
const alg = process.env.ALG || 'RS256';
const format = process.env.FORMAT || 'jwt';
const ttl = Number(process.env.TOKEN_TTL || 3600);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:idp-peers:api';
const storeMax = Number(process.env.STORE_MAX || 5000000);

const storage = new Map();
class MapAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    if (storage.size >= storeMax) storage.delete(storage.keys().next().value);
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    storage.set(this.key(id), { payload, expiresAt });
    if (payload.uid) storage.set(`uid:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) storage.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
  }

  static get(key) {
    const entry = storage.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      storage.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async find(id) { return MapAdapter.get(this.key(id)); }

  async findByUid(uid) {
    const id = MapAdapter.get(`uid:${uid}`);
    return id && this.find(id);
  }

  async findByUserCode(userCode) {
    const id = MapAdapter.get(`userCode:${userCode}`);
    return id && this.find(id);
  }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { storage.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of storage) {
      if (entry.payload && entry.payload.grantId === grantId) storage.delete(key);
    }
  }
}

function signingKey(kid, type, options) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: kid, use: 'sig' };
}

const provider = new Provider(issuer, {
  adapter: MapAdapter,
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
