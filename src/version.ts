import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZK_PROTOCOL_VERSION } from './protocol/constants.js';

// Corral's version, and the version string it reports where ZooKeeper reports its own
// (srvr/stat, envi, mntr). Clients parse the leading x.y.z as the ZooKeeper version.

const here = dirname(fileURLToPath(import.meta.url));
let cached: string | undefined;

/** The package.json version (running from src/ or from dist/src/). */
export function corralVersion(): string {
  if (cached !== undefined) return cached;
  for (const p of [join(here, '../package.json'), join(here, '../../package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version: string };
      if (pkg.name !== 'corral') continue;
      return (cached = pkg.version);
    } catch {
      // try the next layout
    }
  }
  return (cached = '0.0.0');
}

/** `3.9.3-corral-0.1.0`: the part of ZooKeeper's `Version.getVersionRevision()`. */
export function zkVersion(): string {
  return `${ZK_PROTOCOL_VERSION}-corral-${corralVersion()}`;
}

let builtOn: string | undefined;

/** When this module was built, in ZooKeeper's build.time format (`yyyy-MM-dd HH:mm UTC`). */
function buildDate(): string {
  if (builtOn !== undefined) return builtOn;
  let t: Date;
  try {
    t = statSync(fileURLToPath(import.meta.url)).mtime;
  } catch {
    t = new Date(0);
  }
  const p = (n: number) => String(n).padStart(2, '0');
  builtOn =
    `${t.getUTCFullYear()}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())} ` + `${p(t.getUTCHours())}:${p(t.getUTCMinutes())} UTC`;
  return builtOn;
}

/** ZooKeeper's `Version.getFullVersion()`: `3.9.3-corral-0.1.0, built on 2025-01-01 12:00 UTC`. */
export function zkFullVersion(): string {
  return `${zkVersion()}, built on ${buildDate()}`;
}
