// `npm run bench`: every benchmark, one JSON document on stdout. Figures are measured in the
// same run as their references (the machine is noisy: absolute numbers drift 10-20%).
// Pass names to run a subset: `npm run bench -- runner data`.
import os from 'node:os';

type Bench = () => Promise<unknown>;

const benches: Record<string, () => Promise<Bench>> = {
  runner: async () => (await import('./runner.js')).benchRunner,
  data: async () => (await import('./data.js')).benchData,
  loader: async () => (await import('./loader.js')).benchLoader,
  model: async () => (await import('./model.js')).benchModel,
  engines: async () => (await import('./engines.js')).benchEngines,
  remote: async () => (await import('./remote.js')).benchRemote,
  images: async () => (await import('./images.js')).benchImages,
  slurm: async () => (await import('./slurm.js')).benchSlurm,
  predict: async () => (await import('./predict.js')).benchPredict,
  augment: async () => (await import('./augment.js')).benchAugment,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(benches);
const results: Record<string, unknown> = {
  machine: { cpus: os.cpus()[0]?.model, cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
for (const name of names) {
  const load = benches[name];
  if (!load) {
    results[name] = { error: `unknown benchmark (have: ${Object.keys(benches).join(', ')})` };
    continue;
  }
  process.stderr.write(`bench ${name}...\n`);
  try {
    results[name] = await (await load())();
  } catch (e) {
    results[name] = { error: (e as Error).message };
  }
}
console.log(JSON.stringify(results, null, 2));
