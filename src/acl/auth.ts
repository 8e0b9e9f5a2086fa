import { isIP } from 'node:net';
import type { Acl, Id } from '../tree/types.js';
import { crypto } from '../crypto.js';

// Authentication providers and ACL checks, as ZooKeeper's ProviderRegistry has them
// by default: ip (every connection carries its address) and digest, plus world:anyone
// and the super user. Pure functions: the connection keeps its Id list.

/** DigestAuthenticationProvider.generateDigest: `user:base64(sha1(user:password))`. */
export function digestOf(userPassword: string): string {
  const user = userPassword.split(':', 1)[0];
  const hash = crypto().createHash('sha1').update(userPassword, 'utf8').digest('base64');
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

/** Java's Integer.parseInt: an optional sign, decimal digits, within an int; else null. */
function javaParseInt(s: string): number | null {
  if (!/^[+-]?[0-9]+$/.test(s)) return null;
  const v = Number(s);
  return v >= -2147483648 && v <= 2147483647 ? v : null;
}

/**
 * IPAuthenticationProvider.addr2Bytes: IPv4 only ("TODO Write the v6addr2Bytes" in
 * ZooKeeper 3.9), four dot-separated parts each parsed by Integer.parseInt into 0..255,
 * so "127.000.0.01" is valid and "::1" is not (an IPv6 client matches no ip ACL).
 */
function addrBytes(addr: string): Uint8Array | null {
  const parts = addr.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const v = javaParseInt(parts[i]);
    if (v === null || v < 0 || v > 255) return null;
    out[i] = v;
  }
  return out;
}

function parseCidr(expr: string): Cidr | null {
  const slash = expr.indexOf('/');
  const addr = slash === -1 ? expr : expr.substring(0, slash);
  const bytes = addrBytes(addr);
  if (bytes === null) return null;
  let bits = bytes.length * 8;
  if (slash !== -1) {
    const b = javaParseInt(expr.substring(slash + 1));
    if (b === null || b < 0 || b > bytes.length * 8) return null;
    bits = b;
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
