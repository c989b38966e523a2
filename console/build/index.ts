import { fileURLToPath } from 'node:url';

/** The built console: index.html and its assets/ (what the API serves under /console). */
export const consoleRoot = fileURLToPath(new URL('../public/', import.meta.url));
