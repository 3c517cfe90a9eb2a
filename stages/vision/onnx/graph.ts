// A small builder for ONNX graphs: initializers, nodes with typed attributes, unique names.
// onnx-proto is CommonJS (protobufjs); a named ESM import of `onnx` fails, hence the default import.
import onnxPkg from 'onnx-proto';

export const { onnx } = onnxPkg;
export type OnnxModelProto = onnxPkg.onnx.IModelProto;
type NodeProto = onnxPkg.onnx.INodeProto;
type TensorProto = onnxPkg.onnx.ITensorProto;
type AttributeProto = onnxPkg.onnx.IAttributeProto;

/** Attribute values as we use them: ints/floats/strings and lists of ints or floats. */
export type AttrValue =
  { readonly i: number } | { readonly f: number } | { readonly s: string } | { readonly ints: readonly number[] } | { readonly floats: readonly number[] };

/** One ONNX dimension: a fixed size, or a symbolic one (`N` for the batch). */
export type Dim = number | string;

export const OPSET = 17;
export const IR_VERSION = 8;

function attribute(name: string, value: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in value) return { name, type: T.INT, i: value.i };
  if ('f' in value) return { name, type: T.FLOAT, f: value.f };
  if ('s' in value) return { name, type: T.STRING, s: new TextEncoder().encode(value.s) };
  if ('ints' in value) return { name, type: T.INTS, ints: [...value.ints] };
  return { name, type: T.FLOATS, floats: [...value.floats] };
}

function valueInfo(name: string, dims: readonly Dim[]): onnxPkg.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();

  /** A name not used yet in this graph, derived from `base` (layer names keep the graph readable). */
  fresh(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_') || 'v';
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  /**
   * A float32 initializer. rawData keeps large tensors cheap to encode. Not copied (fc1 alone is
   * 411 MB): `data` must stay unchanged until the model is encoded.
   */
  floats(base: string, data: Float32Array, dims: readonly number[]): string {
    const name = this.fresh(base);
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** An int64 initializer (Pad's pads, Reshape's shape). */
  int64s(base: string, values: readonly number[]): string {
    const name = this.fresh(base);
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.INT64,
      dims: [values.length],
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /** A scalar float initializer (Clip's min and max). */
  scalar(base: string, value: number): string {
    const name = this.fresh(base);
    const data = new Float32Array([value]);
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims: [],
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  node(opType: string, inputs: readonly string[], outBase: string, attrs: Record<string, AttrValue> = {}): string {
    const output = this.fresh(outBase);
    this.nodes.push({
      opType,
      name: this.fresh(`${outBase}/${opType}`),
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Adds a node with several outputs (MaxPool's values and indices) and returns their names. */
  nodeN(opType: string, inputs: readonly string[], outBases: readonly string[], attrs: Record<string, AttrValue> = {}): string[] {
    const outputs = outBases.map((b) => this.fresh(b));
    this.nodes.push({
      opType,
      name: this.fresh(`${outBases[0] ?? 'v'}/${opType}`),
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Reserves a graph input's name (float32), so nodes can read it. */
  input(name: string): string {
    if (this.used.has(name)) throw new Error(`graph input '${name}' named twice`);
    this.used.add(name);
    return name;
  }

  /** Renames the final value to `outputName` with an Identity node, and builds the model. */
  build(graphName: string, input: { name: string; dims: readonly Dim[] }, output: { value: string; name: string; dims: readonly Dim[] }): OnnxModelProto {
    return this.buildGraph(graphName, [input], [output]);
  }

  /** Builds a model with float32 inputs and outputs; each output value is renamed by an Identity. */
  buildGraph(
    graphName: string,
    inputs: readonly { name: string; dims: readonly Dim[] }[],
    outputs: readonly { value: string; name: string; dims: readonly Dim[] }[],
  ): OnnxModelProto {
    for (const output of outputs) {
      if (output.value === output.name) continue;
      this.used.add(output.name);
      this.nodes.push({ opType: 'Identity', name: this.fresh(`${output.name}/Identity`), input: [output.value], output: [output.name] });
    }
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'pipe',
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: inputs.map((i) => valueInfo(i.name, i.dims)),
        output: outputs.map((o) => valueInfo(o.name, o.dims)),
      },
    });
  }
}

/** Serialises a model after checking it against the protobuf schema. */
export function encodeModel(model: OnnxModelProto): Uint8Array {
  const err = onnx.ModelProto.verify(model);
  if (err) throw new Error(`invalid ONNX model: ${err}`);
  return onnx.ModelProto.encode(model as onnxPkg.onnx.ModelProto).finish();
}
