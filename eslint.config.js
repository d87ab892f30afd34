// Flat config: ESLint's and typescript-eslint's recommended rules over the whole tree.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';


const AREAS = ['tasks', 'agents', 'providers', 'workflows', 'schedules', 'auth', 'audit', 'health', 'realtime', 'docs'];
const platformKnowsNoArea = { group: [...AREAS.flatMap((a) => [`**/${a}/*`]), '**/shared/routes.js', '../routes.js', '../../routes.js', '../http.js', '../../http.js'], message: 'shared/platform/ knows no area: take what you need through a port or a parameter.' };
const otherAreasRepo = { group: ['../*/repo.js', '../*/*-repo.js'], allowTypeImports: true, message: 'An area uses another area through its service, never its repo.' };
const storeAndSdk = [
  { group: ['**/platform/store/*', '**/platform/aws/*', '@aws-sdk/*'], message: 'Models and rules are pure: no store, no AWS SDK.' },
  { group: ['./repo.js', './*-repo.js', '../*/repo.js', '../*/*-repo.js'], allowTypeImports: true, message: 'Models and rules are pure: no repositories (record types excepted).' },
];
// Ids come from shared/platform/ids.ts, the one module that imports these.
const ulidMakers = { name: 'ulid', importNames: ['ulid', 'monotonicFactory'], message: "Make ids with newUlid / monotonicUlids (shared/platform/ids.ts): the package's own random source costs about 125 µs an id." };
const ID_MAKER = 'shared/platform/ids.ts';
// Pure rules of each area (no I/O): they may import models, other rules and platform's pure modules.
const RULE_FILES = [
  'shared/*/model.ts',
  'shared/tasks/{transitions,status,retry,errors,payloads,prompts,routing,stats,extract}.ts',
  'shared/workflows/{graph,validation,conditions,templates,definition,engine,asl}.ts',
  'shared/schedules/schedule.ts',
  'shared/providers/{circuit-breaker,errors,recommendations,routing,usage,tokens}.ts',
  'shared/agents/quota.ts',
  'shared/auth/{lockout,passwords,session-rules}.ts',
  'shared/realtime/channels.ts',
  'shared/health/checks.ts',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.data/', '.bench/', 'coverage/', 'client/schema.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks a value kept on purpose (destructuring to drop a field, an unused handler argument).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' }],
      // `let x; … () => x …; x = make(…)`: a callback that needs the value it is created before (a
      // server's handler and the server's port) reads better declared up front than reordered around TDZ.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['shared/**/*.ts', 'local/**/*.ts', 'functions/**/*.ts', 'lib/**/*.ts', 'bin/**/*.ts'],
    ignores: [ID_MAKER],
    rules: { 'no-restricted-imports': ['error', { paths: [ulidMakers] }] },
  },
  {
    // Arrows point one way: functions -> areas -> platform. The platform knows no area.
    files: ['shared/platform/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [ulidMakers], patterns: [platformKnowsNoArea] }],
    },
  },
  {
    files: [ID_MAKER],
    rules: { 'no-restricted-imports': ['error', { patterns: [platformKnowsNoArea] }] },
  },
  {
    files: ['shared/*/**/*.ts'],
    ignores: ['shared/platform/**', ...RULE_FILES],
    rules: { 'no-restricted-imports': ['error', { paths: [ulidMakers], patterns: [otherAreasRepo] }] },
  },
  {
    files: RULE_FILES,
    rules: { 'no-restricted-imports': ['error', { paths: [ulidMakers], patterns: [...storeAndSdk, otherAreasRepo] }] },
  },
  {
    // Tests read parsed JSON answers field by field; typing every answer would only restate the schemas.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // TypeScript itself reports undefined names, with the types' knowledge of Node's globals.
    files: ['**/*.ts'],
    rules: { 'no-undef': 'off' },
  },
);
