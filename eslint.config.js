// Lint: typescript-eslint's recommended rules on sources, tests and benches.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', '**/.scratch*/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // weftd runs with --jitless (bin/weftd), which turns WebAssembly off, and
    // with it Node's fetch (undici parses HTTP in wasm)
    files: ['src/**'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'fetch', message: 'weftd runs --jitless, without WebAssembly, which fetch needs: use node:http' },
        { name: 'WebAssembly', message: 'weftd runs --jitless, without WebAssembly' }],
    },
  },
)
