import { randomBytes } from 'node:crypto';

/**
 * Well-formed, fake credentials for every provider, with fresh random secret values each call,
 * so a test can search its outputs for exactly these values.
 */
export function sampleCredentials() {
  const random = (n: number) => randomBytes(n).toString('base64url');
  const privateKey = `-----BEGIN PRIVATE KEY-----\n${random(48)}\n${random(48)}\n-----END PRIVATE KEY-----\n`;
  const gcpKey = {
    type: 'service_account',
    project_id: 'acme-prod',
    private_key_id: random(20),
    private_key: privateKey,
    client_email: 'deployer@acme-prod.iam.gserviceaccount.com',
    client_id: '1234567890',
  };
  return {
    gcp: {
      fields: { serviceAccountKey: JSON.stringify(gcpKey) },
      secrets: [privateKey.split('\n')[1]!, privateKey.split('\n')[2]!, gcpKey.private_key_id],
    },
    aws: {
      fields: {
        accountId: '123456789012',
        accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        secretAccessKey: random(30),
        sessionToken: random(40),
        region: 'eu-west-1',
      },
      get secrets() {
        return [this.fields.secretAccessKey, this.fields.sessionToken];
      },
    },
    azure: {
      fields: {
        clientId: '11111111-2222-3333-4444-555555555555',
        clientSecret: random(30),
        tenantId: '66666666-7777-8888-9999-000000000000',
        subscriptionId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      },
      get secrets() {
        return [this.fields.clientSecret];
      },
    },
    kubernetes: (() => {
      const userToken = random(32);
      const kubeconfig = `apiVersion: v1
kind: Config
clusters:
  - name: dev
    cluster:
      server: https://k8s.example.internal:6443
contexts:
  - name: dev
    context: { cluster: dev, user: deployer }
current-context: dev
users:
  - name: deployer
    user:
      token: ${userToken}
`;
      return { fields: { kubeconfig }, secrets: [userToken] };
    })(),
    cloudflare: (() => {
      const apiToken = random(30);
      return { fields: { apiToken }, secrets: [apiToken] };
    })(),
  };
}
