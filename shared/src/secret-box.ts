import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A secret sealed with AES-256-GCM: which key, the nonce, the tag and the ciphertext (base64). */
export interface SealedSecret {
  keyId: string;
  iv: string;
  tag: string;
  data: string;
}

interface Key {
  id: string;
  key: Buffer;
}

/**
 * The keys credentials are sealed with: the active one (CREDENTIALS_KEY) seals, and it or any
 * previous key (CREDENTIALS_KEY_PREVIOUS, during a rotation) opens. A key's id is derived from the
 * key itself, so an operator never has to name keys and a wrong key can never be mistaken for the right one.
 */
export class Keyring {
  readonly active: Key;
  private readonly byId = new Map<string, Key>();

  constructor(activeKey: string, previousKeys: string[] = []) {
    this.active = Keyring.decode(activeKey, 'CREDENTIALS_KEY');
    for (const key of [this.active, ...previousKeys.map((k) => Keyring.decode(k, 'CREDENTIALS_KEY_PREVIOUS'))]) this.byId.set(key.id, key);
  }

  /** From the config values (previous keys comma-separated); undefined when no key is set. */
  static fromConfig(config: { CREDENTIALS_KEY?: string; CREDENTIALS_KEY_PREVIOUS?: string }): Keyring | undefined {
    if (!config.CREDENTIALS_KEY) return undefined;
    const previous = (config.CREDENTIALS_KEY_PREVIOUS ?? '').split(',').map((k) => k.trim());
    return new Keyring(
      config.CREDENTIALS_KEY,
      previous.filter((k) => k !== ''),
    );
  }

  /** The id a base64 key gets (8 hex characters of a hash of it). */
  static keyId(key: Buffer): string {
    return createHash('sha256').update('pds-credentials-key:').update(key).digest('hex').slice(0, 8);
  }

  private static decode(base64: string, variable: string): Key {
    const key = Buffer.from(base64, 'base64');
    if (key.length !== 32)
      throw new Error(`${variable} must be 32 bytes, base64-encoded (openssl rand -base64 32); it decodes to ${key.length} bytes`);
    return { id: Keyring.keyId(key), key };
  }

  /**
   * Seals `plaintext`. `context` (the credential's id) is authenticated with it, so a sealed value
   * copied onto another credential does not open.
   */
  seal(plaintext: string, context: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.active.key, iv);
    cipher.setAAD(Buffer.from(context));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { keyId: this.active.id, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  open(sealed: SealedSecret, context: string): string {
    const key = this.byId.get(sealed.keyId);
    if (!key) {
      throw new Error(
        `sealed with key ${sealed.keyId}, which is neither CREDENTIALS_KEY nor in CREDENTIALS_KEY_PREVIOUS (known: ${[...this.byId.keys()].join(', ')})`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  }
}
