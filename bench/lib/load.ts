import { spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

/**
 * HTTP load with autocannon, run as its own process so that the load generator does not share an
 * event loop with the server it measures; and the bare `node:http` server the runtime is compared with.
 */

export interface LoadFigure {
  url: string;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  total: number;
  non2xx: number;
  errors: number;
  /** This process's CPU per answered request over the measured run (the server's, when it runs in this process as in the bench). */
  cpuUsPerRequest: number;
}

export interface LoadOptions {
  connections: number;
  durationSeconds: number;
  headers?: Record<string, string>;
  /** A short run first, not measured (JIT, connection pools, DynamoDB Local's own warm-up). */
  warmupSeconds?: number;
  method?: 'GET' | 'POST';
  /** The request body (JSON), the same for every request. */
  body?: string;
  /** Requests per second over all connections (autocannon's overallRate); as fast as answered when absent. */
  overallRate?: number;
}

const autocannonCli = () => createRequire(import.meta.url).resolve('autocannon/autocannon.js');

type Request = Pick<LoadOptions, 'method' | 'body' | 'overallRate'>;

function autocannon(url: string, connections: number, seconds: number, headers: Record<string, string>, request: Request = {}): Promise<Record<string, any>> {
  const args = [autocannonCli(), '-j', '-c', String(connections), '-d', String(seconds)];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  if (request.method) args.push('-m', request.method);
  if (request.body !== undefined) args.push('-b', request.body, '-H', 'content-type=application/json');
  if (request.overallRate) args.push('-R', String(request.overallRate));
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(stdout));
      } catch (err) {
        reject(new Error(`autocannon ${url} failed (${(err as Error).message}): ${stderr.slice(0, 500)}`));
      }
    });
  });
}

export async function load(url: string, options: LoadOptions): Promise<LoadFigure> {
  const headers = options.headers ?? {};
  const request: Request = { method: options.method, body: options.body, overallRate: options.overallRate };
  if (options.warmupSeconds) await autocannon(url, Math.min(10, options.connections), options.warmupSeconds, headers, { ...request, overallRate: undefined });
  const cpu0 = process.cpuUsage();
  const r = await autocannon(url, options.connections, options.durationSeconds, headers, request);
  const cpu = process.cpuUsage(cpu0);
  return {
    url,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    requestsPerSecond: r.requests.average,
    total: r.requests.total,
    non2xx: r.non2xx ?? 0,
    errors: (r.errors ?? 0) + (r.timeouts ?? 0),
    cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, r.requests.total),
  };
}

/** A bare node:http server answering a JSON body (made per request, possibly after a read), with the same headers the API sends. */
export async function startBareServer(body: () => string | Promise<string>): Promise<{ url: string; close: () => Promise<void> }> {
  const send = (res: http.ServerResponse, text: string) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(text);
  };
  const server = http.createServer((_req, res) => {
    const answer = body();
    if (typeof answer === 'string') return send(res, answer);
    answer.then(
      (text) => send(res, text),
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
