export { type ApiDeps, type App, buildApp } from './app.js';
