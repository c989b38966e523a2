/**
 * What can be checked of the images, compose file and Kubernetes manifests without Docker or a
 * cluster: the Dockerfile lints clean and each image is set up as operations expects; compose
 * validates against the Compose Specification schema; every kustomize overlay builds and each object
 * validates against the Kubernetes (and KEDA) schemas, plus the rules docs/operations.md promises.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerfile, toolPath } from '@pds/devkit';
import {
  ConfigSchema,
  MONGO_ROLES,
  REDIS_SCALER_RULES,
  redisUserDirective,
  repoRoot,
  JOBS_BACKLOG_LIST,
  STORE_USERS,
  type StoreUser,
} from '@pds/shared';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const SERVICES = ['api', 'runner', 'stream-gateway'] as const;

t.test('Dockerfile: lints clean; every service image is non-root, health-checked, and starts node without a shell', async (t) => {
  const text = read('Dockerfile');
  const problems = lintDockerfile(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  t.same(problems, [], 'dockerfile-utils finds no problem');
  const stages = parseDockerfile(text);
  for (const name of SERVICES) {
    const stage = stages.get(name);
    if (!stage) {
      t.fail(`no ${name} target`);
      continue;
    }
    // The runner switches each job to its slot's uid, which takes uid 0 (with capabilities dropped by compose and Kubernetes).
    if (name === 'runner') t.equal(stage.user, 'root', 'the runner stays uid 0 to run jobs as their own uids');
    else t.equal(stage.user, 'node', `${name} runs as the non-root node user`);
    t.match(stage.healthcheck, /\/health/, `${name} has a HEALTHCHECK on /health`);
    t.equal(stage.cmd?.[0], 'node', `${name}: CMD is exec form starting node (signals reach it)`);
    t.ok(!stage.entrypoint || stage.entrypoint[0] === '/usr/bin/tini', `${name}: nothing but tini in front of node`);
  }
  const runner = stages.get('runner')!;
  t.match(runner.env, { PULUMI_BIN: '/opt/pulumi/pulumi', PULUMI_SKIP_UPDATE_CHECK: 'true', MODULES_DIR: '/app/modules' });
  const pinned = read('scripts/ensure-tools.sh').match(/^PULUMI_VERSION=(\S+)$/m)?.[1];
  t.match(
    text,
    new RegExp(`^ARG PULUMI_VERSION=${pinned?.replace(/\./g, '\\.')}$`, 'm'),
    `the image carries the Pulumi CLI the tests build (${pinned})`,
  );
  t.match(text, /--omit=dev/, 'production dependencies only');
  t.ok(
    lintDockerfile('FROM node:20\nCMD ["node"\n').length > 0 || lintDockerfile('FROM node:20\nEXPOSE notaport\n').length > 0,
    'the linter does find problems',
  );
});

t.test('docker-compose.yml validates against the Compose Specification and wires every service', async (t) => {
  const schema = JSON.parse(readFileSync(join(repoRoot, '.tools/share/compose-spec.json'), 'utf8')) as object;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const check = ajv.compile(schema);
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
    services: Record<
      string,
      { environment?: Record<string, string>; healthcheck?: unknown; depends_on?: object; ports?: string[]; build?: { target: string } }
    >;
  };
  t.ok(check(compose), `compose-spec: ${ajv.errorsText(check.errors)}`);
  t.notOk(check({ services: { api: { image: 1, restart: 'sometimes', nonsense: true } } }), 'the schema does reject a broken file');
  t.ok(compose.services.mongo?.healthcheck && compose.services.redis?.healthcheck, 'MongoDB and Redis are health-checked');
  t.match(read('docker-compose.yml'), /image: mongo:7/);
  for (const name of SERVICES) {
    const service = compose.services[name];
    t.equal(service?.build?.target, name, `${name} builds its Dockerfile target`);
    t.match(service?.depends_on, { mongo: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    for (const key of Object.keys(service?.environment ?? {}))
      t.ok(key in ConfigSchema.properties, `${name}: ${key} is a setting the services read`);
  }
  t.notOk(compose.services.runner?.ports, 'runners publish no port, so --scale runner=N cannot clash');
  storeUsersOfCompose(t, compose);
  const example = read('.env.example');
  for (const key of Object.keys(ConfigSchema.properties))
    t.match(example, new RegExp(`^#? ?${key}=`, 'm'), `.env.example documents ${key}`);
});

/** The password variable compose (and the dev overlay) give each service's store user. */
const PASSWORD_PREFIX: Record<StoreUser, string> = { api: 'API', runner: 'RUNNER', 'stream-gateway': 'GATEWAY' };

/** Compose makes a Redis and a MongoDB user per service with the rules of store-users.ts, and each service connects as its own. */
function storeUsersOfCompose(
  t: Test,
  compose: { services: Record<string, { environment?: Record<string, string> }>; configs?: Record<string, { content?: string }> },
) {
  const variable = (user: StoreUser | 'admin', store: string) =>
    user === 'admin' ? 'REDIS_PASSWORD' : `${PASSWORD_PREFIX[user]}_${store}_PASSWORD`;
  checkRedisAcl(t, (compose.configs?.['redis-users']?.content ?? '').trim().split('\n'), (user) => `\${${variable(user, 'REDIS')}:?}`);
  checkMongoUsers(t, compose.configs?.['mongo-users']?.content ?? '', (user) => `'\${${variable(user, 'MONGO')}:?}'`);
  for (const user of STORE_USERS) {
    const prefix = PASSWORD_PREFIX[user];
    const env = compose.services[user]?.environment ?? {};
    t.match(env.REDIS_URL, new RegExp(`^redis://${user}:\\$\\{${prefix}_REDIS_PASSWORD:\\?`), `${user} is its own Redis user`);
    t.match(env.MONGO_URL, new RegExp(`^mongodb://${user}:\\$\\{${prefix}_MONGO_PASSWORD:\\?`), `${user} is its own MongoDB user`);
  }
}

/** Secret data with kustomize's line breaks taken out, each value still the base64 of what it was. */
function unfolded(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('base64')]));
}

t.test("docs/operations.md gives the stores' users as store-users.ts makes them", async (t) => {
  const doc = read('docs/operations.md').split('\n');
  checkRedisAcl(t, ['user default reset off', 'user admin reset on >x ~* &* +@all', ...doc], (user) =>
    user === 'admin' ? 'x' : `<${user}-password>`,
  );
  t.ok(doc.includes(`user queue-scaler reset on ><scaler-password> ${REDIS_SCALER_RULES}`), "KEDA's user");
  checkMongoUsers(t, doc.join('\n'), (user) => `'<${user}-password>'`);
});

/** The kubernetes-models class for an object, to validate it against its schema. */
async function modelFor(apiVersion: string, kind: string): Promise<(new (data: object) => { validate(): void }) | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const path =
    group === 'keda.sh' ? `@kubernetes-models/keda/keda.sh/${version}` : `kubernetes-models/${group ? `${group}/` : ''}${version}`;
  const module = (await import(path)) as Record<string, new (data: object) => { validate(): void }>;
  return module[kind];
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A copy of deploy/k8s with the dev overlay's secrets.env made by the recipe its comment gives (none ships). */
async function k8sTree(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pds-k8s-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(join(repoRoot, 'deploy/k8s'), dir, { recursive: true });
  const comment = read('deploy/k8s/overlays/dev/kustomization.yaml').split('\n');
  const first = comment.findIndex((line) => line.startsWith('#   ('));
  const last = comment.findIndex((line) => line.endsWith('> secrets.env'));
  t.ok(first > 0 && last >= first, 'the dev overlay says how to make secrets.env');
  const recipe = comment
    .slice(first, last + 1)
    .map((line) => line.replace(/^# {3}/, ''))
    .join('\n');
  await execa('bash', ['-euo', 'pipefail', '-c', recipe], { cwd: join(dir, 'overlays/dev') });
  return dir;
}

/** The lines of a Redis ACL file given inline (compose's config, the dev overlay's heredoc). */
function checkRedisAcl(t: Test, lines: string[], password: (user: StoreUser | 'admin') => string) {
  t.equal(lines[0], 'user default reset off', 'Redis: no default user');
  t.equal(lines[1], `user admin reset on >${password('admin')} ~* &* +@all`, 'Redis: `admin`, for people');
  for (const user of STORE_USERS)
    t.ok(lines.includes(`user ${redisUserDirective(user, password(user))}`), `Redis: ${user}'s rules are store-users.ts's`);
}

/** The MongoDB users a script makes (compose's config, the dev overlay's ConfigMap): a role per service. */
function checkMongoUsers(t: Test, script: string, password: (user: StoreUser) => string) {
  for (const user of STORE_USERS)
    t.match(
      script,
      `store.createUser({ user: '${user}', pwd: ${password(user)}, roles: [{ role: '${MONGO_ROLES[user]}', db: 'pulumi-deploy' }] });`,
      `MongoDB: ${user} may ${MONGO_ROLES[user]}`,
    );
}

for (const overlay of ['dev', 'prod']) {
  t.test(`kustomize overlay ${overlay}: builds, validates against the Kubernetes schemas, and follows the operating rules`, async (t) => {
    const built = await execa(toolPath('kustomize'), ['build', join(await k8sTree(t), 'overlays', overlay)]);
    const objects = parseAllDocuments(built.stdout).map((d) => d.toJS() as K8sObject);
    t.ok(objects.length > 10, `${objects.length} objects`);
    for (const object of objects) {
      const Model = await modelFor(object.apiVersion, object.kind);
      // kustomize folds a long generated value over lines; Kubernetes's base64 decoding skips line
      // breaks (the schema's "byte" format does not), so the check is on the value as decoded.
      if (object.kind === 'Secret' && object.data) object.data = unfolded(object.data as Record<string, string>);
      if (!Model) {
        t.fail(`no schema for ${object.apiVersion} ${object.kind}`);
        continue;
      }
      t.doesNotThrow(() => new Model(object).validate(), `${object.kind}/${object.metadata.name} is valid`);
    }
    const Deployment = (await modelFor('apps/v1', 'Deployment'))!;
    t.throws(
      () => new Deployment({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { replicas: 'two' } }).validate(),
      'the schemas do reject a broken object',
    );

    const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    t.same(deployments.map((d) => d.metadata.name).sort(), ['api', 'runner', 'stream-gateway']);
    for (const deployment of deployments) {
      const pod = (deployment.spec as { template: { spec: Record<string, unknown> } }).template.spec as {
        containers: {
          readinessProbe?: { httpGet?: { path: string } };
          livenessProbe?: { httpGet?: { path: string } };
          resources?: { requests?: object; limits?: object };
        }[];
        serviceAccountName?: string;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        terminationGracePeriodSeconds?: number;
      };
      const [container] = pod.containers;
      const name = deployment.metadata.name;
      t.equal(container?.readinessProbe?.httpGet?.path, '/ready', `${name}: readiness on /ready`);
      t.equal(container?.livenessProbe?.httpGet?.path, '/health', `${name}: liveness on /health`);
      t.ok(container?.resources?.requests && container.resources.limits, `${name}: requests and limits`);
      t.equal(pod.serviceAccountName, 'pulumi-deploy');
      // Each service gets only the secrets it uses: named keys, never the whole Secret.
      const c = container as {
        envFrom?: { secretRef?: unknown }[];
        env?: { name: string; valueFrom?: { secretKeyRef?: { key: string } } }[];
      };
      t.notOk(
        c.envFrom?.some((e) => e.secretRef),
        `${name}: not the whole Secret`,
      );
      const secretKeys = (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.key] : []));
      const forbidden =
        {
          runner: ['ADMIN_TOKEN'],
          'stream-gateway': ['CREDENTIALS_KEY', 'CREDENTIALS_KEY_PREVIOUS', 'PULUMI_CONFIG_PASSPHRASE'],
          api: ['PULUMI_CONFIG_PASSPHRASE'],
        }[name] ?? [];
      t.same(
        secretKeys.filter((k) => forbidden.includes(k)),
        [],
        `${name}: none of ${forbidden.join(', ')}`,
      );
      t.ok(secretKeys.length > 0, `${name}: its own secrets (${secretKeys.join(', ')})`);
      const prefix = PASSWORD_PREFIX[name as StoreUser];
      for (const store of ['MONGO', 'REDIS'])
        t.equal(
          c.env?.find((e) => e.name === `${store}_URL`)?.valueFrom?.secretKeyRef?.key,
          `${prefix}_${store}_URL`,
          `${name}: the stores as its own user (${prefix}_${store}_URL)`,
        );
      if (name === 'runner') {
        // Uid 0 with only the capabilities that switching each job to its slot's uid takes.
        const caps = (container as { securityContext?: { capabilities?: { drop?: string[]; add?: string[] } } })?.securityContext
          ?.capabilities;
        t.same(caps?.drop, ['ALL'], 'runner: every capability dropped');
        t.same(
          [...(caps?.add ?? [])].sort(),
          ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'NET_ADMIN', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_ADMIN', 'SYS_CHROOT'],
          'runner: only those it needs added back',
        );
      } else {
        t.equal(pod.securityContext?.runAsNonRoot, true, `${name}: non-root`);
      }
      t.ok(find('PodDisruptionBudget', name), `${name} has a PodDisruptionBudget`);
    }
    const runnerPod = (find('Deployment', 'runner')!.spec as { template: { spec: { terminationGracePeriodSeconds: number } } }).template
      .spec;
    const config = find('ConfigMap', 'pulumi-deploy-config') as unknown as { data: Record<string, string> };
    t.ok(
      runnerPod.terminationGracePeriodSeconds > Number(config.data.CANCEL_GRACE_SECONDS) + 60,
      'the pod outlives the runner drain (cancel grace + 60 s)',
    );
    t.equal((find('ServiceAccount', 'pulumi-deploy') as { automountServiceAccountToken?: boolean }).automountServiceAccountToken, false);
    t.notOk(
      objects.some((o) => /Role(Binding)?$/.test(o.kind)),
      'no Role or RoleBinding: no API rights',
    );
    for (const name of ['api', 'stream-gateway']) t.ok(find('HorizontalPodAutoscaler', name), `${name} scales on CPU`);
    const ingress = JSON.stringify(find('Ingress', 'pulumi-deploy'));
    t.match(ingress, /"path":"\/v1\/jobs\/\[\^\/\]\+\/stream".*?"name":"stream-gateway"/, 'job streams reach the gateway');
    t.match(ingress, /proxy-read-timeout/, 'long-lived stream connections are allowed');
    const ingressSpec = find('Ingress', 'pulumi-deploy')!.spec as {
      tls?: { secretName: string }[];
      rules: { http: { paths: { path: string }[] } }[];
    };
    t.ok(ingressSpec.tls?.[0]?.secretName, 'the Ingress serves TLS');
    t.same(
      ingressSpec.rules.flatMap((r) => r.http.paths.map((p) => p.path)).filter((p) => p === '/' || p.startsWith('/metrics')),
      [],
      'no catch-all path: /metrics, /health, /ready stay in-cluster',
    );
    const deny = find('NetworkPolicy', 'default-deny') as unknown as { spec: { podSelector: object; policyTypes: string[] } };
    t.same(deny?.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }, 'every pod: deny by default');
    const runnerPolicy = JSON.stringify(find('NetworkPolicy', 'runner'));
    t.match(runnerPolicy, /"except":\[[^\]]*"169\.254\.169\.254\/32"/, 'runners never reach the cloud metadata address');
    const secret = find('Secret', 'pulumi-deploy-secrets') as { stringData?: Record<string, string>; data?: Record<string, string> };
    const secretKeys = Object.keys(secret.stringData ?? secret.data ?? {});
    for (const key of ['ADMIN_TOKEN', 'CREDENTIALS_KEY']) t.ok(secretKeys.includes(key), `the Secret carries ${key}`);
    if (overlay === 'dev') {
      t.ok(find('StatefulSet', 'mongo') && find('StatefulSet', 'redis'), 'MongoDB and Redis run in the cluster');
      const redisArgs = (
        (find('StatefulSet', 'redis')?.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]
          ?.args[0] ?? ''
      ).split('\n');
      const acl = redisArgs.slice(redisArgs.indexOf('cat > /acl/users.acl <<EOF') + 1, redisArgs.indexOf('EOF'));
      checkRedisAcl(t, acl, (user) => (user === 'admin' ? '$REDIS_PASSWORD' : `$${PASSWORD_PREFIX[user]}_REDIS_PASSWORD`));
      t.ok(
        redisArgs.includes('exec docker-entrypoint.sh redis-server --appendonly yes --aclfile /acl/users.acl'),
        "Redis starts with those users, through the image's entrypoint (which drops root)",
      );
      const mongoUsers = (find('ConfigMap', 'mongo-users') as { data?: Record<string, string> } | undefined)?.data?.['users.js'] ?? '';
      checkMongoUsers(t, mongoUsers, (user) => `process.env.${PASSWORD_PREFIX[user]}_MONGO_PASSWORD`);
      t.ok(find('PersistentVolumeClaim', 'pulumi-state'), 'the file state backend is on a PVC');
      t.match(config.data.PULUMI_BACKEND_URL, /^file:\/\//);
    } else {
      for (const user of STORE_USERS)
        for (const key of [`${PASSWORD_PREFIX[user]}_MONGO_URL`, `${PASSWORD_PREFIX[user]}_REDIS_URL`])
          t.ok(secretKeys.includes(key), `prod reads ${key} from the Secret`);
      t.notOk(
        objects.some((o) => o.kind === 'StatefulSet'),
        'prod runs no database',
      );
      t.match(config.data.PULUMI_BACKEND_URL, /^s3:\/\//);
      const scaled = find('ScaledObject', 'runner') as unknown as {
        spec: { scaleTargetRef: { name: string }; triggers: { type: string; metadata: { listName: string } }[] };
      };
      t.equal(scaled.spec.scaleTargetRef.name, 'runner');
      t.equal(scaled.spec.triggers[0]?.metadata.listName, JOBS_BACKLOG_LIST, "KEDA watches the queue's waiting list");
    }
  });
}
