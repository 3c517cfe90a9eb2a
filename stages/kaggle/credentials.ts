// Kaggle credentials, found where the official CLI looks. The key is held in a private field
// and never leaves this object except as an Authorization header: JSON.stringify, util.inspect
// and template strings of a KaggleCredentials show the user name and where it came from only.
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { StageError } from '../../runner/types.js';

export class KaggleCredentials {
  readonly #key: string;

  constructor(
    readonly username: string,
    key: string,
    /** Where they were read from, e.g. "/home/u/.kaggle/kaggle.json" (never the key). */
    readonly source: string,
    /** Things worth telling the user (a config file readable by others). */
    readonly warnings: readonly string[] = [],
  ) {
    this.#key = key;
  }

  /** The value of the HTTP basic Authorization header. */
  authorization(): string {
    return `Basic ${Buffer.from(`${this.username}:${this.#key}`).toString('base64')}`;
  }

  /** Replace any occurrence of the key (and its basic-auth encoding) in text meant for people. */
  redact(text: string): string {
    let out = text;
    const b64 = this.authorization().slice('Basic '.length);
    for (const secret of [this.#key, b64]) if (secret.length >= 4) out = out.split(secret).join('***');
    return out;
  }

  toJSON(): Record<string, string> {
    return { username: this.username, source: this.source };
  }

  toString(): string {
    return `Kaggle user ${this.username} (from ${this.source})`;
  }

  [inspect.custom](): string {
    return `KaggleCredentials { username: ${JSON.stringify(this.username)}, source: ${JSON.stringify(this.source)} }`;
  }
}

export interface CredentialSearch {
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
}

/** The config files to look in, in order (the official client's rules on Linux). */
export function credentialFiles(env: NodeJS.ProcessEnv, home: string): string[] {
  if (env.KAGGLE_CONFIG_DIR) return [path.join(env.KAGGLE_CONFIG_DIR, 'kaggle.json')];
  const xdg = env.XDG_CONFIG_HOME ? path.join(env.XDG_CONFIG_HOME, 'kaggle') : path.join(home, '.config', 'kaggle');
  return [path.join(home, '.kaggle', 'kaggle.json'), path.join(xdg, 'kaggle.json')];
}

function missingMessage(files: readonly string[]): string {
  return (
    'no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY, or save the kaggle.json from ' +
    `https://www.kaggle.com/settings (API: "Create New Token") as ${files.join(' or ')} (chmod 600)`
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

/**
 * Credentials as the official CLI finds them: KAGGLE_USERNAME + KAGGLE_KEY, else
 * $KAGGLE_CONFIG_DIR/kaggle.json, else ~/.kaggle/kaggle.json, else
 * $XDG_CONFIG_HOME/kaggle/kaggle.json (~/.config/kaggle). No network: a missing or unreadable
 * configuration is a StageError that says where to put it.
 */
export async function findCredentials(search: CredentialSearch = {}): Promise<KaggleCredentials> {
  const env = search.env ?? process.env;
  const home = search.home ?? os.homedir();
  const { KAGGLE_USERNAME: user, KAGGLE_KEY: key } = env;
  if (user && key) return new KaggleCredentials(user, key, 'environment variables KAGGLE_USERNAME and KAGGLE_KEY');
  const files = credentialFiles(env, home);
  for (const file of files) {
    if (!(await exists(file))) continue;
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
      throw new StageError(`invalid Kaggle credentials file ${file}: it needs both "username" and "key"`, 'download a fresh kaggle.json from https://www.kaggle.com/settings');
    }
    const warnings: string[] = [];
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) warnings.push(`${file} is readable by other users: run chmod 600 ${file}`);
    const source = user ? `KAGGLE_USERNAME and ${file}` : key ? `${file} and KAGGLE_KEY` : file;
    return new KaggleCredentials(username, fileKey, source, warnings);
  }
  if (user || key) {
    const missing = user ? 'KAGGLE_KEY' : 'KAGGLE_USERNAME';
    throw new StageError(`incomplete Kaggle credentials: ${missing} is not set. ${missingMessage(files)}`);
  }
  throw new StageError(missingMessage(files));
}
