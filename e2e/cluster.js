/**
 * e2e/cluster.js owns the processes of a multi-instance deployment for the browser
 * tests: a PostgreSQL cluster of its own (Debian's initdb + pg_ctl in a temporary
 * directory, run as the postgres user when we are root), a redis-server, several real
 * switchboard instances on them (each killable and restartable on its port), and nginx
 * in front running deploy/nginx.conf (a non-daemon with its own prefix, temp
 * directories and pid file). Every process is killed and every directory removed by
 * `stop()`, which the tests call in `after` whatever happened.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ADMIN_EMAIL, ADMIN_PASSWORD, binaryPath } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PG_BIN = process.env.SWITCHBOARD_PG_BIN || '/usr/lib/postgresql/15/bin';
const NGINX = process.env.NGINX_PATH || '/usr/sbin/nginx';
const IS_ROOT = process.getuid?.() === 0;

function which(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
}

/** What is missing for a cluster (an empty list: nothing). */
export function missing() {
  const absent = [];
  if (!existsSync(NGINX)) absent.push(`${NGINX} (apt-get install nginx-light)`);
  for (const tool of ['redis-server', 'redis-cli']) if (!which(tool)) absent.push(tool);
  for (const tool of ['initdb', 'pg_ctl']) if (!existsSync(path.join(PG_BIN, tool))) absent.push(path.join(PG_BIN, tool));
  if (IS_ROOT && spawnSync('id', ['-u', 'postgres']).status !== 0) absent.push('a postgres user');
  return absent;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port. */
export async function waitForPort(port, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not open port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `program args` as the postgres user when we are root (PostgreSQL refuses root). */
function asPostgres(program, args, options = {}) {
  const [cmd, argv] = IS_ROOT ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
  return execFileSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
}

/** The processes whose parent is `pid`. */
function childPids(pid) {
  return spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map(Number)
    .filter(Boolean);
}

/** The postmaster and its processes (from postmaster.pid). */
function postgresPids(data) {
  const file = path.join(data, 'postmaster.pid');
  if (!existsSync(file)) return [];
  const postmaster = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return [postmaster, ...childPids(postmaster)];
}

/**
 * Starts PostgreSQL, Redis, `instances` switchboard processes and nginx in front.
 * @returns {Promise<Cluster>}
 */
export async function startCluster({ instances = 2 } = {}) {
  const cluster = new Cluster();
  try {
    await cluster.start(instances);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

class Cluster {
  constructor() {
    this.dir = mkdtempSync(path.join(tmpdir(), 'switchboard-proxy-'));
    this.children = new Set();
    this.instances = [];
  }

  spawnChild(command, args, options, logName) {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const log = [];
    child.stdout.on('data', (chunk) => log.push(String(chunk)));
    child.stderr.on('data', (chunk) => log.push(String(chunk)));
    child.log = log;
    child.logName = logName;
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async start(count) {
    // PostgreSQL: a directory the postgres user owns, its socket there too.
    const pg = path.join(this.dir, 'pg');
    mkdirSync(pg);
    if (IS_ROOT) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
      chownSync(this.dir, 0, gid);
      execFileSync('chmod', ['750', this.dir]);
      chownSync(pg, uid, gid);
    }
    this.pgData = path.join(pg, 'data');
    this.pgPort = await freePort();
    asPostgres(path.join(PG_BIN, 'initdb'), ['-D', this.pgData, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    asPostgres(path.join(PG_BIN, 'pg_ctl'), [
      '-D', this.pgData, '-l', path.join(pg, 'log'), '-w', '-t', '30', 'start',
      '-o', `-k ${pg} -p ${this.pgPort} -c listen_addresses=127.0.0.1 -c fsync=off`,
    ]);
    this.databaseUrl = `postgres://postgres@127.0.0.1:${this.pgPort}/postgres`;

    this.redisPort = await freePort();
    this.spawnChild('redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {}, 'redis');
    await waitForPort(this.redisPort, 'redis-server');
    this.redisUrl = `redis://127.0.0.1:${this.redisPort}`;

    // One after the other: the first applies the migrations and creates the admin.
    for (let i = 0; i < count; i += 1) {
      const instance = { name: String.fromCharCode(65 + i), port: await freePort(), child: null };
      this.instances.push(instance);
      await this.startInstance(instance);
    }

    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const nginx = path.join(this.dir, 'nginx');
    mkdirSync(nginx);
    const site = readFileSync(path.join(ROOT, 'deploy', 'nginx.conf'), 'utf8')
      .replaceAll('{{listen}}', `127.0.0.1:${this.port}`)
      .replaceAll('{{instance_a}}', `127.0.0.1:${this.instances[0].port}`)
      .replaceAll('{{instance_b}}', `127.0.0.1:${this.instances[1].port}`);
    writeFileSync(path.join(nginx, 'switchboard.conf'), site);
    // What Debian's /etc/nginx/nginx.conf would provide, confined to this directory.
    writeFileSync(path.join(nginx, 'nginx.conf'), `
${IS_ROOT ? 'user root;' : ''}
worker_processes 1;
pid ${nginx}/nginx.pid;
error_log ${nginx}/error.log warn;
events { worker_connections 512; }
http {
    access_log ${nginx}/access.log;
    client_body_temp_path ${nginx}/body;
    proxy_temp_path ${nginx}/proxy;
    fastcgi_temp_path ${nginx}/fastcgi;
    uwsgi_temp_path ${nginx}/uwsgi;
    scgi_temp_path ${nginx}/scgi;
    include ${nginx}/switchboard.conf;
}
`);
    this.nginxDir = nginx;
    const nginxChild = this.spawnChild(NGINX, ['-p', nginx, '-c', path.join(nginx, 'nginx.conf'), '-e', path.join(nginx, 'error.log'), '-g', 'daemon off;'], {}, 'nginx');
    nginxChild.once('exit', (code) => {
      if (code) nginxChild.log.push(readFileSync(path.join(nginx, 'error.log'), 'utf8'));
    });
    await waitForPort(this.port, 'nginx');
  }

  async startInstance(instance) {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_')));
    delete inherited.RUST_LOG;
    const env = {
      ...inherited,
      SWITCHBOARD_BIND: `127.0.0.1:${instance.port}`,
      SWITCHBOARD_DATABASE_URL: this.databaseUrl,
      SWITCHBOARD_REDIS_URL: this.redisUrl,
      SWITCHBOARD_TRUSTED_PROXIES: '127.0.0.1/32',
      SWITCHBOARD_ADMIN_EMAIL: ADMIN_EMAIL,
      SWITCHBOARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SWITCHBOARD_DEMO_USERS: 'false',
      SWITCHBOARD_LOG_FORMAT: 'json',
      SWITCHBOARD_LOG: 'info,sqlx=warn',
      // Few enough that a login's Redis key lives for seconds (the address test reads
      // it), enough for the test's own logins.
      SWITCHBOARD_RATE_LOGIN_PER_MINUTE: '20',
    };
    instance.child = this.spawnChild(binaryPath(), ['serve'], { env }, `instance ${instance.name}`);
    const exited = new Promise((_, reject) => instance.child.once('exit', (code) => reject(new Error(`instance ${instance.name} exited (${code}): ${instance.child.log.join('')}`))));
    exited.catch(() => {});
    await Promise.race([waitForPort(instance.port, `instance ${instance.name}`), exited]);
  }

  /** SIGKILL to an instance: no graceful shutdown, its connections reset. */
  async kill(instance) {
    const { child } = instance;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    instance.child = null;
  }

  /** The Redis keys matching `pattern`. */
  redisKeys(pattern) {
    const out = execFileSync('redis-cli', ['-p', String(this.redisPort), '--scan', '--pattern', pattern], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean);
  }

  /** The last lines every process logged, for a failure's message. */
  logs() {
    return [...this.children].map((c) => `---- ${c.logName}\n${c.log.join('').split('\n').slice(-15).join('\n')}`).join('\n');
  }

  async stop() {
    // nginx's workers outlive a killed master: SIGTERM lets the master end them; then
    // SIGKILL for whatever is left of it.
    const nginx = [...this.children].find((c) => c.logName === 'nginx');
    const workers = nginx ? childPids(nginx.pid) : [];
    const exits = [...this.children].map((child) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill(child === nginx ? 'SIGTERM' : 'SIGKILL');
      if (child === nginx) setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }));
    await Promise.all(exits);
    if (workers.length) spawnSync('kill', ['-9', ...workers.map(String)], { stdio: 'ignore' });
    if (this.pgData) {
      const pids = postgresPids(this.pgData);
      if (pids.length) spawnSync('kill', ['-9', ...pids.map(String)]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
