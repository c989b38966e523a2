import { chromium, type Browser } from 'playwright-core';
import { toolPath } from './local-deps.js';

/**
 * Debian's Chromium (linked into .tools/bin by `npm run tools`), headless, started by playwright-core
 * (no browser download): with nothing reaching out, since this machine has no other network.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: toolPath('chromium'),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
