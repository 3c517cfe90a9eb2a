export { loadPipeline, type LoadOptions } from './front/load.js';
