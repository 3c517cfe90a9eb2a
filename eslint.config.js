// ESLint (flat config): typescript-eslint's recommended rules, kept modest so the code base
// passes as written, plus the two architecture rules of docs/architecture.md:
// - the wall: a stage (stages/**) imports from the runner only its public modules,
//   runner/types.ts and runner/stage-api.ts (static imports and `await import()` alike);
// - no import cycles between files.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX, createNodeResolver } from 'eslint-plugin-import-x';

const WALL_MESSAGE = 'A stage imports only runner/types.js or runner/stage-api.js from the runner (docs/architecture.md, "The wall").';

/** The wall, for static imports: everything under runner/ but its two public modules. */
export const STAGE_WALL = {
  patterns: [{ group: ['**/runner/*', '**/runner/**/*', '!**/runner/types.js', '!**/runner/stage-api.js'], message: WALL_MESSAGE }],
};
/** The wall, for `await import('../runner/x.js')` (esquery's regex has no `/`: `.` stands for it). */
const STAGE_WALL_DYNAMIC = {
  selector: 'ImportExpression[source.value=/runner.(?!types\\.js$|stage-api\\.js$)/]',
  message: WALL_MESSAGE,
};

/** The wall, for type positions: `import('../runner/x.js').T`. */
const STAGE_WALL_TYPE_IMPORT = {
  selector: 'TSImportType[argument.literal.value=/runner.(?!types\\.js$|stage-api\\.js$)/]',
  message: WALL_MESSAGE,
};

export default tseslint.config(
  // test/fixtures/lint/ breaks the rules on purpose (test/lint.test.ts lints it explicitly).
  { ignores: ['dist/**', 'node_modules/**', 'test-artifacts/**', '.pipe/**', 'bin/**', 'schema/**', 'test/fixtures/lint/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Sources import their siblings as `./x.js`; the files are `./x.ts`.
      'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Modest on purpose: the code uses `any` at typed boundaries (JSON, Ajv, tfjs) and
      // rethrows located user errors without the low-level cause on purpose.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-empty-object-type': 'off',
      'preserve-caught-error': 'off',
      'no-useless-assignment': 'off',
    },
  },
  {
    files: ['stages/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', STAGE_WALL],
      'no-restricted-syntax': ['error', STAGE_WALL_DYNAMIC, STAGE_WALL_TYPE_IMPORT],
    },
  },
  {
    // The other side of the wall: the runner is handed its stages (Pipeline.stageImpls); only
    // the CLI's openers and the schema/docs generators name the built-in list.
    files: ['runner/**/*.ts'],
    ignores: ['runner/open.ts', 'runner/commands/validate.ts', 'runner/stage-docs.ts', 'runner/write-schema.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/stages/*', '**/stages/**/*'],
              message: 'The runner is handed its stages (docs/architecture.md): only the CLI openers and generators import stages/.',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests feed the parser control characters and exact spacing on purpose.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-control-regex': 'off',
      'no-regex-spaces': 'off',
    },
  },
);
