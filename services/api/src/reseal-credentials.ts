/**
 * Re-seals every credential with the active CREDENTIALS_KEY, after a key rotation:
 *   CREDENTIALS_KEY=<new> CREDENTIALS_KEY_PREVIOUS=<old> node services/api/dist/src/reseal-credentials.js
 * Idempotent; once it reports 0 left on the old key, CREDENTIALS_KEY_PREVIOUS can be removed.
 */
import { connectMongo, createModels, Keyring, loadConfig, resealCredentials } from '@pds/shared';

const config = loadConfig(process.env);
const keyring = Keyring.fromConfig(config);
if (!keyring) {
  console.error('CREDENTIALS_KEY is not set: nothing to re-seal with');
  process.exitCode = 2;
} else {
  const connection = await connectMongo(config.MONGO_URL);
  try {
    const { resealed, keyId } = await resealCredentials(createModels(connection), keyring);
    console.log(`re-sealed ${resealed} credential(s) with key ${keyId}`);
  } finally {
    await connection.close();
  }
}
