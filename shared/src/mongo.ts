import mongoose, { type Connection } from 'mongoose';

/**
 * Opens a dedicated connection (not mongoose's global one) so several services or tests can live
 * in one process. Fails fast when the server cannot be reached.
 */
export async function connectMongo(url: string, options: { readOnly?: boolean } = {}): Promise<Connection> {
  const connection = mongoose.createConnection(url, {
    serverSelectionTimeoutMS: 5_000,
    // Writes wait for the server instead of queueing in memory while it is away.
    bufferCommands: false,
    autoIndex: false,
    // A reader (the gateway, a MongoDB user with `read`) creates no collection.
    ...(options.readOnly ? { autoCreate: false } : {}),
  });
  await connection.asPromise();
  return connection;
}
