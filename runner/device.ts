// Which device computed a stage, as the engines report it ('onnx cuda:0 (Tesla T4)', 'onnx cpu
// (4 threads)', 'tfjs wasm (2 threads)'). `pipe exec` runs one stage per process, so a list kept
// for the process is that stage's; the runner puts it into meta.json and the stage's summary.
const used: string[] = [];

export function noteDevice(device: string): void {
  if (!used.includes(device)) used.push(device);
}

export function devicesUsed(): readonly string[] {
  return used;
}
