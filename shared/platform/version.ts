/** Set at build time by esbuild's `define` in the CDK bundling; the package version otherwise. */
export const VERSION: string = process.env.SUPERVISOR_VERSION ?? '0.1.0';
