/** @module ui/env — lets TypeScript accept the stylesheet imports esbuild bundles. */
declare module '*.css';
