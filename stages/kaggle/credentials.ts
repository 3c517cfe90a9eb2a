// Kaggle credentials, found where Kaggle's own CLI looks, in its order: an API token (what
// kaggle.com/settings "Generate New Token" hands out today) before a legacy username + key.
// The secret is held in a private field and never leaves this object except as an
// Authorization header: JSON.stringify, util.inspect and template strings of a
// KaggleCredentials show the kind, the user name (legacy) and where it came from only.
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { StageError } from '../../runner/types.js';

export type CredentialKind = 'token' | 'legacy';

export class KaggleCredentials {
  readonly #secret: string;

  private constructor(
    readonly kind: CredentialKind,
    /** The Kaggle user name of a legacy key; a token does not say whose it is. */
    readonly username: string | undefined,
    secret: string,
    /** Where they were read from, e.g. "/home/u/.kaggle/access_token" (never the secret). */
    readonly source: string,
    /** Things worth telling the user (a credentials file readable by others). */
    readonly warnings: readonly string[],
  ) {
    this.#secret = secret;
  }

  /** An API token (`KGAT_...`), sent as `Authorization: Bearer`. */
  static token(token: string, source: string, warnings: readonly string[] = []): KaggleCredentials {
    return new KaggleCredentials('token', undefined, token, source, warnings);
  }

  /** A legacy username + key (kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY), sent as HTTP basic auth. */
  static legacy(username: string, key: string, source: string, warnings: readonly string[] = []): KaggleCredentials {
    return new KaggleCredentials('legacy', username, key, source, warnings);
  }

  /** For log lines and messages: what was used and where it came from, never the secret. */
  describe(): string {
    return this.kind === 'token' ? `a Kaggle API token from ${this.source}` : `Kaggle user ${this.username} (legacy API key from ${this.source})`;
  }

  /** The value of the HTTP Authorization header. */
  authorization(): string {
    if (this.kind === 'token') return `Bearer ${this.#secret}`;
    return `Basic ${Buffer.from(`${this.username}:${this.#secret}`).toString('base64')}`;
  }

  /** Replace any occurrence of the secret (and a basic-auth encoding of it) in text meant for people. */
  redact(text: string): string {
    let out = text;
    const secrets = this.kind === 'token' ? [this.#secret] : [this.#secret, this.authorization().slice('Basic '.length)];
    for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('***');
    return out;
  }

  toJSON(): Record<string, string> {
    return { kind: this.kind, ...(this.username !== undefined ? { username: this.username } : {}), source: this.source };
  }

  toString(): string {
    return this.describe();
  }

  [inspect.custom](): string {
    const user = this.username !== undefined ? `, username: ${JSON.stringify(this.username)}` : '';
    return `KaggleCredentials { kind: '${this.kind}'${user}, source: ${JSON.stringify(this.source)} }`;
  }
}

export interface CredentialSearch {
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
}

/** The folders Kaggle's CLI reads its files from, in order (KAGGLE_CONFIG_DIR alone when set). */
export function configDirs(env: NodeJS.ProcessEnv, home: string): string[] {
  if (env.KAGGLE_CONFIG_DIR) return [env.KAGGLE_CONFIG_DIR];
  const xdg = env.XDG_CONFIG_HOME ? path.join(env.XDG_CONFIG_HOME, 'kaggle') : path.join(home, '.config', 'kaggle');
  return [path.join(home, '.kaggle'), xdg];
}

/** The API token files to look in, in order. */
export function tokenFiles(env: NodeJS.ProcessEnv, home: string): string[] {
  return configDirs(env, home).flatMap((dir) => [path.join(dir, 'access_token'), path.join(dir, 'access_token.txt')]);
}

/** The legacy kaggle.json files to look in, in order. */
export function credentialFiles(env: NodeJS.ProcessEnv, home: string): string[] {
  return configDirs(env, home).map((dir) => path.join(dir, 'kaggle.json'));
}

const NEW_TOKEN = 'create an API token at https://www.kaggle.com/settings (API: "Generate New Token")';

function missingMessage(env: NodeJS.ProcessEnv, home: string): string {
  return (
    `no Kaggle credentials found: ${NEW_TOKEN} and set KAGGLE_API_TOKEN to it, or save it as ${tokenFiles(env, home)[0]} (chmod 600). ` +
    `A legacy API key works too: KAGGLE_USERNAME and KAGGLE_KEY, or kaggle.json in ${credentialFiles(env, home).join(' or ')}`
  );
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** The warning kaggle.json and token files get when others may read them. */
async function permissionWarnings(file: string): Promise<string[]> {
  const st = await stat(file);
  return (st.mode & 0o077) !== 0 ? [`${file} is readable by other users: run chmod 600 ${file}`] : [];
}

/** A token from a file: trimmed; an empty file or a kaggle.json in the wrong place is a clear error. */
async function readTokenFile(file: string, source: string): Promise<KaggleCredentials> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    throw new StageError(`cannot read the Kaggle API token file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text === '') throw new StageError(`the Kaggle API token file ${file} is empty`, `${NEW_TOKEN} and save it there`);
  if (text.startsWith('{')) {
    throw new StageError(
      `the Kaggle API token file ${file} holds JSON, not a token`,
      'a {"username", "key"} file is a legacy kaggle.json: save it under that name, or put the token alone in this file',
    );
  }
  return KaggleCredentials.token(text, source, await permissionWarnings(file));
}

/** KAGGLE_API_TOKEN holds the token itself or the path of a file holding it (as for Kaggle's CLI). */
async function tokenFromEnv(value: string, home: string): Promise<KaggleCredentials> {
  const looksLikePath = /^(\/|~\/|\.\.?\/)/.test(value);
  const file = value.startsWith('~/') ? path.join(home, value.slice(2)) : value;
  if (looksLikePath || (await exists(file))) {
    if (!(await exists(file))) throw new StageError(`KAGGLE_API_TOKEN names the file ${file}, which does not exist`);
    return readTokenFile(file, `${file} (named by KAGGLE_API_TOKEN)`);
  }
  return KaggleCredentials.token(value.trim(), 'the environment variable KAGGLE_API_TOKEN');
}

async function legacyFromFile(file: string, user: string | undefined, key: string | undefined): Promise<KaggleCredentials> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    // The parser's message may quote the file's content (the key): say only what is wrong.
    const why = e instanceof SyntaxError ? 'it is not valid JSON' : `cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
    throw new StageError(`invalid Kaggle credentials file ${file}: ${why}`, 'it should hold {"username": "...", "key": "..."}');
  }
  const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const username = user || (typeof obj.username === 'string' ? obj.username : '');
  const fileKey = key || (typeof obj.key === 'string' ? obj.key : '');
  if (!username || !fileKey) {
    throw new StageError(`invalid Kaggle credentials file ${file}: it needs both "username" and "key"`, `${NEW_TOKEN}, or download a fresh legacy kaggle.json`);
  }
  const source = user ? `KAGGLE_USERNAME and ${file}` : key ? `${file} and KAGGLE_KEY` : file;
  return KaggleCredentials.legacy(username, fileKey, source, await permissionWarnings(file));
}

/**
 * Credentials in Kaggle's own order: KAGGLE_API_TOKEN (the token, or a file path), then
 * access_token and access_token.txt in the config folders ($KAGGLE_CONFIG_DIR alone when set,
 * else ~/.kaggle, then $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle); then the legacy forms:
 * KAGGLE_USERNAME + KAGGLE_KEY, then kaggle.json in the same folders. No network: a missing or
 * unreadable configuration is a StageError that says where to put it.
 */
export async function findCredentials(search: CredentialSearch = {}): Promise<KaggleCredentials> {
  const env = search.env ?? process.env;
  const home = search.home ?? os.homedir();
  if (env.KAGGLE_API_TOKEN?.trim()) return tokenFromEnv(env.KAGGLE_API_TOKEN.trim(), home);
  for (const file of tokenFiles(env, home)) {
    if (await exists(file)) return readTokenFile(file, file);
  }
  const { KAGGLE_USERNAME: user, KAGGLE_KEY: key } = env;
  if (user && key) return KaggleCredentials.legacy(user, key, 'environment variables KAGGLE_USERNAME and KAGGLE_KEY');
  for (const file of credentialFiles(env, home)) {
    if (await exists(file)) return legacyFromFile(file, user, key);
  }
  if (user || key) {
    const missing = user ? 'KAGGLE_KEY' : 'KAGGLE_USERNAME';
    throw new StageError(`incomplete Kaggle credentials: ${missing} is not set. ${missingMessage(env, home)}`);
  }
  throw new StageError(missingMessage(env, home));
}
