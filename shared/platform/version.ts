import { getConfig } from './config.js';

/** The deployed version (`SUPERVISOR_VERSION`), the package version otherwise. */
export const VERSION: string = getConfig().version;
