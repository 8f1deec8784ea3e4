// Removes dist/ before a build, so files of renamed or deleted modules (and their tests) cannot linger there.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
