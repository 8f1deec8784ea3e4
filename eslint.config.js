/** @module eslint.config — lint rules: typescript-eslint's type-checked set, trimmed to what fits this codebase. */
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_TEST = [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }];

/**
 * The layers of src/ (docs/design.md): each folder and the folders it may import besides itself.
 * Lower folders never import higher ones; assembly/, cli/ and the root files may import anything.
 */
const LAYERS = {
  oci: [],
  util: [],
  ports: ['oci', 'util'],
  config: ['oci', 'util'],
  storage: ['ports', 'oci', 'util', 'config'],
  upstream: ['ports', 'oci', 'util', 'config'],
  auth: ['ports', 'upstream', 'oci', 'util', 'config'],
  cache: ['ports', 'storage', 'upstream', 'oci', 'util', 'config'],
  push: ['cache', 'ports', 'storage', 'upstream', 'auth', 'oci', 'util', 'config'],
  cluster: ['ports', 'storage', 'upstream', 'oci', 'util', 'config'],
  workers: ['ports', 'storage', 'upstream', 'oci', 'util', 'config'],
  ops: ['cache', 'push', 'ports', 'storage', 'upstream', 'auth', 'oci', 'util', 'config'],
  http: ['ops', 'cache', 'push', 'auth', 'ports', 'storage', 'upstream', 'oci', 'util', 'config'],
  fleet: ['http', 'ops', 'cache', 'push', 'ports', 'storage', 'upstream', 'auth', 'oci', 'util', 'config'],
  nodeconfig: ['oci', 'util', 'config'],
};
const FOLDERS = [...Object.keys(LAYERS), 'assembly', 'cli'];

/** The import rule for code in `folder`. */
function layerRule(folder) {
  const allowed = new Set([folder, ...LAYERS[folder]]);
  const forbidden = FOLDERS.filter((f) => !allowed.has(f));
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^(\\.\\./)+(${forbidden.join('|')})/`,
            message: `src/${folder}/ may import only ${[...allowed].join(', ')} (the layers in eslint.config.js)`,
          },
          { regex: '^(\\.\\./)+(app|main|store-prep)\\.js$', message: 'only assembly/, cli/ and main.ts import the composition modules' },
        ],
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'ui/dist/**', 'test/fixtures/store-*/**', '.tools/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.js', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Floating promises are how unhandled failures hide; `void` marks the deliberate ones.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: NODE_TEST }],
      // An async listener or callback is a promise nobody awaits: its failure hangs whatever waited on it.
      '@typescript-eslint/no-misused-promises': 'error',
      // `return promise` inside try skips the catch: the request it serves then never answers.
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Streams, undici bodies and JSON.parse results are `any` at the edge; their shape is checked where read.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Template literals with numbers are the common log and message shape here.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/require-await': 'off',
      // String(unknown) is how YAML scalars and log fields are compared with patterns; an object never matches them.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // The server: a fire-and-forget promise says what happens when it fails (`.catch`), not just `void`.
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false, allowForKnownSafeCalls: NODE_TEST }] },
  },
  ...Object.keys(LAYERS).map((folder) => ({ files: [`src/${folder}/**/*.ts`], ignores: ['**/*.test.ts'], rules: layerRule(folder) })),
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
