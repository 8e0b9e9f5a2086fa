import { Perms } from '../protocol/constants.js';
import type { Acl } from './types.js';

/** ZooDefs.Ids.OPEN_ACL_UNSAFE: world:anyone with every permission. */
export const OPEN_ACL_UNSAFE: readonly Acl[] = [{ perms: Perms.ALL, scheme: 'world', id: 'anyone' }];

export function aclKey(acl: readonly Acl[]): string {
  let k = '';
  for (const a of acl) k += `${a.perms},${a.scheme},${a.id};`;
  return k;
}
