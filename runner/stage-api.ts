// The runner's public module for stages: what a stage may use of the runner beyond the
// contract in types.ts. A stage imports runner/types.ts and this file, nothing else under
// runner/ (the lint's wall rule checks it; docs/architecture.md, "The wall"). Everything is
// re-exported from where it lives, so the runner's own modules stay free to move.

/** Bounded parallel map, file hashing with the stat cache (cheap on a no-op run). */
export { mapLimit, sha256File, cachedFileHash, hashFiles, type FileHash } from './hash-files.js';
/** Atomic writes, and the located check of a path a param names. */
export { writeAtomic, fileProblem } from './fs-util.js';
/** The device a stage computed on (cpu, cuda ...), for the run record and `pipe runs`. */
export { noteDevice } from './device.js';
/** Run history for the report: the last runs of a pipeline, and the cache root of a stage's dir. */
export { recentRuns, type RecentRun, type RecentRuns } from './report-history.js';
/** The provision stage's host clients, loaded lazily (the EC2 one loads the AWS SDK): call inside `run`. */
export const hostClients = {
  ssh: () => import('./hosts/ec2/ssh-wait.js'),
  ec2: () => import('./hosts/ec2/client.js'),
  slurm: () => import('./hosts/slurm/cluster.js'),
  slurmGpu: () => import('./hosts/slurm/gpu-probe.js'),
  install: () => import('./hosts/install.js'),
};
/** The `pipe:cache` tag of a cache, and the cache root of a stage's work dir. */
export { cacheIdOf, cacheRootOfWorkDir } from './hosts/cache-id.js';
export { sshKeyPath } from './hosts/ssh-key.js';
/** What a `provider: slurm` host records: the cluster and what each job asks of it. */
export type { SlurmCluster } from './hosts/slurm/request.js';
/** host.json, the one record of a host artifact: its type, its name, its reader. */
export { HOST_FILE, readHostFile, type HostFile } from './hosts/host-file.js';
/** Where an input artifact came from: a stub of a remote artifact, or pulled from one. */
export { isStub, pulledInfo, stubRemote, type PulledInfo } from './remote/stub.js';
