import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Acl, Id } from '../tree/types.js';

// Authentication providers and ACL checks, as ZooKeeper's ProviderRegistry has them
// by default: ip (every connection carries its address) and digest, plus world:anyone
// and the super user. Pure functions: the connection keeps its Id list.

/** DigestAuthenticationProvider.generateDigest: `user:base64(sha1(user:password))`. */
export function digestOf(userPassword: string): string {
  const user = userPassword.split(':', 1)[0];
  const hash = createHash('sha1').update(userPassword, 'utf8').digest('base64');
  return `${user}:${hash}`;
}

export interface AuthContext {
  /** The configured `super:<digest>` string, if any. */
  superDigest?: string;
}

/**
 * Handles an auth packet. Returns the ids to add to the connection, or null for
 * AUTHFAILED (unknown scheme or a provider that refuses).
 */
export function authenticate(scheme: string, auth: Buffer, ctx: AuthContext, remoteIp: string): Id[] | null {
  switch (scheme) {
    case 'digest': {
      const digest = digestOf(auth.toString('utf8'));
      const ids: Id[] = [];
      if (ctx.superDigest !== undefined && digest === ctx.superDigest) ids.push({ scheme: 'super', id: '' });
      ids.push({ scheme: 'digest', id: digest });
      return ids;
    }
    case 'ip':
      return [{ scheme: 'ip', id: remoteIp }];
    default:
      return null;
  }
}

/** Whether a scheme:id may appear in an ACL (AuthenticationProvider.isValid). */
export function isValidAclId(scheme: string, id: string): boolean {
  switch (scheme) {
    case 'digest': {
      // Java's split(":") drops trailing empty strings: "u:" is one part, not two.
      const parts = id.split(':');
      while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
      return parts.length === 2;
    }
    case 'ip':
      return parseCidr(id) !== null;
    default:
      return false;
  }
}

interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

function addrBytes(addr: string): Uint8Array | null {
  const kind = isIP(addr);
  if (kind === 4) {
    const parts = addr.split('.').map(Number);
    return Uint8Array.from(parts);
  }
  if (kind === 6) {
    // Expand :: and embedded IPv4 into 16 bytes.
    let s = addr;
    const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
    if (v4) {
      const b = v4[1].split('.').map(Number);
      s = s.slice(0, -v4[1].length) + ((b[0] << 8) | b[1]).toString(16) + ':' + ((b[2] << 8) | b[3]).toString(16);
    }
    const [head, tail] = s.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail !== undefined ? [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const out = new Uint8Array(16);
    groups.forEach((g, i) => {
      const v = parseInt(g, 16);
      out[i * 2] = v >> 8;
      out[i * 2 + 1] = v & 0xff;
    });
    return out;
  }
  return null;
}

function parseCidr(expr: string): Cidr | null {
  const slash = expr.indexOf('/');
  const addr = slash === -1 ? expr : expr.substring(0, slash);
  const bytes = addrBytes(addr);
  if (bytes === null) return null;
  let bits = bytes.length * 8;
  if (slash !== -1) {
    const b = expr.substring(slash + 1);
    if (!/^\d+$/.test(b)) return null;
    bits = Number(b);
    if (bits > bytes.length * 8) return null;
  }
  return { bytes, bits };
}

/** Strips IPv4-mapped IPv6 (::ffff:1.2.3.4), as Java reports such peers as IPv4. */
export function normaliseIp(addr: string | undefined): string {
  if (addr === undefined) return '';
  return addr.startsWith('::ffff:') && isIP(addr.substring(7)) === 4 ? addr.substring(7) : addr;
}

function ipMatches(clientIp: string, aclExpr: string): boolean {
  const cidr = parseCidr(aclExpr);
  const client = addrBytes(clientIp);
  if (cidr === null || client === null || client.length !== cidr.bytes.length) return false;
  let bits = cidr.bits;
  for (let i = 0; i < client.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((client[i] & mask) !== (cidr.bytes[i] & mask)) return false;
  }
  return true;
}

/** ZooKeeperServer.checkACL: true if any entry grants one of `perm` to one of `ids`. */
export function checkAcl(acl: readonly Acl[], perm: number, ids: readonly Id[]): boolean {
  if (acl.length === 0) return true;
  for (const id of ids) if (id.scheme === 'super') return true;
  for (const a of acl) {
    if ((a.perms & perm) === 0) continue;
    if (a.scheme === 'world' && a.id === 'anyone') return true;
    for (const id of ids) {
      if (id.scheme !== a.scheme) continue;
      if (a.scheme === 'digest' && id.id === a.id) return true;
      if (a.scheme === 'ip' && ipMatches(id.id, a.id)) return true;
    }
  }
  return false;
}

/** Which providers count as authenticated for the `auth` ACL scheme (isAuthenticated). */
export function isAuthenticatedScheme(scheme: string): boolean {
  return scheme === 'digest';
}
