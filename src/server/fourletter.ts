import { ZK_PROTOCOL_VERSION } from '../protocol/constants.js';
import type { CorralServer } from './server.js';

// Placeholder until the full 4lw set lands.
export function runFourLetterWord(word: string, server: CorralServer): string {
  if (word === 'ruok') return 'imok';
  return `Zookeeper version: ${ZK_PROTOCOL_VERSION}-corral\nZxid: 0x${server.tree.lastZxid.toString(16)}\n`;
}
