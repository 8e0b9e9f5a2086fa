// PathUtils.validatePath: the rules every server of a ZooKeeper ensemble applies, so
// that a path one accepts is a path all accept.

/** Returns the reason a path is invalid, or null when it is valid. */
export function invalidPath(path: string): string | null {
  if (path.length === 0) return 'Path length must be > 0';
  if (path.charCodeAt(0) !== 47) return 'Path must start with / character';
  if (path.length === 1) return null;
  if (path.charCodeAt(path.length - 1) === 47) return 'Path must not end with / character';
  let last = 47;
  for (let i = 1; i < path.length; last = path.charCodeAt(i), i++) {
    const c = path.charCodeAt(i);
    if (c === 0) return `null character not allowed @${i}`;
    if (c === 47 && last === 47) return `empty node name specified @${i}`;
    if (c === 46 && last === 46) {
      if (path.charCodeAt(i - 2) === 47 && (i + 1 === path.length || path.charCodeAt(i + 1) === 47))
        return `relative paths not allowed @${i}`;
    } else if (c === 46) {
      if (path.charCodeAt(i - 1) === 47 && (i + 1 === path.length || path.charCodeAt(i + 1) === 47))
        return `relative paths not allowed @${i}`;
    } else if (
      (c > 0 && c <= 0x1f) ||
      (c >= 0x7f && c <= 0x9f) ||
      (c >= 0xd800 && c <= 0xf8ff) ||
      (c >= 0xfff0 && c <= 0xffff)
    ) {
      return `invalid character @${i}`;
    }
  }
  return null;
}

/** The znodes a client may never delete (DataTree.isSpecialPath). */
export function isSpecialPath(path: string): boolean {
  return path === '/' || path === '/zookeeper' || path === '/zookeeper/quota' || path === '/zookeeper/config';
}
