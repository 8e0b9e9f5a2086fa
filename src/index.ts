// The corral package: the client (both transports). The server is started with `corral start`.
export * from './client/index.js';
