export { buildGraph, selectStages, upstreamOf, downstreamOf, type Graph, type Selection } from './front/graph.js';
