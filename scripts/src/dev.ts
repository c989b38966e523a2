/** Runs the embedded default (local Redis and FerretDB unless configured, and the three services) until Ctrl-C. */
import { startLocalDeployment } from '@pds/devkit';

const deployment = await startLocalDeployment();
console.log(`API ${deployment.apiUrl}  gateway ${deployment.gatewayUrl}  token ${deployment.env.ADMIN_TOKEN}`);
console.log(`Console ${deployment.apiUrl}/console/ (sign in with the token)`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void deployment.stop().then(() => process.exit(0));
  });
}
