// A real S3-compatible server on loopback for tests and benchmarks: s3rver (in-process, or in a
// child process so a benchmark does not share its event loop with the client), a bucket, a
// temp directory. s3rver accepts any secret for the access key id S3RVER (it does not verify
// SigV4), and answers InvalidAccessKeyId (403) for any other key id: enough to test
// "access denied" and that a secret is never printed.
// `hook` lets a test stall or fail chosen requests (an interrupted push, a flaky network).
import { spawn } from 'node:child_process';
import type http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const S3_ACCESS_KEY_ID = 'S3RVER';

export type HookAction = 'pass' | 'stall' | 'fail';

export interface S3ServerOptions {
  readonly bucket?: string;
  /** Decide per request (method, url with the bucket and key): pass, stall (never answer) or fail (500). */
  readonly hook?: (req: { method: string; url: string }) => HookAction;
}

export interface S3Server {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps its files. */
  readonly directory: string;
  /** Change the request hook while running. */
  setHook(hook: S3ServerOptions['hook']): void;
  close(): Promise<void>;
}

interface S3rverLike {
  run(): Promise<{ port: number }>;
  httpServer: http.Server;
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const bucket = options.bucket ?? 'pipe-test';
  const directory = await mkdtemp(path.join(os.tmpdir(), 'pipe-s3rver-'));
  // s3rver ships no types; a computed specifier keeps TypeScript from asking for them.
  const specifier = 's3rver';
  const { default: S3rver } = (await import(specifier)) as { default: new (o: Record<string, unknown>) => S3rverLike };
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  let hook = options.hook;
  const stalled = new Set<http.ServerResponse>();
  const httpServer = server.httpServer;
  const [original] = httpServer.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
  if (!original) throw new Error('s3rver has no request listener');
  httpServer.removeAllListeners('request');
  httpServer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const action = hook?.({ method: req.method ?? 'GET', url: req.url ?? '/' }) ?? 'pass';
    if (action === 'stall') {
      stalled.add(res);
      req.resume();
      return;
    }
    if (action === 'fail') {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected failure</Message></Error>');
      return;
    }
    original(req, res);
  });
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    directory,
    setHook: (h) => {
      hook = h;
    },
    close: async () => {
      for (const res of stalled) res.destroy();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The same server in a child process (for benchmarks: the client gets its own event loop). */
export async function startS3ServerProcess(options: { bucket?: string } = {}): Promise<S3Server> {
  const bucket = options.bucket ?? 'pipe-test';
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ endpoint: string; directory: string }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver child exited (${code})`)));
    lines.once('line', (l) => resolve(JSON.parse(l) as { endpoint: string; directory: string }));
  });
  child.removeAllListeners('exit');
  return {
    endpoint: ready.endpoint,
    bucket,
    directory: ready.directory,
    setHook: () => {
      throw new Error('hooks are not available on a child-process server');
    },
    close: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
      await rm(ready.directory, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]) && process.argv[2] === '--serve') {
  const s = await startS3Server({ bucket: process.argv[3] ?? 'pipe-test' });
  process.stdout.write(`${JSON.stringify({ endpoint: s.endpoint, directory: s.directory })}\n`);
  process.on('SIGTERM', () => {
    void s.close().then(() => process.exit(0));
  });
}
