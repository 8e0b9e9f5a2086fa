// node:crypto, loaded on first use: most starts never hash (digest auth, tree digests).

import { lazyRequire } from './lazy-require.js';

export const crypto = lazyRequire<typeof import('node:crypto')>('node:crypto');
