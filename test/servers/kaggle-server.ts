// A local stand-in for the Kaggle API (kaggle 1.8's `POST /api/v1/{service}/{method}`, an API
// token as `Bearer` or a legacy key as basic auth, 401/403/404) and for the signed-URL storage
// it redirects downloads to. The storage server
// listens on another port, so the redirect is cross-origin as with the real service; it serves
// Range requests and can drop or stall a response on the first attempt.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import yazl from 'yazl';

export interface CompetitionSpec {
  /** File name -> bytes, as listed by ListDataFiles. */
  readonly files: Readonly<Record<string, Buffer>>;
  /** false: downloads answer 403 (rules not accepted). Default true. */
  readonly rulesAccepted?: boolean;
}

export interface DatasetSpec {
  readonly files: Readonly<Record<string, Buffer>>;
}

export interface KaggleServerOptions {
  readonly username?: string;
  readonly key?: string;
  /** The API token accepted as `Authorization: Bearer` (the legacy key is accepted too). */
  readonly token?: string;
  readonly competitions?: Readonly<Record<string, CompetitionSpec>>;
  /** Keyed by "owner/slug". */
  readonly datasets?: Readonly<Record<string, DatasetSpec>>;
  /** Blob names ('*' = all) whose first storage response is cut off mid-body. */
  readonly dropFirst?: readonly string[];
  /** Blob names ('*' = all) whose first storage response sends half the body and then hangs. */
  readonly stallFirst?: readonly string[];
  /** Answer the first N API requests with HTTP 503. */
  readonly failFirst?: number;
  /** Storage ignores Range and always sends the whole body (HTTP 200). */
  readonly ignoreRange?: boolean;
}

export interface LoggedRequest {
  readonly server: 'api' | 'storage';
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  body?: Record<string, unknown>;
  status?: number;
}

export interface KaggleServer {
  /** The API host, as a user sets KAGGLE_API_ENDPOINT (`http://127.0.0.1:PORT`); the API is under /api/v1. */
  readonly url: string;
  readonly storageUrl: string;
  readonly requests: LoggedRequest[];
  close(): Promise<void>;
}

export const TEST_USER = 'alice';
export const TEST_KEY = 'k3y-0123456789abcdef-SECRET';
export const TEST_TOKEN = 'KGAT_0123456789abcdef0123456789-TOKEN-SECRET';

/** A zip of path -> bytes (deflated), built with yazl. */
export function zipOf(entries: ReadonlyMap<string, Buffer> | Readonly<Record<string, Buffer>>, options: { store?: boolean } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const list = entries instanceof Map ? [...entries] : Object.entries(entries);
  for (const [name, data] of list) zip.addBuffer(data, name, { compress: !options.store, mtime: new Date(0) });
  zip.end();
  return streamToBuffer(zip.outputStream);
}

/**
 * A zip whose first entry is named `escaping` (e.g. '../../escaped.txt' or '/tmp/x'): yazl
 * refuses such names, so the entry is written under a same-length placeholder and the name
 * bytes are patched (the CRC covers the data, not the name).
 */
export async function zipSlipOf(escaping: string, rest: Readonly<Record<string, Buffer>> = {}): Promise<Buffer> {
  const placeholder = escaping.replace(/[^A-Za-z0-9]/g, 'z').replace(/^z/, 'a');
  const zip = await zipOf(new Map([[placeholder, Buffer.from('owned')], ...Object.entries(rest)]));
  return Buffer.from(zip.toString('latin1').split(placeholder).join(escaping), 'latin1');
}

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Blob {
  readonly name: string;
  readonly data: Buffer;
  readonly etag: string;
}

export async function startKaggleServer(options: KaggleServerOptions = {}): Promise<KaggleServer> {
  const username = options.username ?? TEST_USER;
  const key = options.key ?? TEST_KEY;
  const accepted = new Set([`Basic ${Buffer.from(`${username}:${key}`).toString('base64')}`, `Bearer ${options.token ?? TEST_TOKEN}`]);
  const requests: LoggedRequest[] = [];
  const blobs = new Map<string, Blob>();
  const blobIds = new Map<string, string>(); // "scope\0name" -> id
  const firstServed = new Set<string>();
  let apiCalls = 0;

  const blobFor = (scope: string, name: string, data: Buffer): string => {
    const k = `${scope}\0${name}`;
    let id = blobIds.get(k);
    if (!id) {
      id = String(blobs.size + 1);
      blobIds.set(k, id);
      blobs.set(id, { name, data, etag: `"${createHash('sha256').update(data).digest('hex').slice(0, 16)}"` });
    }
    return id;
  };
  const zips = new Map<string, Promise<Buffer>>();
  const zipFor = (scope: string, files: Readonly<Record<string, Buffer>>): Promise<Buffer> => {
    let z = zips.get(scope);
    if (!z) zips.set(scope, (z = zipOf(files)));
    return z;
  };

  // ---- storage: GET /blob/<id>/<name>?signature ----
  const storage = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://storage');
    const entry: LoggedRequest = { server: 'storage', method: req.method ?? '', path: url.pathname, headers: req.headers };
    requests.push(entry);
    const m = /^\/blob\/(\d+)\//.exec(url.pathname);
    const blob = m ? blobs.get(m[1]!) : undefined;
    if (req.method !== 'GET' || !blob || !url.searchParams.get('X-Goog-Signature')) {
      entry.status = 403;
      res.writeHead(403, { 'Content-Type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
      return;
    }
    const total = blob.data.length;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && !options.ignoreRange && (!ifRange || ifRange === blob.etag)) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= total) {
        entry.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${total}` }).end();
        return;
      }
      status = 206;
    }
    const body = blob.data.subarray(start, end + 1);
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': body.length,
      'Accept-Ranges': 'bytes',
      ETag: blob.etag,
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    entry.status = status;
    const first = !firstServed.has(blob.name);
    firstServed.add(blob.name);
    const matches = (list?: readonly string[]): boolean => !!list && (list.includes('*') || list.includes(blob.name));
    res.writeHead(status, headers);
    if (first && matches(options.dropFirst)) {
      // The delay lets the client read what was sent: a fetch body that errors drops the chunks it
      // has not handed out yet, and a loaded machine can take a while to start reading.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket?.destroy(), 300));
      return;
    }
    if (first && matches(options.stallFirst)) {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return; // hangs until the client gives up or the server closes
    }
    res.end(body);
  });
  const storagePort = await listen(storage);
  // Another port = another origin: fetch must drop Authorization on the redirect.
  const storageUrl = `http://127.0.0.1:${storagePort}`;

  const redirect = (res: ServerResponse, entry: LoggedRequest, id: string, name: string): void => {
    entry.status = 302;
    res.writeHead(302, { Location: `${storageUrl}/blob/${id}/${encodeURIComponent(name)}?X-Goog-Signature=sig${id}&X-Goog-Expires=600` }).end();
  };

  // ---- API: POST /api/v1/<service>/<method> (a host's other paths answer as a web server does) ----
  const api = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://api');
      const entry: LoggedRequest = { server: 'api', method: req.method ?? '', path: url.pathname, headers: req.headers };
      requests.push(entry);
      const text = await readBody(req);
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        // leave empty
      }
      entry.body = body;
      const fail = (status: number, message: string): void => {
        entry.status = status;
        json(res, status, { code: status, message });
      };
      if (apiCalls++ < (options.failFirst ?? 0)) return fail(503, 'Service Unavailable');
      if (!url.pathname.startsWith('/api/v1/')) {
        entry.status = 404;
        res.writeHead(404, { 'Content-Type': 'text/html' }).end('<html><body><h1>404 Not Found</h1></body></html>');
        return;
      }
      if (req.method !== 'POST') return fail(405, 'use POST');
      if (!accepted.has(req.headers.authorization ?? '')) return fail(401, 'Unauthenticated');
      const route = url.pathname.replace(/^\/api\/v1\//, '');
      switch (route) {
        case 'competitions.CompetitionApiService/ListDataFiles':
        case 'competitions.CompetitionApiService/DownloadDataFile':
        case 'competitions.CompetitionApiService/DownloadDataFiles': {
          const slug = String(body.competitionName ?? '');
          const comp = options.competitions?.[slug];
          if (!comp) return fail(404, `Competition '${slug}' not found`);
          const names = Object.keys(comp.files).sort();
          if (route.endsWith('/ListDataFiles')) {
            const size = Math.max(1, Number(body.pageSize) || 20);
            const from = Number(body.pageToken) || 0;
            const page = names.slice(from, from + size);
            entry.status = 200;
            return json(res, 200, {
              files: page.map((n) => ({ ref: n, name: n, totalBytes: comp.files[n]!.length, creationDate: '2016-09-01T00:00:00Z' })),
              nextPageToken: from + size < names.length ? String(from + size) : '',
            });
          }
          if (comp.rulesAccepted === false) return fail(403, "You must accept this competition's rules before you'll be able to download files.");
          if (route.endsWith('/DownloadDataFiles'))
            return redirect(res, entry, blobFor(`c/${slug}`, `${slug}.zip`, await zipFor(`c/${slug}`, comp.files)), `${slug}.zip`);
          const fileName = String(body.fileName ?? '');
          const data = comp.files[fileName];
          if (!data) return fail(404, `File '${fileName}' not found`);
          return redirect(res, entry, blobFor(`c/${slug}`, fileName, data), fileName);
        }
        case 'datasets.DatasetApiService/DownloadDataset': {
          const ref = `${String(body.ownerSlug ?? '')}/${String(body.datasetSlug ?? '')}`;
          const ds = options.datasets?.[ref];
          if (!ds) return fail(404, `Dataset '${ref}' not found`);
          const scope = `d/${ref}/${String(body.datasetVersionNumber ?? 'latest')}`;
          if (body.fileName === undefined) {
            const name = `${String(body.datasetSlug)}.zip`;
            return redirect(res, entry, blobFor(scope, name, await zipFor(scope, ds.files)), name);
          }
          const fileName = String(body.fileName);
          const data = ds.files[fileName];
          if (!data) return fail(404, `File '${fileName}' not found`);
          return redirect(res, entry, blobFor(scope, fileName, data), fileName);
        }
        default:
          return fail(404, `no method ${route}`);
      }
    })().catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { code: 500, message: String(e) });
      else res.destroy();
    });
  });
  const apiPort = await listen(api);

  return {
    url: `http://127.0.0.1:${apiPort}`,
    storageUrl,
    requests,
    async close() {
      for (const s of [api, storage]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}
