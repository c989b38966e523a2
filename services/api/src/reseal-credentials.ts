/**
 * Re-seals every credential, every resource's secret parameters and every webhook's signing secret, with the active CREDENTIALS_KEY, after a key rotation:
 *   CREDENTIALS_KEY=<new> CREDENTIALS_KEY_PREVIOUS=<old> node services/api/dist/src/reseal-credentials.js
 * Idempotent; once it reports 0 left on the old key, CREDENTIALS_KEY_PREVIOUS can be removed.
 */
import {
  connectMongo,
  createModels,
  Keyring,
  loadConfig,
  resealCredentials,
  resealSecretParameters,
  resealSecretOutputs,
  resealWebhookSecrets,
} from '@pds/shared';

const config = loadConfig(process.env);
const keyring = Keyring.fromConfig(config);
if (!keyring) {
  console.error('CREDENTIALS_KEY is not set: nothing to re-seal with');
  process.exitCode = 2;
} else {
  const connection = await connectMongo(config.MONGO_URL);
  try {
    const models = createModels(connection);
    const { resealed, keyId } = await resealCredentials(models, keyring);
    console.log(`re-sealed ${resealed} credential(s) with key ${keyId}`);
    const parameters = await resealSecretParameters(models, keyring);
    console.log(`re-sealed the secret parameters of ${parameters} resource(s) with key ${keyId}`);
    const webhooks = await resealWebhookSecrets(models, keyring);
    console.log(`re-sealed the signing secrets of ${webhooks} webhook(s) with key ${keyId}`);
    const outputs = await resealSecretOutputs(models, keyring);
    console.log(`re-sealed the secret outputs of ${outputs} state version(s) with key ${keyId}`);
  } finally {
    await connection.close();
  }
}
