// One line per event on stdout, ISO time first, so operators can grep and ship it.

export type Logger = (level: 'INFO' | 'WARN' | 'ERROR', msg: string) => void;

export const stdoutLogger: Logger = (level, msg) => {
  process.stdout.write(`${new Date().toISOString()} [${level}] ${msg}\n`);
};

export const silentLogger: Logger = () => {};
