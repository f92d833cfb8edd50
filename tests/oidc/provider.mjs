// A real OpenID provider for the console's sign-in tests: the certified
// `oidc-provider` package (installed by .ci/run from npm), on loopback, with
// one client (the console) and accounts whose groups come from the test.
//
//   OUBLI_REDIRECT  the console's callback URL
//   OUBLI_SECRET    the client's secret
//   OUBLI_GROUPS    JSON: login name -> list of groups
//   OUBLI_USERINFO  "1": keep the scopes' claims out of the ID token (the
//                   package's default), so they come from userinfo only
//   NODE_PATH       the node_modules folder that holds oidc-provider
//
// Prints "issuer <url>" once it listens. Any login name signs in with any
// password (the package's development interactions): the test is about
// what oubli does with the answer, not about passwords.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// ES modules ignore NODE_PATH: resolve the package from it by hand.
const modules = process.env.NODE_PATH || 'node_modules';
const entry = createRequire(path.join(path.resolve(modules), 'x.js')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

const groups = JSON.parse(process.env.OUBLI_GROUPS || '{}');
const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'oubli-console',
      client_secret: process.env.OUBLI_SECRET,
      redirect_uris: [process.env.OUBLI_REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email'],
      groups: ['groups'],
    },
    // The scopes' claims in the ID token, where oubli reads the role first;
    // or, as many providers do, only at the userinfo endpoint.
    conformIdTokenClaims: process.env.OUBLI_USERINFO === '1',
    pkce: { required: () => true },
    cookies: { keys: ['a test provider key, not a secret'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`, groups: groups[id] || [] };
        },
      };
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`issuer ${issuer}\n`);
});
