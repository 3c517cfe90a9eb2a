// Convolution gradients for tfjs' wasm backend, built from wasm's own Transpose, Reverse and
// Conv2D (XNNPACK) kernels:
// - Conv2DBackpropFilter: missing from tfjs-backend-wasm 4.22 (training a conv layer throws
//   "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'"). dW is a convolution of
//   the input with dy: batch and channels swapped, the forward stride becoming a dilation.
// - Conv2DBackpropInput: wasm ships one, but it is a naive loop (6.9 s of a 15.5 s VGG block5
//   step). For stride 1, dx is a 'full' convolution of dy with the flipped, io-swapped filter;
//   other strides keep the original kernel.
// - MaxPoolGrad: wasm's (tfjs-backend-wasm 4.22, via its pool3d code) returns wrong gradients
//   (max difference 0.83 against the cpu backend on a 2x2/2 pool of a [2,4,4,3] input), which
//   silently corrupts the training of every conv layer below a max pooling. Replaced by a plain
//   loop: each output's gradient goes to the first maximum of its window, as TensorFlow does.
import type * as tfTypes from '@tensorflow/tfjs';

type Tf = typeof tfTypes;
type TensorInfo = tfTypes.TensorInfo;
type KernelConfig = tfTypes.KernelConfig;
type Conv2DInfo = tfTypes.backend_util.Conv2DInfo;
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

/** Minimal view of the wasm backend: kernels return TensorInfos whose data we must release. */
interface Backend {
  disposeData(dataId: object, force?: boolean): boolean;
}
type Attrs = Record<string, unknown>;
type Run = (kernel: string, inputs: Record<string, TensorInfo>, attrs?: Attrs) => TensorInfo;

const ours = new WeakSet<object>();

function runner(tf: Tf, backend: Backend): { run: Run; free: (...t: TensorInfo[]) => void } {
  const run: Run = (kernel, inputs, attrs = {}) => {
    const config = tf.getKernel(kernel, 'wasm');
    if (!config) throw new Error(`wasm backend has no '${kernel}' kernel`);
    const out = config.kernelFunc({ inputs, backend: backend as unknown as tfTypes.KernelBackend, attrs: attrs as tfTypes.NamedAttrMap });
    return Array.isArray(out) ? out[0]! : out;
  };
  return { run, free: (...t) => t.forEach((i) => backend.disposeData(i.dataId)) };
}

function conv2dInfo(tf: Tf, xShape: number[], filterShape: number[], attrs: Attrs): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as [number, number] | number,
    1,
    attrs['pad'] as 'same' | 'valid' | number | ExplicitPad,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}

function explicit(top: number, bottom: number, left: number, right: number): ExplicitPad {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

function backpropFilter(tf: Tf): KernelConfig['kernelFunc'] {
  const fn: KernelConfig['kernelFunc'] = ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as Attrs;
    if (a['dataFormat'] !== undefined && a['dataFormat'] !== 'NHWC') {
      throw new Error(`Conv2DBackpropFilter on wasm: dataFormat '${String(a['dataFormat'])}' is not supported (NHWC only)`);
    }
    const { run, free } = runner(tf, backend as unknown as Backend);
    const info = conv2dInfo(tf, x.shape, a['filterShape'] as number[], a);
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    // dW[i,j,c,o] = sum_{n,p,q} x[n, p*sh + i - top, q*sw + j - left, c] * dy[n,p,q,o]:
    // a conv of x^T [C,H,W,N] with dy^T [OH,OW,N,O] as the filter, dilation (sh,sw), stride 1,
    // whose output [C,KH,KW,O] is dW^T. Rows/cols the forward pass never read are cropped first.
    let bottom = kh + (oh - 1) * sh - h - top;
    let right = kw + (ow - 1) * sw - w - left;
    let xin = x;
    if (bottom < 0 || right < 0) {
      const hh = h + Math.min(bottom, 0);
      const ww = w + Math.min(right, 0);
      xin = run('Slice', { x }, { begin: [0, 0, 0, 0], size: [x.shape[0]!, hh, ww, x.shape[3]!] });
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    const xT = run('Transpose', { x: xin }, { perm: [3, 1, 2, 0] });
    if (xin !== x) free(xin);
    const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const r = run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad: explicit(top, bottom, left, right), dataFormat: 'NHWC', dilations: [sh, sw] });
    free(xT, dyT);
    const dw = run('Transpose', { x: r }, { perm: [1, 2, 0, 3] });
    free(r);
    return dw;
  };
  ours.add(fn);
  return fn;
}

function backpropInput(tf: Tf, original: KernelConfig | undefined): KernelConfig['kernelFunc'] {
  const fn: KernelConfig['kernelFunc'] = (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as Attrs;
    const info = conv2dInfo(tf, a['inputShape'] as number[], filter.shape, a);
    const { filterHeight: kh, filterWidth: kw } = info;
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = kh - 1 - info.padInfo.bottom;
    const right = kw - 1 - info.padInfo.right;
    const fast =
      info.strideHeight === 1 &&
      info.strideWidth === 1 &&
      (a['dataFormat'] === undefined || a['dataFormat'] === 'NHWC') &&
      Math.min(top, left, bottom, right) >= 0;
    if (!fast) {
      if (!original) throw new Error('Conv2DBackpropInput on wasm: unsupported configuration and no original kernel');
      return original.kernelFunc(args);
    }
    const { run, free } = runner(tf, backend as unknown as Backend);
    // dx[n,y,x,c] = sum_{i,j,o} dy[n, y + top' - i', x + left' - j', o] * W[KH-1-i', KW-1-j', c, o]:
    // a stride-1 conv of dy with the filter flipped in space and with in/out channels swapped.
    const flipped = run('Reverse', { x: filter }, { dims: [0, 1] });
    const wT = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    free(flipped);
    const dx = run('Conv2D', { x: dy, filter: wT }, { strides: [1, 1], pad: explicit(top, bottom, left, right), dataFormat: 'NHWC', dilations: [1, 1] });
    free(wT);
    return dx;
  };
  ours.add(fn);
  return fn;
}

interface HeapBackend {
  readSync(dataId: object): tfTypes.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tfTypes.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): tfTypes.backend_util.TypedArray;
}

function maxPoolGrad(tf: Tf): KernelConfig['kernelFunc'] {
  const fn: KernelConfig['kernelFunc'] = ({ inputs, backend, attrs: maybeAttrs }) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const attrs = maybeAttrs ?? {};
    const b = backend as unknown as HeapBackend;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs['filterSize'] as [number, number] | number,
      attrs['strides'] as [number, number] | number,
      1,
      attrs['pad'] as 'same' | 'valid' | number,
      attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    );
    const x = b.readSync(input.dataId) as Float32Array;
    const g = b.readSync(dy.dataId) as Float32Array;
    const out = b.makeOutput([...input.shape], 'float32');
    const dx = b.typedArrayFromHeap(out) as Float32Array; // after makeOutput: the heap may have grown
    dx.fill(0);
    const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    for (let n = 0; n < batchSize; n++)
      for (let oh = 0; oh < outHeight; oh++)
        for (let ow = 0; ow < outWidth; ow++)
          for (let c = 0; c < ch; c++) {
            let best = -1;
            let max = -Infinity;
            for (let fh = 0; fh < filterHeight; fh++) {
              const h = oh * strideHeight - top + fh;
              if (h < 0 || h >= inHeight) continue;
              for (let fw = 0; fw < filterWidth; fw++) {
                const w = ow * strideWidth - left + fw;
                if (w < 0 || w >= inWidth) continue;
                const at = ((n * inHeight + h) * inWidth + w) * ch + c;
                if (x[at]! > max || best < 0) {
                  max = x[at]!;
                  best = at;
                }
              }
            }
            if (best >= 0) dx[best] = dx[best]! + g[((n * outHeight + oh) * outWidth + ow) * ch + c]!;
          }
    return out;
  };
  ours.add(fn);
  return fn;
}

/**
 * Registers Conv2DBackpropFilter (missing), a fast stride-1 Conv2DBackpropInput and a correct
 * MaxPoolGrad for the 'wasm' backend. Idempotent. Call before or after `tf.setBackend('wasm')`.
 * Returns the kernels it (re)registered now.
 */
export function registerWasmGradKernels(tf: Tf): string[] {
  const done: string[] = [];
  const filterName = 'Conv2DBackpropFilter';
  const existingFilter = tf.getKernel(filterName, 'wasm');
  if (!existingFilter) {
    tf.registerKernel({ kernelName: filterName, backendName: 'wasm', kernelFunc: backpropFilter(tf) });
    done.push(filterName);
  }
  const inputName = 'Conv2DBackpropInput';
  const original = tf.getKernel(inputName, 'wasm');
  if (!original || !ours.has(original.kernelFunc)) {
    if (original) tf.unregisterKernel(inputName, 'wasm');
    // Keep the original setup: it binds the C function the fallback path calls.
    const config: KernelConfig = { kernelName: inputName, backendName: 'wasm', kernelFunc: backpropInput(tf, original) };
    if (original?.setupFunc) config.setupFunc = original.setupFunc;
    tf.registerKernel(config);
    done.push(inputName);
  }
  const poolName = 'MaxPoolGrad';
  const pool = tf.getKernel(poolName, 'wasm');
  if (!pool || !ours.has(pool.kernelFunc)) {
    if (pool) tf.unregisterKernel(poolName, 'wasm');
    tf.registerKernel({ kernelName: poolName, backendName: 'wasm', kernelFunc: maxPoolGrad(tf) });
    done.push(poolName);
  }
  return done;
}
