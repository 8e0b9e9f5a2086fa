// Damage that recovery must not paper over. The message names the file or directory
// and says what the operator can do, because it is what `corral start` prints on exit.

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(message: string) {
    super(message);
  }
}

/** A record that does not parse: wrong length, bad tag. Wrapped into StorageError by callers. */
export class FormatError extends Error {
  override readonly name = 'FormatError';
}
