export { formatDiagnostic } from './front/diagnostics.js';
