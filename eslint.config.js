// Flat config: ESLint's and typescript-eslint's recommended rules over the whole tree.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.data/', '.bench/', 'coverage/'] },
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
